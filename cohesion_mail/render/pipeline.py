"""Build one issue: content → Jinja2 → MJML → mjml-python → css-inline → HTML + text, once.

The result is a ``CompiledIssue`` whose HTML and text carry merge-field sentinels; the send
loop personalises it per recipient with string joins (``CompiledIssue.personalise``).
A multilingual issue is compiled once per language (``render.variants.build_variants``);
``COMPILES`` counts compiles so tests can prove it is never once per recipient.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..config import Settings
from ..content import Campaign
from ..i18n import Catalogue, load_catalogue, normalise_language
from ..translations import Translations, main_language
from .inline import inline_css
from .mjml import Piece, compile_mjml
from .personalise import CompiledIssue, new_nonce
from .templates import (
    Merger,
    environment,
    image_url,
    prepare,
    render_template,
    shown_template,
    template_dirs,
)
from .text import html_to_text

BASE_TEMPLATE = "base.mjml.j2"
# Gmail clips HTML over ~102 KB behind "[Message clipped] View entire message".
GMAIL_CLIP_BYTES = 102 * 1024


class CompileCounter:
    """How many issues this process has compiled (thread-safe; read ``.count``)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.count += 1


COMPILES = CompileCounter()


def build_issue(
    campaign_dir: Path, settings: Settings, *, language: str | None = None
) -> CompiledIssue:
    """Load, validate and compile ``campaign_dir`` into a ``CompiledIssue``.

    ``language`` picks the edition (``es-ES`` → ``es``); a language with no
    ``campaign.<lang>.yaml``, or none given, is the main language. Only that edition is
    compiled. Raises ``ContentError``, ``MergeFieldError`` or ``TemplateError`` naming file
    and position.
    """
    campaign_dir = Path(campaign_dir)
    translations = Translations(campaign_dir)
    main = main_language(translations.main, settings)
    translations.check_main(main)
    wanted = normalise_language(language)
    lang = wanted if wanted in translations.files else main
    return compile_campaign(
        translations.campaign(lang), campaign_dir.resolve().name, settings,
        language=lang, fallback=main,
    )  # fmt: skip


def compile_campaign(
    campaign: Campaign,
    slug: str,
    settings: Settings,
    *,
    language: str | None = None,
    fallback: str | None = None,
) -> CompiledIssue:
    """Compile an already loaded campaign (``build_issue`` without the file reading).

    ``language`` is the edition's language (default: the campaign's, else the project's);
    its template strings fall back to ``fallback``'s (the main language), then to English.
    """
    COMPILES.add()
    lang = language or campaign.language or normalise_language(settings.language) or "en"
    catalogue = load_catalogue(
        lang, template_dirs(settings.root), fallback=fallback or campaign.language
    )
    nonce = new_nonce()
    mjml_source, pieces, merger = render_mjml(campaign, slug, settings, nonce, catalogue)
    html, inline_rules = compile_mjml(mjml_source, pieces, pieces_base(settings))
    html = inline_css(html, inline_rules)
    text = html_to_text(html)
    click = campaign.click_tracking
    issue = CompiledIssue(
        slug=slug,
        subject=campaign.subject,
        preheader=campaign.preheader,
        language=lang,
        html=html,
        text=text,
        nonce=nonce,
        fields=frozenset(merger.used),
        merge_defaults=dict(campaign.merge_fields),
        click_tracking=settings.send.click_tracking if click is None else click,
    )
    return issue


def pieces_base(settings: Settings) -> str:
    env = environment(template_dirs(settings.root))
    return shown_template(env, BASE_TEMPLATE)


def render_mjml(
    campaign: Campaign,
    slug: str,
    settings: Settings,
    nonce: str,
    catalogue: Catalogue,
) -> tuple[str, list[Piece], Merger]:
    """The MJML source of the issue, where each section's partial sits in it, and the merger.

    Templates get ``t("key", name=value)`` for the catalogue's fixed strings, ``language``
    and ``direction`` for ``<html lang dir>``; dates arrive formatted for the language.
    """
    env = environment(template_dirs(settings.root))
    merger = Merger(campaign, nonce)
    data = campaign.model_dump(mode="python")
    content: dict[str, Any] = prepare(data, (), merger)
    for i, section in enumerate(content["sections"]):
        for key in ("image", "logo"):
            if section.get(key):
                section[key]["src"] = image_url(section[key]["src"], settings.base_url, slug)
        if section["type"] == "events":
            for j, item in enumerate(section["items"]):
                item["when"] = prepare(
                    [_date_line(d.model_dump(), catalogue) for d in _when(campaign, i, j)],
                    ("sections", i, "items", j, "dates"),
                    merger,
                )
    theme = settings.theme.merged(campaign.theme)
    footer = content["footer"]
    if footer["postal_address"] is None:
        footer["postal_address"] = settings.list.postal_address
    date = campaign.issue.date
    context: dict[str, Any] = {
        "campaign": content,
        "subject": content["subject"],
        "preheader": content["preheader"],
        "issue": {
            "number": campaign.issue.number,
            "date": catalogue.format_date(date),
            "month": catalogue.format_date(date, "month_year"),
        },
        "language": catalogue.language,
        "direction": catalogue.direction,
        "t": catalogue.gettext,
        "theme": asdict(theme),
        "list_name": settings.list.name,
        "sender_name": settings.sender.from_name,
        "footer": footer,
        "merge": merger.template_function(),
    }
    pieces_src: list[tuple[str, str, str]] = []
    for i, section in enumerate(content["sections"]):
        name = f"sections/{section['type']}.mjml.j2"
        ctx = context | {"section": section, "index": i, "count": len(content["sections"])}
        pieces_src.append((name, f"sections[{i}]", render_template(env, name, ctx)))
    context["sections"] = [Markup(src) for _, _, src in pieces_src]
    source = render_template(env, BASE_TEMPLATE, context)
    pieces: list[Piece] = []
    pos = 0
    for name, label, src in pieces_src:
        start = source.find(src, pos)
        if start < 0:
            continue
        pieces.append(Piece(shown_template(env, name), label, start, start + len(src)))
        pos = start + len(src)
    return source, pieces, merger


def _date_line(line: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """An event's date line with an ISO date written out in the issue's language."""
    value = line["date"]
    if not isinstance(value, str):
        line["date"] = catalogue.format_date(value, line.get("format", "date"))
    return line


def _when(campaign: Campaign, i: int, j: int) -> list[Any]:
    section = campaign.sections[i]
    items = getattr(section, "items", [])
    return list(items[j].when)
