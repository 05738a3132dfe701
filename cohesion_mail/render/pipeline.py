"""Build one issue: content → Jinja2 → MJML → mjml-python → css-inline → HTML + text, once.

The result is a ``CompiledIssue`` whose HTML and text carry merge-field sentinels; the send
loop personalises it per recipient with string joins (``CompiledIssue.personalise``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from markupsafe import Markup

from ..config import Settings
from ..content import Campaign, load_campaign
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


def build_issue(
    campaign_dir: Path, settings: Settings, *, language: str | None = None
) -> CompiledIssue:
    """Load, validate and compile ``campaign_dir`` into a ``CompiledIssue``.

    ``language`` selects a translation once campaigns have them; today it only sets ``lang``.
    Raises ``ContentError``, ``MergeFieldError`` or ``TemplateError`` naming file and position.
    """
    campaign_dir = Path(campaign_dir)
    campaign = load_campaign(campaign_dir)
    return compile_campaign(campaign, campaign_dir.resolve().name, settings, language=language)


def compile_campaign(
    campaign: Campaign, slug: str, settings: Settings, *, language: str | None = None
) -> CompiledIssue:
    """Compile an already loaded campaign (``build_issue`` without the file reading)."""
    nonce = new_nonce()
    mjml_source, pieces, merger = render_mjml(campaign, slug, settings, nonce, language=language)
    html, inline_rules = compile_mjml(mjml_source, pieces, pieces_base(settings))
    html = inline_css(html, inline_rules)
    text = html_to_text(html)
    lang = language or campaign.language or settings.language
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
    *,
    language: str | None = None,
) -> tuple[str, list[Piece], Merger]:
    """The MJML source of the issue, where each section's partial sits in it, and the merger."""
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
                    [d.model_dump() for d in _when(campaign, i, j)],
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
        "issue": {"number": campaign.issue.number, "date": date, "month": f"{date:%B %Y}"},
        "language": language or campaign.language or settings.language,
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


def _when(campaign: Campaign, i: int, j: int) -> list[Any]:
    section = campaign.sections[i]
    items = getattr(section, "items", [])
    return list(items[j].when)
