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

**Dates.** An event's ``date:`` written as an ISO date (``2020-03-25``) is formatted for each
language with Babel (``25 March 2020``, ``25 de marzo de 2020``); ``format: day_month`` leaves
the year out (``26 March``). Any other text is shown as written.

**Translations** (``campaign.<lang>.yaml`` beside this file) are described in
``cohesion_mail/translations.py``; a section may carry an ``id:`` for them to match it by.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import fields as dc_fields
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .config import Theme
from .errors import ContentError
from .i18n import normalise_language
from .render.fields import CONTENT_MERGE, FIELD_NAME, STANDARD_FIELDS, URL_FIELDS
from .yamlfile import Loc, Origins, YamlFile, display_file, dotted, read_yaml

__all__ = ["CONTENT_FILE", "Campaign", "Loc", "dotted", "load_campaign", "validate_campaign"]

CONTENT_FILE = "campaign.yaml"
THEME_KEYS = tuple(f.name for f in dc_fields(Theme))
DATE_FORMATS = ("date", "day_month", "month_year")


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


def _date_or_text(value: Any) -> dt.date | str:
    """An ISO date (``2020-03-25``, formatted per language at render time) or free text.

    Free text (``Spring 2020``, ``28 & 29 April``) is shown as written and translated by hand.
    """
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return _not_blank(value)
    raise PydanticCustomError(
        "date_or_text", "expected a date like 2020-03-25 or text such as 'Spring 2020'"
    )


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be empty")
    return value


def _section_id(value: str) -> str:
    if not FIELD_NAME.match(value.replace("-", "_")):
        raise PydanticCustomError("section_id", "use lower-case letters, digits, - and _")
    return value


Url = Annotated[str, AfterValidator(_check_url)]
# Names a section so a translation can match it (campaign.<lang>.yaml), e.g. ``id: diary``.
SectionId = Annotated[str, AfterValidator(_section_id)]
Text = Annotated[str, AfterValidator(_not_blank)]
DateOrText = Annotated[dt.date | str, PlainValidator(_date_or_text)]
# How an ISO date is shown: 25 March 2020 (date), 26 March (day_month), March 2020 (month_year).
DateFormat = Literal["date", "day_month", "month_year"]
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
    """``label`` defaults to the language's "Read more" (templates/i18n)."""

    url: Url
    label: Text | None = None


class Image(Model):
    """``src`` is an http(s) URL or a path inside the campaign folder; ``alt`` is required."""

    src: Text
    alt: str
    width: int | None = Field(default=None, gt=0, le=600)
    href: Url | None = None


class ArticleSection(Model):
    type: Literal["article"]
    id: SectionId | None = None
    title: Text
    body: Markdown = ""
    image: Image | None = None
    link: Link | None = None


class SpotlightSection(Model):
    """A partner in the spotlight: a kicker title, the partner's name, text and several links."""

    type: Literal["spotlight"]
    id: SectionId | None = None
    title: str = ""  # "" → the language's "Spotlight on a partner"
    name: str = ""
    intro: Markdown = ""
    body: Markdown = ""
    links: list[Link] = []
    image: Image | None = None
    logo: Image | None = None


class EventDate(Model):
    date: DateOrText
    format: DateFormat = "date"
    place: str = ""


class EventItem(Model):
    title: Text
    date: DateOrText | None = None
    format: DateFormat = "date"
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
        first = (
            [EventDate(date=self.date, format=self.format, place=self.place)]
            if self.date is not None
            else []
        )
        return first + list(self.dates)


class EventsSection(Model):
    """Dated items; ``style: diary`` renders the highlighted "Date for your diary" block.

    An empty ``title`` is the language's "Coming up" / "Date for your diary" (templates/i18n).
    """

    type: Literal["events"]
    id: SectionId | None = None
    title: str = ""
    style: Literal["list", "diary"] = "list"
    intro: Markdown = ""
    items: list[EventItem] = Field(min_length=1)


