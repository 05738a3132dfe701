"""Markdown bodies → email-safe HTML fragments (markdown-it-py, CommonMark).

Raw HTML in content is disabled (it is shown as text), so an editor cannot break the layout or
inject markup; markdown-it's link validation drops ``javascript:``/``vbscript:``/``file:`` URLs.
Output is XHTML (``<br />``) because the MJML around it is checked as XML before compiling.
Nothing in the text is evaluated: ``{{x}}`` and ``[[x]]`` are plain characters here.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markupsafe import Markup


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "xhtmlOut": True, "breaks": False})


def render_markdown(text: str) -> Markup:
    """One Markdown body as an HTML fragment, safe to place inside ``<mj-text>``."""
    if not text.strip():
        return Markup("")
    return Markup(_parser().render(text).strip())
