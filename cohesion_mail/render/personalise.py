"""The compiled issue and its per-recipient personalisation: string joins, nothing else.

An issue is rendered and compiled (Jinja2 → MJML → css-inline → inscriptis) **once**. Merge
fields travel through that pipeline as *sentinels*: ``cmf<nonce>x<hex of the name>x``, made of
``[a-z0-9]`` only, so neither MJML, the CSS inliner, Markdown nor the HTML-to-text converter can
alter them, and the random per-build nonce means no editor text can ever collide with one.

After compiling, the HTML and the text are split once into static parts and *slots*. Each slot
knows its context, and personalisation escapes a value for that context only:

* a field inside a tag (``href``, ``src``, ``alt`` …) is escaped with ``html.escape(quote=True)``;
* a field in element text is escaped with ``html.escape(quote=False)``;
* a field in the plain-text part is inserted raw.

Every ``<a href>`` to an http(s) URL that holds no merge field is a *link slot* too, so a
``click(url)`` callback can swap in a per-recipient tracking URL without re-parsing anything.
The unsubscribe and web-version links are merge fields and are therefore never click-tracked.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ContentError, MergeFieldError
from .fields import CONTENT_MERGE, STANDARD_FIELDS

_ALPHABET = string.ascii_lowercase + string.digits
_TEXT, _ATTR, _LINK = 0, 1, 2
_FORMAT = 1  # version of to_json's layout

# A start tag, end tag, comment or doctype. Attribute values are quoted by the HTML serialiser,
# and may contain ``>``, so quoted strings are matched as a whole.
_TAG = re.compile(
    r"<!--.*?-->|<[A-Za-z!/?][^>\"']*(?:(?:\"[^\"]*\"|'[^']*')[^>\"']*)*>",
    re.DOTALL,
)
_A_HREF = re.compile(r"""^<a\s(?:[^>]*?\s)?href=(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)


def new_nonce() -> str:
    """A fresh 10-character ``[a-z0-9]`` nonce for one build's sentinels."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))


def sentinel(nonce: str, name: str) -> str:
    """The placeholder that stands for merge field ``name`` throughout one build."""
    return f"cmf{nonce}x{name.encode('ascii').hex()}x"


def sentinel_pattern(nonce: str) -> re.Pattern[str]:
    """Matches this build's sentinels; group 1 is the hex-encoded field name."""
    return re.compile(f"cmf{nonce}x([0-9a-f]+)x")


def _name(hexname: str) -> str:
    return bytes.fromhex(hexname).decode("ascii")


@dataclass
class _Split:
    """A document cut into static parts; ``slots`` are (index, kind, key) to fill per recipient."""

    parts: list[str]
    slots: list[tuple[int, int, str]]


def _split_text(text: str, pattern: re.Pattern[str]) -> _Split:
    parts: list[str] = []
    slots: list[tuple[int, int, str]] = []
    pos = 0
    for m in pattern.finditer(text):
        parts.append(text[pos : m.start()])
        slots.append((len(parts), _TEXT, _name(m.group(1))))
        parts.append("")
        pos = m.end()
    parts.append(text[pos:])
    return _Split(parts, slots)


def _split_html(doc: str, pattern: re.Pattern[str]) -> tuple[_Split, list[str]]:
    """Cut ``doc`` at every sentinel and every trackable link; return the split and the links."""
    parts: list[str] = []
    slots: list[tuple[int, int, str]] = []
    links: list[str] = []
    buf: list[str] = []

    def add_fields(chunk: str, kind: int) -> None:
        pos = 0
        for m in pattern.finditer(chunk):
            buf.append(chunk[pos : m.start()])
            parts.append("".join(buf))
            buf.clear()
            slots.append((len(parts), kind, _name(m.group(1))))
            parts.append("")
            pos = m.end()
        buf.append(chunk[pos:])

    pos = 0
    for tag in _TAG.finditer(doc):
        add_fields(doc[pos : tag.start()], _TEXT)
        chunk = tag.group(0)
        href = _A_HREF.match(chunk)
        if href and not pattern.search(href.group(2)):
            url = html.unescape(href.group(2))
            if url.startswith(("http://", "https://")):
                add_fields(chunk[: href.start(2)], _ATTR)
                parts.append("".join(buf))
                buf.clear()
                slots.append((len(parts), _LINK, url))
                parts.append(href.group(2))  # the untracked value, used when click is None
                if url not in links:
                    links.append(url)
                chunk = chunk[href.end(2) :]
        add_fields(chunk, _ATTR)
        pos = tag.end()
    add_fields(doc[pos:], _TEXT)
    parts.append("".join(buf))
    return _Split(parts, slots), links