class TextSection(Model):
    type: Literal["text"]
    id: SectionId | None = None
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
    _origins: Origins = PrivateAttr(default_factory=dict)

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = normalise_language(value)
        if code is None:
            raise PydanticCustomError(
                "language",
                "not an ISO 639-1 language code (e.g. en, es, cy), got {value!r}",
                {"value": value},
            )
        return code

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

    @field_validator("sections")
    @classmethod
    def _unique_ids(cls, value: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for section in value:
            if section.id is not None and section.id in seen:
                raise PydanticCustomError(
                    "section_id", "two sections have id '{id}'; ids must differ", {"id": section.id}
                )
            if section.id is not None:
                seen.add(section.id)
        return value

    @property
    def source(self) -> Path | None:
        """The YAML file this campaign was read from (a translation: its campaign.<lang>.yaml)."""
        return self._source

    def where(self, loc: Loc) -> str:
        """``file:line`` (or just ``file``) for a field path, for error messages.

        In a translated campaign each field names the file it came from: the translation's
        ``campaign.<lang>.yaml`` for what it translates, ``campaign.yaml`` for the rest.
        """
        for n in range(len(loc), -1, -1):
            origin = self._origins.get(tuple(loc[:n]))
            if origin:
                return f"{origin[0]}:{origin[1]}"
        return display_file(self._source) if self._source else CONTENT_FILE


# -- loading -------------------------------------------------------------------------------


def load_campaign(campaign_dir: Path) -> Campaign:
    """Read and validate ``<campaign_dir>/campaign.yaml``; ``ContentError`` lists every problem.

    This is the main language's content; ``translations.Translations`` adds the
    ``campaign.<lang>.yaml`` files.
    """
    return validate_file(campaign_dir, read_main(campaign_dir))


def read_main(campaign_dir: Path) -> YamlFile:
    """The parsed ``campaign.yaml`` of ``campaign_dir`` (not validated yet)."""
    if not Path(campaign_dir).is_dir():
        raise ContentError(
            f"{display_file(Path(campaign_dir))}: no such campaign folder",
            hint="create one with: cohesion-mail new <slug>",
        )
    hint = "every campaign folder needs a campaign.yaml"
    doc = read_yaml(Path(campaign_dir) / CONTENT_FILE, missing_hint=hint)
    if not isinstance(doc.data, dict):
        raise ContentError(f"{doc.shown}: expected a mapping of keys (subject:, sections: …)")
    return doc


def validate_file(campaign_dir: Path, doc: YamlFile) -> Campaign:
    return validate_campaign(doc.data, doc.origins(), Path(campaign_dir), doc.path, doc.shown)


def validate_campaign(
    data: dict[str, Any], origins: Origins, campaign_dir: Path, source: Path, shown: str
) -> Campaign:
    """Validate campaign ``data``; each problem named ``file:line: field: what``.

    ``origins`` gives the file and line of every field (for a translation, a mix of the
    translation's and the main file's); ``shown`` is the file named when a field has none.
    """
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        raise ContentError("\n".join(_describe(shown, exc, data, origins))) from None
    campaign._source = source
    campaign._origins = origins
    problems = _check_images(campaign_dir, campaign)
    if problems:
        raise ContentError("\n".join(problems))
    return campaign


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


def _describe(shown: str, exc: ValidationError, data: Any, origins: Origins) -> list[str]:
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
        origin = next(
            (origins[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in origins), None
        )
        where = f"{origin[0]}:{origin[1]}" if origin else shown
        entry = f"{where}: {dotted(loc)}: {msg}"
        if entry not in out:
            out.append(entry)
    return out


def _check_images(campaign_dir: Path, campaign: Campaign) -> list[str]:
    """Every local (relative) image must exist inside the campaign folder."""
    problems: list[str] = []
    for loc, image in iter_images(campaign):
        if image.src.startswith(("http://", "https://")) or CONTENT_MERGE.fullmatch(image.src):
            continue
        rel = PurePosixPath(image.src)
        where = f"{campaign.where((*loc, 'src'))}: {dotted((*loc, 'src'))}"
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
