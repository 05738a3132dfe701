"""Rules on the compiled email, as a sample recipient would receive it.

* size: Gmail clips an HTML part over 102 KB ("[Message clipped] View entire message") and the
  unsubscribe link at the bottom disappears with the rest, so over 102 KB is an error and over
  80 KB a warning. Measured on the HTML *with* click-tracking URLs when the campaign tracks
  clicks, since that is what is sent.
* an unsubscribe link (the ``unsubscribe_url`` field) must be in the HTML, and the postal
  address must be shown;
* links and images that templates add (the content's own were judged with their line numbers);
* CSS the major clients do not support (``checks.css``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

from ..config import Settings
from ..render.personalise import CompiledIssue
from ..render.pipeline import BASE_TEMPLATE, GMAIL_CLIP_BYTES
from ..render.sample import SAMPLE_SECRET, sample_values
from ..render.templates import image_url
from ..tracking.tokens import Links, Signer
from .css import AtRule, Item, css_findings
from .findings import Finding, error, warning
from .source import display_file
from .urls import judge_url

SIZE_WARNING_BYTES = 80 * 1024
_SPACES = re.compile(r"\s+")


@dataclass
class Parsed:
    """What the checks need from an HTML document."""

    anchors: list[tuple[str, str]] = field(default_factory=list)  # (href, text)
    images: list[dict[str, str | None]] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)  # <style> sheets and style="" attributes
    text: str = ""


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = Parsed()
        self._text: list[str] = []
        self._anchor: list[str] | None = None
        self._raw: str | None = None  # inside <style>, <script> or <title>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        style = a.get("style") or ""
        if style and "display:none" not in style.replace(" ", "").lower():
            self.out.styles.append(style)  # a hidden element's looks do not matter (preheader)
        if tag in ("style", "script", "title"):
            self._raw = tag
            if tag == "style":
                self.out.styles.append("")
        elif tag == "a":
            self.out.anchors.append((a.get("href") or "", ""))
            self._anchor = []
        elif tag == "img":
            self.out.images.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None
        elif tag == "a" and self._anchor is not None and self.out.anchors:
            href, _ = self.out.anchors[-1]
            self.out.anchors[-1] = (href, _SPACES.sub(" ", "".join(self._anchor)).strip())
            self._anchor = None

    def handle_data(self, data: str) -> None:
        if self._raw:
            if self._raw == "style":
                self.out.styles[-1] += data
            return
        self._text.append(data)
        if self._anchor is not None:
            self._anchor.append(data)

    def close(self) -> None:
        super().close()
        self.out.text = _SPACES.sub(" ", " ".join(self._text))


def parse_html(doc: str) -> Parsed:
    collector = _Collector()
    collector.feed(doc)
    collector.close()
    return collector.out


# -- where in the templates ------------------------------------------------------------------


@lru_cache(maxsize=4)
def _template_lines(dirs: tuple[Path, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(shown path, lines) of every template a build can use; project overrides shadow."""
    seen: set[Path] = set()
    out: list[tuple[str, tuple[str, ...]]] = []
    for d in dirs:
        for path in sorted(d.rglob("*.j2")):
            rel = path.relative_to(d)
            if rel in seen:
                continue
            seen.add(rel)
            try:
                lines = tuple(path.read_text(encoding="utf-8").splitlines())
            except (OSError, UnicodeDecodeError):
                continue
            out.append((display_file(path), lines))
    return tuple(out)


class TemplateLocator:
    """Finds the template line that wrote a piece of the HTML (best effort, first match)."""

    def __init__(self, dirs: tuple[Path, ...]) -> None:
        # Re-read on every check: a template edited during ``preview`` must be found anew.
        _template_lines.cache_clear()
        self.files = _template_lines(dirs)

    def find(self, *patterns: str) -> tuple[str, int] | None:
        for pattern in patterns:
            rx = re.compile(pattern, re.IGNORECASE)
            for shown, lines in self.files:
                for n, line in enumerate(lines, 1):
                    if rx.search(line):
                        return shown, n
        return None

    def path_of(self, name: str) -> str:
        for shown, _ in self.files:
            if shown.endswith(name):
                return shown
        return f"templates/{name}"

    def css(self, item: Item) -> tuple[str, int] | None:
        if isinstance(item, AtRule):
            return self.find(rf"@{re.escape(item.name)}\b")
        head = re.escape(item.value.split(" ")[0][:30])
        prop = re.escape(item.prop)
        return self.find(rf"{prop}\s*:\s*{head}", rf'{prop}="{head}', rf"(?<![\w-]){prop}\s*[:=]")