@dataclass
class CompiledIssue:
    """One issue, compiled once, with merge placeholders inside ``html`` and ``text``.

    ``personalise`` costs a few string joins per recipient; the send loop calls it for each.
    ``subject`` and ``preheader`` keep the content syntax (``*|name|*``) and are filled with
    ``personalise_subject``.
    """

    slug: str
    subject: str
    preheader: str
    language: str
    html: str = field(repr=False)
    text: str = field(repr=False)
    nonce: str = field(repr=False)
    fields: frozenset[str] = frozenset()
    merge_defaults: dict[str, str] = field(default_factory=dict)
    click_tracking: bool = True  # the campaign's (or the project's) choice; the send loop obeys
    links: list[str] = field(init=False)

    def __post_init__(self) -> None:
        pattern = sentinel_pattern(self.nonce)
        self._html, self.links = _split_html(self.html, pattern)
        self._text = _split_text(self.text, pattern)
        used = {key for _, kind, key in self._html.slots if kind != _LINK}
        used |= {key for _, _, key in self._text.slots}
        used |= set(CONTENT_MERGE.findall(self.subject + "\n" + self.preheader))
        self.fields = frozenset(used | set(self.fields))
        known = set(STANDARD_FIELDS) | set(self.merge_defaults)
        unknown = sorted(self.fields - known)
        if unknown:
            raise MergeFieldError(
                f"{self.slug}: unknown merge field(s) {', '.join(unknown)}",
                hint="declare extra fields with a default under merge_fields: in campaign.yaml",
            )

    # -- per recipient -------------------------------------------------------------------

    def _values(self, values: Mapping[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in self.fields:
            value = values.get(name)
            if value is None:
                value = self.merge_defaults.get(name)
            if value is None:
                raise MergeFieldError(
                    f"{self.slug}: no value for merge field {name!r}",
                    hint="pass it for every recipient, or declare a default under merge_fields:",
                )
            out[name] = value
        return out

    def personalise(
        self, values: Mapping[str, str], click: Callable[[str], str] | None = None
    ) -> tuple[str, str]:
        """This recipient's ``(html, text)``.

        ``values`` fills the merge fields (missing → ``MergeFieldError``, after the campaign's
        ``merge_defaults``). ``click(url)``, when given, returns the URL that replaces each
        trackable link in the HTML; the text part keeps the real URLs.
        """
        vals = self._values(values)
        text_esc = {k: html.escape(v, quote=False) for k, v in vals.items()}
        attr_esc = {k: html.escape(v, quote=True) for k, v in vals.items()}
        out = self._html.parts.copy()
        tracked: dict[str, str] = {}
        for i, kind, key in self._html.slots:
            if kind == _TEXT:
                out[i] = text_esc[key]
            elif kind == _ATTR:
                out[i] = attr_esc[key]
            elif click is not None:
                if key not in tracked:
                    tracked[key] = html.escape(click(key), quote=True)
                out[i] = tracked[key]
        txt = self._text.parts.copy()
        for i, _, key in self._text.slots:
            txt[i] = vals[key]
        return "".join(out), "".join(txt)

    def personalise_subject(self, values: Mapping[str, str]) -> str:
        """The subject line with ``*|name|*`` fields filled (raw: a header is not HTML)."""
        return self._fill_content(self.subject, values)

    def personalise_preheader(self, values: Mapping[str, str]) -> str:
        """The preheader with ``*|name|*`` fields filled (raw text)."""
        return self._fill_content(self.preheader, values)

    def _fill_content(self, template: str, values: Mapping[str, str]) -> str:
        if "*|" not in template:
            return template
        vals = self._values(values)
        return CONTENT_MERGE.sub(lambda m: vals[m.group(1)], template)

    # -- serialisation -------------------------------------------------------------------

    def to_json(self) -> str:
        """A JSON document ``from_json`` turns back into an equal issue (stored per campaign)."""
        data: dict[str, Any] = {
            "format": _FORMAT,
            "slug": self.slug,
            "subject": self.subject,
            "preheader": self.preheader,
            "language": self.language,
            "nonce": self.nonce,
            "fields": sorted(self.fields),
            "merge_defaults": self.merge_defaults,
            "click_tracking": self.click_tracking,
            "html": self.html,
            "text": self.text,
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, s: str) -> CompiledIssue:
        try:
            data = json.loads(s)
            if data.get("format") != _FORMAT:
                raise ValueError(f"unsupported format {data.get('format')!r}")
            return cls(
                slug=data["slug"],
                subject=data["subject"],
                preheader=data["preheader"],
                language=data["language"],
                html=data["html"],
                text=data["text"],
                nonce=data["nonce"],
                fields=frozenset(data["fields"]),
                merge_defaults=dict(data["merge_defaults"]),
                click_tracking=bool(data.get("click_tracking", True)),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ContentError(f"not a compiled issue: {exc}") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompiledIssue):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]
