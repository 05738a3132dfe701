"""The campaign YAML as the checks read it: every scalar with its field path and line.

``content.load_campaign`` stops at the first file that fails validation and keeps line numbers
private, while a preflight must name *every* placeholder link with its line even in a file
that does not validate. So the checks compose the YAML themselves (PyYAML's node marks) and
walk the raw tree; validation errors still come from ``load_campaign``.

Markdown bodies are parsed with markdown-it (the renderer's CommonMark), with link validation
switched off so that ``javascript:`` links, which the renderer silently turns into text, are
reported rather than lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ..content import CONTENT_FILE, Loc, dotted

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Scalar:
    """One string-like value in the YAML, where it is and where its text sits in the file."""

    loc: Loc
    value: str
    line: int
    start: int
    end: int

    @property
    def path(self) -> str:
        return dotted(self.loc)

    @property
    def key(self) -> str | int | None:
        return self.loc[-1] if self.loc else None


@dataclass(frozen=True)
class MarkdownLink:
    """A link or image inside a Markdown body, with the line it is written on."""

    kind: Literal["link", "image"]
    url: str
    text: str
    line: int


@dataclass
class Source:
    path: Path
    shown: str
    text: str
    data: Any
    scalars: list[Scalar] = field(default_factory=list)
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that is in the file."""
        for n in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line:
                return line
        return None

    def at(self, loc: Loc) -> dict[str, Any]:
        """``file=``/``line=`` keyword arguments for a finding about ``loc``."""
        return {"file": self.shown, "line": self.line(loc)}

    def get(self, loc: Loc) -> Any:
        cur = self.data
        for part in loc:
            in_list = isinstance(part, int) and isinstance(cur, list) and part < len(cur)
            if in_list or (isinstance(part, str) and isinstance(cur, dict) and part in cur):
                cur = cur[part]
            else:
                return None
        return cur

    def markdown_links(self, scalar: Scalar) -> list[MarkdownLink]:
        """Every link and image in the Markdown text of ``scalar``, in order, with its line."""
        found: list[MarkdownLink] = []
        raw = self.text[scalar.start : scalar.end]
        pos = 0
        for kind, url, text in _md_links(scalar.value):
            offset = -1
            for needle in (f"]({url}", f"<{url}>", url):
                offset = raw.find(needle, pos)
                if offset < 0:
                    offset = raw.find(needle)
                if offset >= 0:
                    pos = offset + len(needle)
                    break
            line = scalar.line
            if offset >= 0:
                line = self.text.count("\n", 0, scalar.start + offset) + 1
            found.append(MarkdownLink(kind, url, text, line))
        return found


def display_file(path: Path) -> str:
    """``path`` relative to the working directory when below it, as ``content.py`` shows files."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def read_source(campaign_dir: Path) -> Source | None:
    """The campaign YAML with lines, or ``None`` when it cannot be read or parsed at all
    (``load_campaign`` then reports why, with the line of the syntax error)."""
    path = Path(campaign_dir) / CONTENT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        data = loader.construct_document(node)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    source = Source(path, display_file(path), text, data)
    _walk(node, (), source)
    return source


def _walk(node: yaml.Node, loc: Loc, source: Source) -> None:
    source.lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*loc, str(key_node.value))
            source.lines[path] = key_node.start_mark.line + 1
            _walk(value_node, path, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), source)
    elif isinstance(node, yaml.ScalarNode):
        source.scalars.append(
            Scalar(
                loc,
                str(node.value),
                node.start_mark.line + 1,
                node.start_mark.index,
                node.end_mark.index,
            )
        )


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.validateLink = lambda url: True  # type: ignore[method-assign]
    md.normalizeLink = lambda url: url  # type: ignore[method-assign]
    return md


def _md_links(text: str) -> list[tuple[Literal["link", "image"], str, str]]:
    out: list[tuple[Literal["link", "image"], str, str]] = []
    for block in _parser().parse(text):
        if block.type != "inline" or not block.children:
            continue
        children = block.children
        for i, tok in enumerate(children):
            if tok.type == "link_open":
                out.append(("link", str(tok.attrGet("href") or ""), _label(children, i)))
            elif tok.type == "image":
                out.append(("image", str(tok.attrGet("src") or ""), tok.content))
    return out


def _label(children: list[Token], start: int) -> str:
    parts: list[str] = []
    for tok in children[start + 1 :]:
        if tok.type == "link_close":
            break
        parts.append(tok.content)
    return "".join(parts).strip()
