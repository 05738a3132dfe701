"""The plain-text alternative, made from the final HTML with inscriptis.

MJML's layout tables carry no meaning for text, and walking them triples inscriptis' time, so
the HTML is first reduced to its content: comments (Outlook conditionals) and table/row tags
go, each cell becomes a ``<section>`` block followed by one blank line (except after a cell
whose class includes ``tight``, e.g. a kicker above its title), and
presentational attributes are dropped except ``display:none`` styles.

Links are kept as ``label <https://…>`` (RFC 3986 appendix C's delimiters, which text mail
clients make clickable) or as the bare URL when the label already says it. The hidden
preheader (``display:none``) and the open pixel (an image) do not appear; runs of blank lines
are tidied to one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

_BLANKS = re.compile(r"\n{3,}")
_TIGHT = "\u2063"  # INVISIBLE SEPARATOR: ends a "tight" cell; the blank line after it goes
_TIGHT_END = re.compile(r"\s*" + _TIGHT + r"\s*")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TABLE = re.compile(r"</?(?:table|tbody|thead|tfoot|tr)\b[^>]*>", re.IGNORECASE)
_CELL = re.compile(r"<td\b([^>]*)>|</td>", re.IGNORECASE)
_ATTR = re.compile(
    r"\s(?:style|class|align|role|cellpadding|cellspacing|border|width|height|valign|bgcolor"
    r'|dir|lang|aria-roledescription)="([^"]*)"'
)
_TRAILING = re.compile(r"[ \t\u00a0]+\n")


def _bare(url: str) -> str:
    return re.sub(r"^(https?://)?(www\.)?", "", url).rstrip("/").lower()


def _a_start(state: Any, attrs: dict[str, str]) -> None:
    href = attrs.get("href", "")
    state.link_target = href if href.startswith(("http://", "https://", "mailto:", "cmf")) else ""


def _a_end(state: Any) -> None:
    target = state.link_target
    if target:
        shown = target.removeprefix("mailto:")
        state.tags[-1].write(f" <{shown}>")
    state.link_target = ""


def _simplify(html: str) -> str:
    start = html.find("<body")
    body = _COMMENT.sub("", html[start:] if start >= 0 else html)
    body = _TABLE.sub("", body)
    open_cells: list[str] = []

    def cell(m: re.Match[str]) -> str:
        if m.group(0).startswith("</"):
            return (open_cells.pop() if open_cells else "") + "</section>"
        open_cells.append(_TIGHT if "tight" in (m.group(1) or "") else "")
        return "<section>"

    body = _CELL.sub(cell, body)
    return _ATTR.sub(lambda m: m.group(0) if "display:none" in m.group(1) else "", body)


@lru_cache(maxsize=1)
def _config() -> ParserConfig:
    css = CSS_PROFILES["strict"].copy()
    css["section"] = HtmlElement(display=Display.block, margin_after=1)
    for tag in ("h1", "h2", "h3", "h4", "h5", "h6"):  # the cell before already ends with a blank
        css[tag] = HtmlElement(display=Display.block, margin_before=0, margin_after=1)
    return ParserConfig(
        css=css,
        display_links=False,
        custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(
            start_tag_mapping={"a": _a_start}, end_tag_mapping={"a": _a_end}
        ),
    )


def _dedupe(line: str) -> str:
    """``example.org/x <https://www.example.org/x>`` → ``https://www.example.org/x``."""

    def repl(m: re.Match[str]) -> str:
        label, url = m.group(1), m.group(2)
        return url if _bare(label) == _bare(url) else m.group(0)

    return re.sub(r"(\S+) <([^<>\s]+)>", repl, line)


def html_to_text(html: str) -> str:
    """Readable text for the ``text/plain`` part; merge sentinels pass through untouched."""
    text = get_text(_simplify(html), _config())
    text = _TIGHT_END.sub("\n", text)
    lines = [_dedupe(line.strip()) for line in text.splitlines()]
    text = _TRAILING.sub("\n", "\n".join(lines))
    return _BLANKS.sub("\n\n", text).strip() + "\n"
