"""CSS inlining with css-inline, as MJML's own ``mj-style inline="inline"`` would do it.

mjml-python does not inline ``mj-style inline="inline"`` blocks (it emits them as plain
``<style>``), so ``render.mjml`` lifts them out and we apply them here as ``extra_css``.
MJML's own head styles (resets, the column ``@media`` rules, dark mode) are kept as ``<style>``
but *not* inlined: inlining ``table, td {…}`` into every cell would only add weight; they are
marked ``data-css-inline="ignore"`` for the inliner and the mark is removed afterwards.
Nothing remote is fetched (``load_remote_stylesheets=False``).
"""

from __future__ import annotations

import css_inline

from ..errors import TemplateError

_IGNORE = ' data-css-inline="ignore"'


def inline_css(html: str, inline_rules: str) -> str:
    """``html`` with ``inline_rules`` applied as ``style=""`` attributes; ``<style>`` kept."""
    inliner = css_inline.CSSInliner(
        inline_style_tags=True,
        keep_style_tags=True,
        keep_at_rules=True,
        load_remote_stylesheets=False,
        extra_css=inline_rules or None,
    )
    marked = html.replace("<style", "<style" + _IGNORE)
    try:
        out = inliner.inline(marked)
    except ValueError as exc:  # css_inline.InlineError subclasses ValueError
        raise TemplateError(f"CSS inlining failed: {exc}") from exc
    return out.replace(_IGNORE, "")
