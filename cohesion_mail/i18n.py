"""Languages: codes, the templates' message catalogues, and dates formatted per language.

**Codes.** A subscriber's or a campaign's language is an ISO 639-1 code. ``normalise_language``
accepts what lists hold (``es-ES``, ``ES``, ``pt_BR``) and returns the lower-case primary
code, or ``None`` for an empty or unknown value (those readers get the main language).

**Catalogues.** The templates' fixed words ("View in browser", "Unsubscribe", "Issue 1", …)
come from ``templates/i18n/<lang>.yaml``, one file per language; the tracking service's pages
use the same files. A project may override any file, or any single string, with a file of the
same name in its own ``templates/i18n/``. A string missing for a language falls back, string by
string, to the issue's main language and then to ``en.yaml`` (the reference, which holds every
key), so adding a language is adding a file: no code. The format::

    locale: es              # Babel locale for dates (optional; default: the file's code)
    dates:                  # optional CLDR patterns, when Babel's choice does not suit
      day_month: "d MMMM"
    messages:
      view_in_browser: Ver en el navegador
      issue_number: "Número {number}"     # {name}: a value the template passes in

**Dates** are formatted with Babel in the catalogue's locale, in one of three styles:
``date`` (25 March 2020 · 25 de marzo de 2020), ``day_month`` (26 March · 26 de marzo) and
``month_year`` (February 2020 · febrero de 2020).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import babel
import babel.dates
from markupsafe import Markup, escape

from .errors import TemplateError
from .yamlfile import read_yaml

CATALOGUE_FOLDER = "i18n"
REFERENCE_LANGUAGE = "en"
# Style name → Babel's default: a format_date width, or a CLDR skeleton (fitted per locale).
DATE_STYLES: dict[str, str] = {"date": "long", "day_month": "MMMMd", "month_year": "yMMMM"}
_WIDTHS = ("short", "medium", "long", "full")
_CATALOGUE_KEYS = ("locale", "dates", "messages")
_SUBTAG = re.compile(r"[-_\s.@]")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- codes ---------------------------------------------------------------------------------


@functools.cache
def iso_639_1() -> frozenset[str]:
    """Every two-letter ISO 639-1 code Babel knows."""
    codes = (str(code) for code in babel.Locale("en").languages)
    return frozenset(code for code in codes if len(code) == 2 and code.isalpha())


def normalise_language(value: str | None) -> str | None:
    """``es-ES``, ``ES``, ``es_ES`` → ``es``; ``None`` for an empty or unknown language."""
    if not value or not value.strip():
        return None
    primary = _SUBTAG.split(value.strip(), maxsplit=1)[0].lower()
    return primary if primary in iso_639_1() else None


def language_name(code: str) -> str:
    """The language's own name (``español``, ``Cymraeg``), for language pickers."""
    try:
        name = babel.Locale.parse(code).get_display_name(code)
    except (ValueError, babel.UnknownLocaleError):
        return code
    return name or code


# -- catalogue files -----------------------------------------------------------------------


@dataclass(frozen=True)
class _File:
    """One parsed catalogue file; each value is (text, "file:line")."""

    shown: str
    locale: tuple[str, str] | None
    dates: dict[str, tuple[str, str]]
    messages: dict[str, tuple[str, str]]


def catalogue_files(language: str, dirs: Sequence[Path]) -> list[Path]:
    """``<dir>/i18n/<language>.yaml`` for each template folder that has one, overrides first."""
    return [f for d in dirs if (f := d / CATALOGUE_FOLDER / f"{language}.yaml").is_file()]


def catalogue_languages(dirs: Sequence[Path]) -> list[str]:
    """The languages that have a catalogue in any of ``dirs``."""
    found = {
        p.stem
        for d in dirs
        if (d / CATALOGUE_FOLDER).is_dir()
        for p in (d / CATALOGUE_FOLDER).glob("*.yaml")
    }
    return sorted(found)