# -- the rules -------------------------------------------------------------------------------


def html_findings(
    issue: CompiledIssue,
    settings: Settings,
    *,
    content_urls: set[str],
    postal_address: str,
    template_dirs: tuple[Path, ...],
) -> tuple[list[Finding], int]:
    """Findings on the compiled issue and the size in bytes of the HTML as sent."""
    values = sample_values(issue, settings)
    links = Links(settings.base_url, Signer(SAMPLE_SECRET))
    click: Callable[[str], str] | None = None
    if issue.click_tracking:
        click = lambda url: links.click(0, 0, url)  # noqa: E731
    sent_html, _ = issue.personalise(values, click)
    size = len(sent_html.encode("utf-8"))
    plain_html, _ = issue.personalise(values)
    doc = parse_html(plain_html)
    templates = TemplateLocator(template_dirs)
    base = templates.path_of(BASE_TEMPLATE)
    found: list[Finding] = []

    kb = f"{size / 1024:.1f} KB"
    if size > GMAIL_CLIP_BYTES:
        found.append(error(
            "html-size", "HTML",
            f"the email's HTML is {kb}: Gmail clips messages over 102 KB and hides the rest,"
            " unsubscribe link included, behind 'View entire message'",
            "shorten the issue: fewer or shorter sections, or link to long articles on the web",
        ))  # fmt: skip
    elif size > SIZE_WARNING_BYTES:
        found.append(warning(
            "html-size", "HTML",
            f"the email's HTML is {kb}, close to Gmail's 102 KB clipping limit",
            "keep the issue from growing: shorten sections or link to long articles on the web",
        ))  # fmt: skip

    unsubscribe = values.get("unsubscribe_url", "")
    if not any(href == unsubscribe for href, _ in doc.anchors):
        found.append(error(
            "unsubscribe-missing", base,
            "the email has no unsubscribe link: every newsletter needs one (the law, and Gmail's"
            " and Yahoo's bulk-sender rules)",
            f"add <a href=\"{{{{ merge('unsubscribe_url') }}}}\">Unsubscribe</a> to the footer"
            f" of {base}",
            file=base,
        ))  # fmt: skip
    address = _SPACES.sub(" ", postal_address).strip()
    if address and address not in doc.text:
        found.append(error(
            "postal-address", base,
            "the postal address is set but the email does not show it",
            f"show {{{{ footer.postal_address }}}} in the footer of {base}",
            file=base,
        ))  # fmt: skip

    ours = {v for k, v in values.items() if k.endswith("_url")}
    known = content_urls | {image_url(u, settings.base_url, issue.slug) for u in content_urls}
    for href, text in doc.anchors:  # attribute values arrive unescaped from HTMLParser
        if href in ours or href in known:
            continue
        verdict = judge_url(href)
        if verdict:
            at = templates.find(re.escape(f'href="{href}"'), re.escape(href))
            found.append(Finding(
                verdict.level, verdict.rule, at[0] if at else "HTML",
                f'link "{text}" in the template: {verdict.message}', verdict.fix,
                *(at or (None, None)),
            ))  # fmt: skip
    for img in doc.images:
        src = img.get("src") or ""
        if src in ours or src in known:
            continue
        at = templates.find(re.escape(f'src="{src}"'), re.escape(src)) if src else None
        loc = {"file": at[0], "line": at[1]} if at else {}
        verdict = judge_url(src)
        if verdict and verdict.rule != "link-anchor":
            found.append(Finding(
                verdict.level, verdict.rule, at[0] if at else "HTML",
                f"image in the template: {verdict.message}", verdict.fix, *(at or (None, None)),
            ))  # fmt: skip
        if img.get("alt") is None:
            found.append(error(
                "image-alt", at[0] if at else "HTML", f"image {src[:60]!r} has no alt attribute",
                'add alt="what it shows" (or alt="" if it is decoration)', **loc,
            ))  # fmt: skip
        if not img.get("width"):
            found.append(warning(
                "image-width", at[0] if at else "HTML",
                f"image {src[:60]!r} has no width: Outlook for Windows shows it at natural size",
                'add width="…" in pixels', **loc,
            ))  # fmt: skip

    found += css_findings(doc.styles, templates.css)
    return found, size
