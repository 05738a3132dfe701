"""Translated editions of one issue: ``campaign.<lang>.yaml`` beside ``campaign.yaml``.

``campaign.yaml`` holds the issue in its main language (its ``language:``, else the project's
``language`` setting). A translation is a file named for an ISO 639-1 code
(``campaign.es.yaml``, ``campaign.cy.yaml``) with the same layout, complete or partial. It is
laid over the main content **field by field**:

* a field the translation gives replaces the main one; a field it leaves out (or leaves empty,
  ``~``) stays in the main language, and ``check`` lists it as untranslated;
* ``sections:`` are matched by ``id:`` when the translated section has one, otherwise by
  position (write ``- {}`` to skip a section); other lists (``links:``, ``items:``,
  ``dates:``, ``social:``) by position. A translation cannot add sections or list items;
* what makes the issue the same issue stays in ``campaign.yaml``: ``issue:``,
  ``click_tracking:``, and each section's ``type:``, ``style:`` and ``id:``. A translation may
  repeat them (a copied file is fine) but not change them. ``merge_fields:`` may translate
  the defaults of declared fields, not declare new ones.

Errors name the translation's file and line for what it wrote, ``campaign.yaml`` for the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from .config import Settings
from .content import CONTENT_FILE, Campaign, read_main, validate_campaign, validate_file
from .errors import ContentError
from .i18n import iso_639_1, missing_messages, normalise_language
from .render.templates import template_dirs
from .yamlfile import Loc, Origins, YamlFile, display_file, dotted, read_yaml

# Keys a translation may repeat but not change.
FIXED_TOP = ("issue", "click_tracking")
FIXED_SECTION = ("type", "style", "id")
_DEFAULTS = {"style": "list"}
# String fields that are not words to translate.
NOT_TEXT = frozenset({"type", "style", "id", "url", "src", "href", "format", "language"})
NOT_TRANSLATED_TOP = frozenset({"issue", "theme", "click_tracking", "language"})
_VARIANT = re.compile(r"^campaign\.([^.]+)\.ya?ml$")


class Untranslated(NamedTuple):
    """A field a translation leaves in the main language: ``("es", "sections[2].body")``."""

    language: str
    field: str


def main_language(campaign: Campaign, settings: Settings) -> str:
    """The language ``campaign.yaml`` is written in: its ``language:``, else the project's."""
    return campaign.language or normalise_language(settings.language) or "en"


def variant_files(campaign_dir: Path) -> dict[str, Path]:
    """The ``campaign.<lang>.yaml`` files of a campaign folder, by language code.

    A name that almost is one (``campaign.es-ES.yaml``, ``campaign.ES.yaml``) is an error
    that says which name to use, rather than a translation silently ignored.
    """
    found: dict[str, Path] = {}
    folder = Path(campaign_dir)
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        m = _VARIANT.match(path.name)
        if not m or not path.is_file():
            continue
        code = m.group(1)
        if code in iso_639_1():
            found[code] = path
            continue
        normal = normalise_language(code)
        if normal is not None:
            raise ContentError(
                f"{display_file(path)}: translations are named campaign.<code>.yaml with an "
                f"ISO 639-1 code in lower case",
                hint=f"rename it to campaign.{normal}.yaml",
            )
        if len(code) == 2:
            raise ContentError(
                f"{display_file(path)}: {code!r} is not an ISO 639-1 language code",
                hint="name translations e.g. campaign.es.yaml, campaign.it.yaml, campaign.cy.yaml",
            )
    return found


@dataclass
class _Merge:
    """State of laying one translation over the main data."""

    main: YamlFile
    variant: YamlFile
    origins: Origins
    provided: set[Loc] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def problem(self, vloc: Loc, message: str) -> None:
        self.problems.append(f"{self.variant.where(vloc)}: {dotted(vloc)}: {message}")

    def take(self, vloc: Loc, mloc: Loc) -> None:
        """The translation's value at ``vloc`` is used whole at ``mloc``."""
        self.provided.add(mloc)
        for loc in [m for m in self.origins if m[: len(mloc)] == mloc]:
            del self.origins[loc]
        n = len(vloc)
        for loc, line in self.variant.lines.items():
            if loc[:n] == vloc:
                self.origins[(*mloc, *loc[n:])] = (self.variant.shown, line)


