"""The campaign content model: ``campaigns/<slug>/campaign.yaml`` and its validation.

A campaign folder holds one YAML file (subject, preheader, issue number/date, optional theme
overrides and merge-field defaults, an ordered list of typed sections, a footer) and any local
images it uses. Errors name the file, the YAML line, the field path and the problem, e.g.::

    campaigns/x/campaign.yaml:14: sections[2].link.url: not a URL (expected https://… or #)

**Local images.** An image ``src`` that is a relative path must exist inside the campaign
folder; it is *not* embedded (Gmail and Outlook.com strip ``data:`` images, and CID parts make
every message heavier) but published: the HTML points at
``<links.base_url>/campaigns/<slug>/<path>``, which ``cohesion-mail serve`` (or any web server
mirroring the campaign folder) must answer.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import fields as dc_fields
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .config import Theme
from .errors import ContentError
from .render.fields import CONTENT_MERGE, FIELD_NAME, STANDARD_FIELDS, URL_FIELDS

CONTENT_FILE = "campaign.yaml"
# libyaml's parser when PyYAML was built with it (10× faster; same marks and errors).
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
THEME_KEYS = tuple(f.name for f in dc_fields(Theme))

Loc = tuple[str | int, ...]


# -- field types ---------------------------------------------------------------------------


def _check_url(value: str) -> str:
    """An http(s) or mailto URL, a lone ``#`` (a placeholder preflight flags), or a URL field."""
    if value == "#":
        return value
    m = CONTENT_MERGE.fullmatch(value)
    if m and m.group(1) in URL_FIELDS:
        return value
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and " " not in value:
        return value
    if parts.scheme == "mailto" and "@" in parts.path:
        return value
    raise PydanticCustomError("url", "not a URL (expected https://…, mailto:… or #)")


def _date_text(value: Any) -> Any:
    """YAML turns ``2020-03-25`` into a date; show it as ``25 March 2020``."""
    if isinstance(value, dt.date):
        return f"{value.day} {value:%B %Y}"
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


Url = Annotated[str, AfterValidator(_check_url)]
Text = Annotated[str, AfterValidator(_not_blank)]
DateText = Annotated[str, BeforeValidator(_date_text), AfterValidator(_not_blank)]
Markdown = str  # rendered by render.markdown; merge fields as *|name|*


class Model(BaseModel):
    """Strict about keys: a typo is an error that names the key, never silently ignored."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields)
            for key in data:
                if key not in known:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown key '{key}' (known: {known})",
                        {"key": key, "known": ", ".join(cls.model_fields)},
                    )
        return data


class Link(Model):
    url: Url
    label: Text


class Image(Model):
    """``src`` is an http(s) URL or a path inside the campaign folder; ``alt`` is required."""

    src: Text
    alt: str
    width: int | None = Field(default=None, gt=0, le=600)
    href: Url | None = None


class ArticleSection(Model):
    type: Literal["article"]
    title: Text
    body: Markdown = ""
    image: Image | None = None
    link: Link | None = None


class SpotlightSection(Model):
    """A partner in the spotlight: a kicker title, the partner's name, text and several links."""

    type: Literal["spotlight"]
    title: Text
    name: str = ""
    intro: Markdown = ""
    body: Markdown = ""
    links: list[Link] = []
    image: Image | None = None
    logo: Image | None = None


class EventDate(Model):
    date: DateText
    place: str = ""


class EventItem(Model):
    title: Text
    date: DateText | None = None
    place: str = ""
    dates: list[EventDate] = []
    body: Markdown = ""
    link: Link | None = None

    @model_validator(mode="after")
    def _has_date(self) -> EventItem:
        if self.date is None and not self.dates:
            raise PydanticCustomError("no_date", "needs a date: (or a dates: list)")
        return self

    @property
    def when(self) -> list[EventDate]:
        """Every date line of the item, the single ``date:`` first."""
        first = [EventDate(date=self.date, place=self.place)] if self.date else []
        return first + list(self.dates)


class EventsSection(Model):
    """Dated items; ``style: diary`` renders the highlighted "Date for your diary" block."""

    type: Literal["events"]
    title: Text
    style: Literal["list", "diary"] = "list"
    intro: Markdown = ""
    items: list[EventItem] = Field(min_length=1)


