"""Translations a reader would notice: fields and template strings left in another language.

A partial translation is allowed (each missing field falls back to the main language), so
these are **warnings**, one per language and kind, listing the fields: a translator wants the
list to work through, not a hundred lines. A broken translation file is an **error** with its
file and line, like a broken ``campaign.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..errors import ContentError, TemplateError
from ..i18n import CATALOGUE_FOLDER, REFERENCE_LANGUAGE
from ..translations import Translations, Untranslated, untranslated_strings, variant_files
from .findings import Finding, warning
from .source import display_file

RULE = "untranslated"
SHOWN_FIELDS = 12  # fields named in one finding; the rest are counted


def translation_findings(
    campaign_dir: Path,
    settings: Settings,
    error_findings: Callable[[ContentError | TemplateError], list[Finding]],
) -> list[Finding]:
    """Warnings for untranslated fields and catalogue strings; errors for a bad translation.

    ``error_findings`` turns a ``ContentError``/``TemplateError`` into findings (it lives in
    ``cohesion_mail.check``, which imports this module).
    """
    campaign_dir = Path(campaign_dir)
    try:
        variant_files(campaign_dir)  # a misnamed translation (campaign.es-ES.yaml) is an error
    except ContentError as exc:
        return error_findings(exc)
    try:
        translations = Translations(campaign_dir)
    except ContentError:
        return []  # campaign.yaml itself is broken: the content rules report it
    found: list[Finding] = []
    try:
        for language in translations.languages:
            translations.campaign(language)  # validates the merged edition
        missing = translations.untranslated()
    except ContentError as exc:
        return error_findings(exc)
    for language, fields in _by_language(missing).items():
        path = translations.files[language]
        found.append(
            warning(
                RULE,
                path.name,
                f"{len(fields)} field(s) not translated into {language!r}; those readers see "
                f"them in the main language: {_listed(fields)}",
                f"translate them in {path.name}, or leave them out on purpose",
                file=display_file(path),
            )
        )
    try:
        strings = untranslated_strings(campaign_dir, settings)
    except (ContentError, TemplateError) as exc:
        return found + error_findings(exc)
    for language, keys in _by_language(strings).items():
        name = f"{language}.yaml"
        found.append(
            warning(
                RULE,
                f"templates/{CATALOGUE_FOLDER}/{name}",
                f"{len(keys)} template string(s) have no {language!r} translation; those "
                f"readers see them in the main language or English: {_listed(keys)}",
                f"add them under messages: in templates/{CATALOGUE_FOLDER}/{name} (copy them "
                f"from templates/{CATALOGUE_FOLDER}/{REFERENCE_LANGUAGE}.yaml)",
            )
        )
    return found


def _by_language(items: list[Untranslated]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for language, field in items:
        out.setdefault(language, []).append(field)
    return out


def _listed(fields: list[str]) -> str:
    shown = ", ".join(fields[:SHOWN_FIELDS])
    more = len(fields) - SHOWN_FIELDS
    return f"{shown} … and {more} more" if more > 0 else shown
