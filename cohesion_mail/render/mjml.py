"""MJML → HTML with mjml-python, after our own well-formedness check.

mjml-python (the Rust ``mrml`` port) raises a bare ``ValueError`` with no position for broken
input and silently accepts unknown ``mj-*`` tags, so a template typo would either fail with no
clue or vanish from the email. Before compiling we parse the MJML with expat and report the
template and the line:column of malformed XML or an unknown tag.

The MJML is assembled from pieces (the base layout and one rendered partial per section);
``Piece`` spans let an error inside a section point at that section's partial.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from dataclasses import dataclass

import mjml

from ..errors import TemplateError

KNOWN_TAGS = frozenset(
    [
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-raw",
        "mj-section",
        "mj-column",
        "mj-group",
        "mj-wrapper",
        "mj-hero",
        "mj-text",
        "mj-image",
        "mj-button",
        "mj-divider",
        "mj-spacer",
        "mj-table",
        "mj-social",
        "mj-social-element",
        "mj-navbar",
        "mj-navbar-link",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-carousel",
        "mj-carousel-image",
        "mj-include",
    ]
)
# Their content is HTML, passed through as-is: its tags are not MJML.
ENDING_TAGS = frozenset(
    [
        "mj-text",
        "mj-button",
        "mj-table",
        "mj-raw",
        "mj-navbar-link",
        "mj-social-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-style",
        "mj-title",
        "mj-preview",
    ]
)
_INLINE_STYLE = re.compile(r'<mj-style\s+inline="inline"\s*>(.*?)</mj-style>', re.DOTALL)


@dataclass(frozen=True)
class Piece:
    """Where one template's output sits in the assembled MJML (character offsets)."""

    template: str
    label: str
    start: int
    end: int


def _where(source: str, line: int, col: int, pieces: list[Piece], base: str) -> str:
    """``template (label) line L, col C`` for a 1-based line / 0-based column in ``source``."""
    lines = source.split("\n")
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + col
    for p in pieces:
        if p.start <= offset < p.end:
            local = source[p.start : offset]
            l_line = local.count("\n") + 1
            l_col = offset - (p.start + (local.rfind("\n") + 1 if "\n" in local else 0)) + 1
            return f"{p.template} ({p.label}): output line {l_line}, col {l_col}"
    return f"{base}: output line {line}, col {col + 1}"


def _excerpt(source: str, line: int) -> str:
    lines = source.split("\n")
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return f"\n  near: {text[:120]}" if text else ""


def check_mjml(source: str, pieces: list[Piece], base: str) -> None:
    """Raise ``TemplateError`` naming template + position for malformed XML or unknown mj-* tags."""
    parser = xml.parsers.expat.ParserCreate()
    depth_in_html = 0
    problems: list[tuple[int, int, str]] = []

    def start(name: str, _attrs: dict[str, str]) -> None:
        nonlocal depth_in_html
        if depth_in_html:
            depth_in_html += 1
            return
        if name.startswith("mj") and name not in KNOWN_TAGS:
            problems.append((parser.CurrentLineNumber, parser.CurrentColumnNumber, name))
        if name in ENDING_TAGS:
            depth_in_html = 1

    def end(_name: str) -> None:
        nonlocal depth_in_html
        if depth_in_html:
            depth_in_html -= 1

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(source, True)
    except xml.parsers.expat.ExpatError as exc:
        message = xml.parsers.expat.errors.messages.get(exc.code, str(exc))
        where = _where(source, exc.lineno, exc.offset, pieces, base)
        raise TemplateError(
            f"{where}: malformed MJML: {message}{_excerpt(source, exc.lineno)}",
            hint="every tag must be closed (<br />, <img … />) and & written as &amp;",
        ) from None
    if problems:
        line, col, name = problems[0]
        raise TemplateError(
            f"{_where(source, line, col, pieces, base)}: unknown MJML tag <{name}>"
            f"{_excerpt(source, line)}",
            hint="see https://documentation.mjml.io/ for the components mjml-python supports",
        )


def split_inline_styles(source: str) -> tuple[str, str]:
    """Lift ``<mj-style inline="inline">`` blocks out: (MJML without them, their CSS)."""
    css = "\n".join(m.group(1).strip() for m in _INLINE_STYLE.finditer(source))
    return _INLINE_STYLE.sub("", source), css


def compile_mjml(source: str, pieces: list[Piece], base: str) -> tuple[str, str]:
    """Check and compile MJML; return (HTML, the CSS still to be inlined)."""
    check_mjml(source, pieces, base)
    stripped, inline_css = split_inline_styles(source)
    try:
        html = mjml.mjml2html(stripped, disable_comments=True, fonts={})
    except ValueError as exc:
        raise TemplateError(f"{base}: mjml-python could not compile the MJML: {exc}") from exc
    return html, inline_css
