"""The Jinja2 side of rendering: where templates live, the environment, and the content context.

Templates are MJML with Jinja2 (``templates/base.mjml.j2`` and one partial per section type,
``templates/sections/<type>.mjml.j2``). A project can override any of them by putting a file
of the same name in ``<project root>/templates/``; the built-in set is the fallback.

The environment autoescapes everything and uses ``StrictUndefined``, so a misspelt variable is
an error, not a blank. Content reaches templates already prepared: merge fields replaced by
sentinels (see ``render.personalise``), Markdown bodies rendered to HTML, local images
resolved to public URLs. Content is data, never template source: ``{{x}}`` in a body is text.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from ..content import Campaign, Loc, dotted
from ..errors import MergeFieldError, TemplateError
from .fields import CONTENT_MERGE, STANDARD_FIELDS
from .markdown import render_markdown
from .personalise import sentinel

# The repository's templates/ (source checkout, editable install); a wheel may ship them as
# package data in cohesion_mail/data/templates instead.
BUILTIN_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
PACKAGED_TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "templates"
MARKDOWN_KEYS = frozenset({"body", "intro", "note"})


def template_dirs(root: Path) -> tuple[Path, ...]:
    """The project's ``templates/`` first (overrides), then the built-in templates."""
    dirs = [root / "templates", BUILTIN_TEMPLATES, PACKAGED_TEMPLATES]
    seen: list[Path] = []
    for d in dirs:
        if d.is_dir() and d.resolve() not in seen:
            seen.append(d.resolve())
    if not seen:
        raise TemplateError(
            f"no templates folder found (looked in {root / 'templates'} and {BUILTIN_TEMPLATES})"
        )
    return tuple(seen)


def _tint(color: str, amount: float = 0.9) -> str:
    """``color`` mixed with white (``amount`` = share of white): a light background tint."""
    value = color.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    try:
        rgb = [int(value[i : i + 2], 16) for i in (0, 2, 4)]
    except ValueError:
        return color
    mixed = [round(c + (255 - c) * amount) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


@lru_cache(maxsize=8)
def environment(dirs: tuple[Path, ...]) -> jinja2.Environment:
    """One cached environment per template search path (warm builds reuse compiled templates)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(d) for d in dirs]),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["tint"] = _tint
    return env


def shown_template(env: jinja2.Environment, name: str) -> str:
    """A template's file path for messages, relative to the working directory when below it."""
    try:
        source = env.loader.get_source(env, name)[1] if env.loader else None
    except jinja2.TemplateNotFound:
        source = None
    if not source:
        return f"templates/{name}"
    try:
        return str(Path(source).resolve().relative_to(Path.cwd()))
    except ValueError:
        return source


def render_template(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render one template; Jinja2 errors become ``TemplateError`` with file and line."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = exc.filename or shown_template(env, name)
        raise TemplateError(
            f"{_rel(where)}:{exc.lineno}: template syntax error: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {exc.name} not found",
            hint=f"add templates/{exc.name} (searched: {', '.join(map(str, _search(env)))})",
        ) from None
    except MergeFieldError:
        raise
    except (jinja2.UndefinedError, TypeError, ValueError) as exc:
        line = _template_line(exc)
        where = f"{shown_template(env, name)}:{line}" if line else shown_template(env, name)
        raise TemplateError(f"{where}: {exc}") from None


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _search(env: jinja2.Environment) -> list[str]:
    loader = env.loader
    return list(loader.searchpath) if isinstance(loader, jinja2.FileSystemLoader) else []


def _template_line(exc: BaseException) -> int | None:
    """The template line of the innermost template frame (Jinja2 rewrites tracebacks so)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class Merger:
    """Turns merge fields into this build's sentinels and records which fields are used."""

    def __init__(self, campaign: Campaign, nonce: str) -> None:
        self.campaign = campaign
        self.nonce = nonce
        self.known = frozenset(STANDARD_FIELDS) | frozenset(campaign.merge_fields)
        self.used: set[str] = set()

    def _unknown(self, name: str) -> str:
        return f"unknown merge field {name!r} (known: {', '.join(sorted(self.known))})"

    def content(self, text: str, loc: Loc) -> str:
        """``*|name|*`` → sentinel in editor text; unknown names are an error naming file+field."""
        if "*|" not in text:
            return text

        def repl(m: Any) -> str:
            name = m.group(1)
            if name not in self.known:
                raise MergeFieldError(
                    f"{self.campaign.where(loc)}: {dotted(loc)}: {self._unknown(name)}",
                    hint="declare extra fields with a default under merge_fields:",
                )
            self.used.add(name)
            return sentinel(self.nonce, name)

        return str(CONTENT_MERGE.sub(repl, text))

    def template_function(self) -> Callable[..., Markup]:
        """``merge("unsubscribe_url")`` for templates."""

        @jinja2.pass_context
        def merge(ctx: jinja2.runtime.Context, name: str) -> Markup:
            if name not in self.known:
                raise MergeFieldError(f"templates/{ctx.name}: merge(): {self._unknown(name)}")
            self.used.add(name)
            return Markup(sentinel(self.nonce, name))

        return merge


def prepare(value: Any, loc: Loc, merger: Merger) -> Any:
    """Campaign data for templates: sentinels for merge fields, Markdown bodies as HTML."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in MARKDOWN_KEYS and isinstance(item, str):
                out[key] = render_markdown(merger.content(item, (*loc, key)))
            else:
                out[key] = prepare(item, (*loc, key), merger)
        return out
    if isinstance(value, list):
        return [prepare(item, (*loc, i), merger) for i, item in enumerate(value)]
    if isinstance(value, str):
        return merger.content(value, loc)
    return value


def image_url(src: str, base_url: str, slug: str) -> str:
    """A local image's public URL: ``<base_url>/campaigns/<slug>/<path>`` (see content.py)."""
    if src.startswith(("http://", "https://", "cmf")):
        return src
    path = PurePosixPath(src.replace(os.sep, "/"))
    return f"{base_url.rstrip('/')}/campaigns/{quote(slug)}/{quote(str(path))}"
