"""One preflight finding: how bad, where (field path, file:line) and what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """A problem ``check`` found.

    ``where`` is the field path as the editor sees it (``sections[0].link.url``, ``subject``) or,
    for problems in templates or the compiled HTML, the template or ``HTML``. ``file``/``line``
    point at the source when known. ``rule`` is a stable id for scripts (``--json``).
    """

    level: Level
    rule: str
    where: str
    message: str
    fix: str
    file: str | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        """``campaign.yaml:18``, or the file alone, or ``""``."""
        if self.file and self.line:
            return f"{self.file}:{self.line}"
        return self.file or ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error(rule: str, where: str, message: str, fix: str, **at: Any) -> Finding:
    return Finding("error", rule, where, message, fix, **at)


def warning(rule: str, where: str, message: str, fix: str, **at: Any) -> Finding:
    return Finding("warning", rule, where, message, fix, **at)