class TextSection(Model):
    type: Literal["text"]
    title: str = ""
    body: Markdown


Section = Annotated[
    ArticleSection | SpotlightSection | EventsSection | TextSection, Field(discriminator="type")
]
SECTION_TYPES = ("article", "spotlight", "events", "text")


class FooterLink(Model):
    """A footer link with an optional lead-in, e.g. ``Follow us on Twitter:`` + ``@cohes3ion``."""

    prompt: str = ""
    label: Text
    url: Url


class Footer(Model):
    web: FooterLink | None = None
    social: list[FooterLink] = []
    postal_address: str | None = None  # None → settings.list.postal_address
    note: Markdown = ""


class IssueInfo(Model):
    number: int | None = Field(default=None, ge=1)
    date: dt.date


class Campaign(Model):
    """One newsletter issue as the editor wrote it."""

    subject: Text = Field(max_length=200)
    preheader: str = Field(default="", max_length=250)
    issue: IssueInfo
    language: str | None = None
    theme: dict[str, str] = {}
    merge_fields: dict[str, str] = {}
    click_tracking: bool | None = None  # None → settings.send.click_tracking
    sections: list[Section] = Field(min_length=1)
    footer: Footer = Footer()

    _source: Path | None = PrivateAttr(default=None)
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @field_validator("theme", mode="before")
    @classmethod
    def _theme_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key in value:
                if key not in THEME_KEYS:
                    raise PydanticCustomError(
                        "unknown_key",
                        "unknown theme key '{key}' (known: {known})",
                        {"key": key, "known": ", ".join(THEME_KEYS)},
                    )
        return value

    @field_validator("merge_fields")
    @classmethod
    def _field_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not FIELD_NAME.match(key):
                raise PydanticCustomError(
                    "field_name",
                    "merge field '{key}': use lower-case letters, digits and _",
                    {"key": key},
                )
            if key in STANDARD_FIELDS:
                raise PydanticCustomError(
                    "field_name",
                    "merge field '{key}' is built in; do not redeclare it",
                    {"key": key},
                )
        return value

    @property
    def source(self) -> Path | None:
        """The YAML file this campaign was read from."""
        return self._source

    def where(self, loc: Loc) -> str:
        """``file:line`` (or just ``file``) for a field path, for error messages."""
        name = _display_file(self._source) if self._source else CONTENT_FILE
        for n in range(len(loc), -1, -1):
            line = self._lines.get(tuple(loc[:n]))
            if line:
                return f"{name}:{line}"
        return name


# -- loading -------------------------------------------------------------------------------