def _read(path: Path) -> _File:
    stat = path.stat()
    return _read_cached(path.resolve(), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _read_cached(path: Path, _mtime: int, _size: int) -> _File:
    """Parse and check one catalogue (cached until the file changes: preview rebuilds)."""
    doc = read_yaml(path, error=TemplateError)
    shown, data = doc.shown, doc.data
    if not isinstance(data, dict):
        raise TemplateError(f"{shown}: expected a mapping with messages: (and locale:, dates:)")
    for key in data:
        if key not in _CATALOGUE_KEYS:
            raise TemplateError(
                f"{doc.where((key,))}: {key}: unknown key (known: {', '.join(_CATALOGUE_KEYS)})"
            )

    def texts(section: str) -> dict[str, tuple[str, str]]:
        value = data.get(section) or {}
        if not isinstance(value, dict):
            raise TemplateError(f"{doc.where((section,))}: {section}: expected a mapping")
        out: dict[str, tuple[str, str]] = {}
        for key, text in value.items():
            where = doc.where((section, key))
            if not isinstance(text, str) or not text.strip():
                raise TemplateError(f"{where}: {section}.{key}: expected text (quote it in YAML)")
            out[str(key)] = (text, where)
        return out

    messages = texts("messages")
    for key, (text, where) in messages.items():
        _check_placeholders(text, f"{where}: messages.{key}")
    dates = texts("dates")
    for style, (pattern, where) in dates.items():
        if style not in DATE_STYLES:
            raise TemplateError(
                f"{where}: dates.{style}: unknown date style (known: {', '.join(DATE_STYLES)})"
            )
        try:
            babel.dates.parse_pattern(pattern)
        except (ValueError, TypeError) as exc:
            raise TemplateError(f"{where}: dates.{style}: not a CLDR date pattern: {exc}") from None
    locale = data.get("locale")
    if locale is not None and not isinstance(locale, str):
        raise TemplateError(f"{doc.where(('locale',))}: locale: expected text such as es or en_GB")
    return _File(shown, (locale, doc.where(("locale",))) if locale else None, dates, messages)


def _check_placeholders(text: str, where: str) -> None:
    """Only ``{name}`` placeholders (no ``{0}``, ``{x.attr}``); ``{{``/``}}`` for braces."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(
            f"{where}: {exc} (write a literal brace as {{{{ or }}}})", hint=None
        ) from None
    for _, name, spec, conversion in parsed:
        if name is not None and (not _FIELD.match(name) or spec or conversion):
            raise TemplateError(f"{where}: placeholder {{{name}}} must be a plain {{name}}")


# -- the catalogue of one language ---------------------------------------------------------


@dataclass(frozen=True)
class Catalogue:
    """The fixed strings and date formats of one language, with fallbacks already applied."""

    language: str
    locale: babel.Locale
    messages: Mapping[str, tuple[str, str]]  # key → (text, "file:line" it came from)
    own: frozenset[str]  # keys the language's own file(s) define
    date_patterns: Mapping[str, str]

    @property
    def direction(self) -> str:
        """``rtl`` for right-to-left scripts (Arabic, Hebrew …), else ``ltr``."""
        return "rtl" if self.locale.character_order == "right-to-left" else "ltr"

    def gettext(self, key: str, /, **values: Any) -> str:
        """The message ``key`` with its ``{name}`` placeholders filled (plain text)."""
        text, where = self._lookup(key)
        try:
            return text.format_map(values)
        except (KeyError, IndexError) as exc:
            can = ", ".join("{" + k + "}" for k in values) or "none"
            raise TemplateError(
                f"{where}: messages.{key}: unknown placeholder {{{exc.args[0]}}}"
                f" (this message can use: {can})"
            ) from None

    def markup(self, key: str, /, **values: Any) -> Markup:
        """The message as HTML: its text escaped, values escaped unless already ``Markup``."""
        text, _ = self._lookup(key)
        self.gettext(key, **values)  # the same placeholder check and message
        return Markup(escape(text)).format(**values)

    def _lookup(self, key: str) -> tuple[str, str]:
        try:
            return self.messages[key]
        except KeyError:
            raise TemplateError(
                f"message {key!r} is in no catalogue for {self.language!r}",
                hint=f"add it under messages: in templates/{CATALOGUE_FOLDER}/"
                f"{REFERENCE_LANGUAGE}.yaml (the reference) and in the other languages",
            ) from None

    def format_date(self, value: dt.date, style: str = "date") -> str:
        """``value`` in this language: ``date``, ``day_month`` or ``month_year`` style."""
        pattern = self.date_patterns.get(style)
        if pattern is not None:
            return str(babel.dates.format_date(value, pattern, locale=self.locale))
        default = DATE_STYLES[style]
        if default in _WIDTHS:
            return str(babel.dates.format_date(value, default, locale=self.locale))
        return str(babel.dates.format_skeleton(default, value, locale=self.locale, fuzzy=True))


def load_catalogue(
    language: str, dirs: Sequence[Path], *, fallback: str | None = None
) -> Catalogue:
    """The catalogue of ``language``: its files, then ``fallback`` (the main language), then en.

    ``TemplateError`` (naming file and line) for a broken catalogue file.
    """
    chain = _unique([language, fallback or language, REFERENCE_LANGUAGE])
    messages: dict[str, tuple[str, str]] = {}
    own: set[str] = set()
    locale_name: tuple[str, str] | None = None
    patterns: dict[str, str] = {}
    for lang in chain:
        for path in catalogue_files(lang, dirs):
            f = _read(path)
            for key, value in f.messages.items():
                messages.setdefault(key, value)
                if lang == language:
                    own.add(key)
            if lang == language:  # dates and locale never come from another language
                locale_name = locale_name or f.locale
                for style, (pattern, _) in f.dates.items():
                    patterns.setdefault(style, pattern)
    return Catalogue(language, _locale(language, locale_name), messages, frozenset(own), patterns)


def missing_messages(language: str, dirs: Sequence[Path]) -> list[str]:
    """Keys of the reference catalogue that ``language``'s own files do not translate."""
    if language == REFERENCE_LANGUAGE:
        return []
    reference = load_catalogue(REFERENCE_LANGUAGE, dirs)
    own = load_catalogue(language, dirs).own
    return [key for key in reference.messages if key not in own]


def _locale(language: str, declared: tuple[str, str] | None) -> babel.Locale:
    if declared is not None:
        name, where = declared
        try:
            return babel.Locale.parse(name.replace("-", "_"))
        except (ValueError, babel.UnknownLocaleError):
            raise TemplateError(
                f"{where}: locale: unknown locale {name!r}", hint="use e.g. es, en_GB, pt_BR"
            ) from None
    try:
        return babel.Locale.parse(language)
    except (ValueError, babel.UnknownLocaleError):
        return babel.Locale.parse(REFERENCE_LANGUAGE)


def _unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