class Translations:
    """A campaign folder's ``campaign.yaml`` and its translations, each file read once."""

    def __init__(self, campaign_dir: Path) -> None:
        self.campaign_dir = Path(campaign_dir)
        self._main = read_main(self.campaign_dir)
        self.main = validate_file(self.campaign_dir, self._main)
        self.files = variant_files(self.campaign_dir)
        self._docs: dict[str, YamlFile] = {}
        self._merged: dict[str, tuple[dict[str, Any], _Merge]] = {}

    @property
    def languages(self) -> list[str]:
        """The languages that have a translation file (the main one excluded)."""
        return sorted(self.files)

    def check_main(self, main: str) -> None:
        """Refuse a translation file for the main language (two sources for one edition)."""
        if main in self.files:
            raise ContentError(
                f"{display_file(self.files[main])}: {main!r} is the main language of "
                f"{self._main.shown}; its content belongs there",
                hint=f"merge it into {CONTENT_FILE}, or set language: in {CONTENT_FILE} to the "
                "language it is written in",
            )

    def campaign(self, language: str) -> Campaign:
        """The issue in ``language``: the translation laid over the main content, validated.

        A language without a translation file is the main campaign unchanged.
        """
        if language not in self.files:
            return self.main
        data, merge = self._merge(language)
        return validate_campaign(
            data, merge.origins, self.campaign_dir, self.files[language], merge.variant.shown
        )

    def untranslated(self) -> list[Untranslated]:
        """Every text field each translation leaves in the main language, in file order."""
        out: list[Untranslated] = []
        for language in self.languages:
            _, merge = self._merge(language)
            for loc in _text_fields(self._main.data, ()):
                if not any(loc[:n] in merge.provided for n in range(1, len(loc) + 1)):
                    out.append(Untranslated(language, dotted(loc)))
        return out

    # -- laying a translation over the main content --------------------------------------

    def _variant(self, language: str) -> YamlFile:
        if language not in self._docs:
            doc = read_yaml(self.files[language])
            if not isinstance(doc.data, dict):
                raise ContentError(
                    f"{doc.shown}: expected a mapping of keys (subject:, sections: …) like "
                    f"{CONTENT_FILE}"
                )
            self._docs[language] = doc
        return self._docs[language]

    def _merge(self, language: str) -> tuple[dict[str, Any], _Merge]:
        if language in self._merged:
            return self._merged[language]
        variant = self._variant(language)
        merge = _Merge(self._main, variant, self._main.origins())
        main_data: dict[str, Any] = self._main.data
        out = dict(main_data)
        for key, value in variant.data.items():
            loc: Loc = (key,)
            if value is None:
                continue
            if key == "language":
                if normalise_language(str(value)) != language:
                    merge.problem(loc, f"says {value!r} but the file name says {language!r}")
            elif key in FIXED_TOP:
                _same(merge, loc, value, main_data.get(key))
            elif key == "merge_fields":
                out[key] = _merge_fields(merge, main_data.get(key), value)
            elif key == "sections":
                out[key] = _sections(merge, main_data.get(key), value)
            else:
                out[key] = _value(merge, main_data.get(key), value, loc, loc)
        if merge.problems:
            raise ContentError("\n".join(merge.problems))
        out["language"] = language
        self._merged[language] = (out, merge)
        return out, merge


def _same(merge: _Merge, vloc: Loc, value: Any, main: Any) -> None:
    if value != main:
        merge.problem(
            vloc,
            f"is {main!r} in {CONTENT_FILE}; a translation cannot change it (leave it out)",
        )