def load_campaign(campaign_dir: Path) -> Campaign:
    """Read and validate ``<campaign_dir>/campaign.yaml``; ``ContentError`` lists every problem."""
    path = Path(campaign_dir) / CONTENT_FILE
    shown = _display_file(path)
    if not Path(campaign_dir).is_dir():
        raise ContentError(
            f"{_display_file(Path(campaign_dir))}: no such campaign folder",
            hint="create one with: cohesion-mail new <slug>",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContentError(
            f"{shown}: missing", hint="every campaign folder needs a campaign.yaml"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(f"{shown}: cannot read: {exc}") from exc
    data, lines = _parse_yaml(shown, text)
    if not isinstance(data, dict):
        raise ContentError(f"{shown}: expected a mapping of keys (subject:, sections: …)")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        raise ContentError("\n".join(_describe(shown, exc, data, lines))) from None
    campaign._source = path
    campaign._lines = lines
    problems = _check_images(Path(campaign_dir), campaign, shown, lines)
    if problems:
        raise ContentError("\n".join(problems))
    return campaign


def _display_file(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def _parse_yaml(shown: str, text: str) -> tuple[Any, dict[Loc, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ContentError(f"{shown}: the file is empty")
        lines: dict[Loc, int] = {}
        _index(shown, node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        context = f" ({exc.context})" if exc.context else ""
        raise ContentError(f"{where}: YAML syntax error: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ContentError(f"{shown}: YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
    return data, lines


def _index(shown: str, node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    """Record the 1-based line of every field path; refuse duplicate keys.

    PyYAML would silently keep the last of two equal keys, losing the editor's first value.
    """
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = (*loc, key)
            if key in seen:
                raise ContentError(
                    f"{shown}:{key_node.start_mark.line + 1}: {dotted(path)}: duplicate key"
                )
            seen.add(key)
            lines[path] = key_node.start_mark.line + 1
            _index(shown, value_node, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(shown, item, (*loc, i), lines)


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _is_union_tag(cur: Any, part: Any) -> bool:
    """Pydantic puts the chosen union member in the location ('article', 'function-after…')."""
    if isinstance(cur, dict) and part in SECTION_TYPES and cur.get("type") == part:
        return True
    return isinstance(part, str) and (part.startswith("function-") or part in ("str", "int"))


def _locate(loc: tuple[Any, ...], data: Any) -> Loc:
    """Pydantic's error location as the editor's field path (drops union tags, e.g. 'article')."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        in_list = isinstance(cur, list) and isinstance(part, int) and part < len(cur)
        if in_list or (isinstance(cur, dict) and part in cur):
            out.append(part)
            cur = cur[part]
        elif _is_union_tag(cur, part):
            continue
        else:
            out.append(part)
            cur = None
    return tuple(out)


_MESSAGES = {
    "missing": "missing (required)",
    "string_type": "expected text{got} (quote it in YAML)",
    "int_type": "expected a whole number{got}",
    "int_parsing": "expected a whole number{got}",
    "bool_type": "expected true or false{got}",
    "bool_parsing": "expected true or false{got}",
    "list_type": "expected a list (- item){got}",
    "dict_type": "expected a mapping (key: value){got}",
    "model_type": "expected a mapping (key: value){got}",
    "model_attributes_type": "expected a mapping (key: value){got}",
    "date_type": "expected a date like 2020-02-01{got}",
    "date_from_datetime_parsing": "expected a date like 2020-02-01{got}",
    "date_parsing": "expected a date like 2020-02-01{got}",
    "too_short": "must not be empty",
}


def _describe(shown: str, exc: ValidationError, data: Any, lines: dict[Loc, int]) -> list[str]:
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = _locate(err["loc"], data)
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind == "union_tag_invalid":
            msg = f"unknown section type {ctx.get('tag')!r} (one of: {', '.join(SECTION_TYPES)})"
            loc = (*loc, "type")
        elif kind == "union_tag_not_found":
            msg = f"missing type: (one of: {', '.join(SECTION_TYPES)})"
        elif kind in _MESSAGES:
            value = err.get("input")
            got = "" if kind == "missing" or isinstance(value, dict | list) else f", got {value!r}"
            msg = _MESSAGES[kind].format(got=got)
        else:
            msg = err["msg"]
        if kind == "unknown_key" and "key" in ctx:
            loc = (*loc, ctx["key"])
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        where = f"{shown}:{line}" if line else shown
        entry = f"{where}: {dotted(loc)}: {msg}"
        if entry not in out:
            out.append(entry)
    return out


def _check_images(
    campaign_dir: Path, campaign: Campaign, shown: str, lines: dict[Loc, int]
) -> list[str]:
    """Every local (relative) image must exist inside the campaign folder."""
    problems: list[str] = []
    for loc, image in iter_images(campaign):
        if image.src.startswith(("http://", "https://")) or CONTENT_MERGE.fullmatch(image.src):
            continue
        rel = PurePosixPath(image.src)
        where = f"{shown}:{lines.get((*loc, 'src'), '?')}: {dotted((*loc, 'src'))}"
        if rel.is_absolute() or ".." in rel.parts or ":" in image.src:
            problems.append(f"{where}: use an https:// URL or a path inside the campaign folder")
        elif not (campaign_dir / rel).is_file():
            problems.append(f"{where}: no such file {campaign_dir / rel}")
    return problems


def iter_images(campaign: Campaign) -> list[tuple[Loc, Image]]:
    """Every image in the content with its field path."""
    found: list[tuple[Loc, Image]] = []
    for i, section in enumerate(campaign.sections):
        for name in ("image", "logo"):
            image = getattr(section, name, None)
            if image is not None:
                found.append((("sections", i, name), image))
    return found
