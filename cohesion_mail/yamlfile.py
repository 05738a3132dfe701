"""YAML files read with the line of every field, so errors can say ``file:line: field: …``.

Shared by the campaign content (``campaign.yaml`` and its ``campaign.<lang>.yaml``
translations) and the message catalogues (``templates/i18n/<lang>.yaml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import CohesionMailError, ContentError

# libyaml's parser when PyYAML was built with it (10× faster; same marks and errors).
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Loc = tuple[str | int, ...]
# Where a field was written: (file as shown in messages, 1-based line).
Origins = dict[Loc, tuple[str, int]]


@dataclass(frozen=True)
class YamlFile:
    """One parsed YAML file: its data and the line of every field path in it."""

    path: Path
    shown: str
    data: Any
    lines: dict[Loc, int]

    def origins(self) -> Origins:
        return {loc: (self.shown, line) for loc, line in self.lines.items()}

    def where(self, loc: Loc) -> str:
        """``file:line`` of ``loc`` (or of its nearest enclosing field), else just ``file``."""
        for n in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:n]))
            if line:
                return f"{self.shown}:{line}"
        return self.shown


def display_file(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def dotted(loc: Loc) -> str:
    """A field path as editors write it: ``sections[2].link.url``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read_yaml(
    path: Path, *, error: type[CohesionMailError] = ContentError, missing_hint: str | None = None
) -> YamlFile:
    """Read and parse ``path``; ``error`` (naming the file, and line for syntax) if it cannot be."""
    shown = display_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{shown}: missing", hint=missing_hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{shown}: cannot read: {exc}") from exc
    data, lines = parse_yaml(shown, text, error=error)
    return YamlFile(Path(path), shown, data, lines)


def parse_yaml(
    shown: str, text: str, *, error: type[CohesionMailError] = ContentError
) -> tuple[Any, dict[Loc, int]]:
    """The data of ``text`` and the 1-based line of every field path; refuses duplicate keys."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise error(f"{shown}: the file is empty")
        lines: dict[Loc, int] = {}
        _index(shown, node, (), lines, error)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        context = f" ({exc.context})" if exc.context else ""
        raise error(f"{where}: YAML syntax error: {exc.problem}{context}") from None
    except yaml.YAMLError as exc:
        raise error(f"{shown}: YAML syntax error: {exc}") from None
    finally:
        loader.dispose()
    return data, lines


def _index(
    shown: str, node: yaml.Node, loc: Loc, lines: dict[Loc, int], error: type[CohesionMailError]
) -> None:
    """Record the 1-based line of every field path; refuse duplicate keys.

    PyYAML would silently keep the last of two equal keys, losing the editor's first value.
    """
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            path = (*loc, key)
            if key in seen:
                raise error(
                    f"{shown}:{key_node.start_mark.line + 1}: {dotted(path)}: duplicate key"
                )
            seen.add(key)
            lines[path] = key_node.start_mark.line + 1
            _index(shown, value_node, path, lines, error)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(shown, item, (*loc, i), lines, error)