def _value(merge: _Merge, main: Any, value: Any, mloc: Loc, vloc: Loc) -> Any:
    """``value`` laid over ``main``: mappings key by key, lists item by item, else replaced."""
    if value is None:
        return main
    if isinstance(main, dict) and isinstance(value, dict):
        out = dict(main)
        for key, item in value.items():
            if key in FIXED_SECTION:
                _same(merge, (*vloc, key), item, main.get(key, _DEFAULTS.get(key)))
            elif item is not None:
                out[key] = _value(merge, main.get(key), item, (*mloc, key), (*vloc, key))
        return out
    if isinstance(main, list) and isinstance(value, list):
        if len(value) > len(main):
            merge.problem(
                (*vloc, len(main)),
                f"{CONTENT_FILE} has {len(main)} item(s) here; a translation cannot add any",
            )
        out_list = list(main)
        for i, item in enumerate(value[: len(main)]):
            out_list[i] = _value(merge, main[i], item, (*mloc, i), (*vloc, i))
        return out_list
    merge.take(vloc, mloc)
    return value


def _sections(merge: _Merge, main: Any, value: Any) -> Any:
    """Translated sections matched to the main ones by ``id:``, else by position."""
    vloc: Loc = ("sections",)
    if not isinstance(main, list) or not isinstance(value, list):
        return _value(merge, main, value, vloc, vloc)
    ids = {s["id"]: i for i, s in enumerate(main) if isinstance(s, dict) and s.get("id")}
    out = list(main)
    used: dict[int, int] = {}
    for vi, section in enumerate(value):
        here: Loc = ("sections", vi)
        if section is None or section == {}:
            continue
        if not isinstance(section, dict):
            merge.problem(here, "expected a section's fields (title:, body: …)")
            continue
        if section.get("id") is not None:
            mi = ids.get(section["id"])
            if mi is None:
                known = ", ".join(map(str, ids)) or "none"
                merge.problem(
                    (*here, "id"),
                    f"no section has id {section['id']!r} in {CONTENT_FILE} (ids: {known})",
                )
                continue
        elif vi < len(main):
            mi = vi
        else:
            merge.problem(
                here,
                f"{CONTENT_FILE} has {len(main)} sections; give this one the id: of the "
                "section it translates, or remove it",
            )
            continue
        if mi in used:
            merge.problem(here, f"translates sections[{mi}] again (see sections[{used[mi]}])")
            continue
        used[mi] = vi
        out[mi] = _value(merge, main[mi], section, ("sections", mi), here)
    return out


def _merge_fields(merge: _Merge, main: Any, value: Any) -> Any:
    """Translated defaults of declared merge fields; a new field is an error."""
    vloc: Loc = ("merge_fields",)
    if isinstance(main, dict) and isinstance(value, dict):
        for key in value:
            if key not in main:
                merge.problem(
                    (*vloc, key),
                    f"not declared in {CONTENT_FILE}; declare merge fields there and translate "
                    "their defaults here",
                )
    return _value(merge, main, value, vloc, vloc)


def _text_fields(data: Any, loc: Loc) -> Iterator[Loc]:
    """Field paths of the words in the main content (not URLs, types, dates or the theme)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if (not loc and key in NOT_TRANSLATED_TOP) or key in NOT_TEXT:
                continue
            yield from _text_fields(value, (*loc, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _text_fields(value, (*loc, i))
    elif isinstance(data, str) and data.strip():
        yield loc


def untranslated_strings(campaign_dir: Path, settings: Settings) -> list[Untranslated]:
    """``(language, "messages.<key>")`` for each catalogue string (templates/i18n) a language
    of this campaign lacks; those readers see it in the main language. For ``check``."""
    translations = Translations(campaign_dir)
    main = main_language(translations.main, settings)
    dirs = template_dirs(settings.root)
    return [
        Untranslated(lang, f"messages.{key}")
        for lang in _unique([main, *translations.languages])
        for key in missing_messages(lang, dirs)
    ]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def untranslated(campaign_dir: Path) -> list[Untranslated]:
    """``(language, field path)`` for each text field a translation leaves untranslated.

    For ``check`` (a warning, never an error: a partial translation is allowed).
    """
    return Translations(campaign_dir).untranslated()
