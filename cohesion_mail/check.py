"""Preflight: the mistakes that embarrass a newsletter, found before it is sent.

``run_checks`` reads the campaign YAML itself (so every problem has a line, even in a file that
does not validate), then builds the issue and checks the compiled HTML. A content or template
error is a finding too, never a crash: the officer gets the whole list at once.

``send`` calls ``check_or_raise``: errors stop the send unless ``--force``; warnings never do.
The rules live in ``cohesion_mail/checks/`` (see its docstring for the list).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .checks.content import content_findings, content_urls
from .checks.findings import Finding
from .checks.html import html_findings
from .checks.source import Source, display_file, read_source
from .checks.translations import translation_findings
from .config import Settings
from .errors import CheckFailed, CohesionMailError, ContentError, MergeFieldError, TemplateError
from .render.personalise import CompiledIssue
from .render.pipeline import build_issue
from .render.templates import template_dirs

__all__ = ["CheckReport", "Finding", "check_or_raise", "run_checks"]

_FILE_LINE = re.compile(r"(?P<file>[^\s:][^:\n]*?):(?P<line>\d+)(?::\d+)?: (?P<rest>.*)", re.DOTALL)
_FILE_LABEL = re.compile(
    r"(?P<file>\S+\.(?:ya?ml|j2|mjml|toml))(?: \((?P<label>[^)]*)\))?: (?P<rest>.*)", re.DOTALL
)
_FIELD = re.compile(
    r"(?P<path>[A-Za-z_][\w-]*(?:\[\d+\]|\.[\w-]+)*|\(top level\)): (?P<msg>.*)", re.DOTALL
)


@dataclass
class CheckReport:
    """Everything ``check`` found for one campaign; ``ok`` means no errors (warnings allowed)."""

    campaign: str
    findings: list[Finding] = field(default_factory=list)
    html_bytes: int | None = None  # None when the issue could not be built
    built: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "built": self.built,
            "html_bytes": self.html_bytes,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def summary(self, limit: int = 25) -> str:
        """The errors, one per line, for the message ``send`` refuses with."""
        errors = self.errors
        noun = "error" if len(errors) == 1 else "errors"
        lines = [f"{self.campaign}: the preflight check found {len(errors)} {noun}:"]
        for f in errors[:limit]:
            at = f"{f.location} " if f.location else ""
            lines.append(f"  {at}{f.where}: {f.message}")
        if len(errors) > limit:
            lines.append(f"  … and {len(errors) - limit} more")
        return "\n".join(lines)


def run_checks(
    campaign_dir: Path, settings: Settings, *, issue: CompiledIssue | None = None
) -> CheckReport:
    """Check ``campaign_dir``; ``issue`` skips the build when the caller has just made it."""
    campaign_dir = Path(campaign_dir)
    if not campaign_dir.is_dir():
        raise ContentError(
            f"{display_file(campaign_dir)}: no such campaign folder",
            hint="pass the folder that holds campaign.yaml, e.g. campaigns/2020-02-cohes3ion",
        )
    report = CheckReport(display_file(campaign_dir))
    source = read_source(campaign_dir)
    findings: list[Finding] = []
    if source is not None:
        findings += content_findings(source, campaign_dir, settings)
    if issue is None:
        try:
            issue = build_issue(campaign_dir, settings)
        except (ContentError, TemplateError, MergeFieldError) as exc:
            findings += _unreported(error_findings(exc), findings)
    if issue is not None:
        report.built = True
        more, report.html_bytes = html_findings(
            issue,
            settings,
            content_urls=content_urls(source) if source else set(),
            postal_address=_postal_address(source, settings),
            template_dirs=template_dirs(settings.root),
        )
        findings += more
    findings += translation_findings(campaign_dir, settings, error_findings)
    report.findings = sorted(findings, key=lambda f: f.level != "error")  # stable: file order
    return report


def check_or_raise(campaign_dir: Path, settings: Settings, force: bool = False) -> CheckReport:
    """Run the checks; raise ``CheckFailed`` listing the errors unless ``force``.

    The report is returned either way, for the caller to print its warnings (and, with
    ``force``, the errors it is sending despite).
    """
    report = run_checks(campaign_dir, settings)
    if report.errors and not force:
        raise CheckFailed(
            report.summary(),
            hint=f"cohesion-mail check {report.campaign} shows how to fix each;"
            " --force sends anyway",
        )
    return report


# -- errors as findings ------------------------------------------------------------------------


def error_findings(exc: CohesionMailError) -> list[Finding]:
    """A content, merge-field or template error as findings, one per reported problem."""
    rule = {ContentError: "content", TemplateError: "template", MergeFieldError: "merge-field"}
    kind = next((r for cls, r in rule.items() if isinstance(exc, cls)), "content")
    fix = exc.hint or (
        "fix the template at that line" if kind == "template" else "fix the field at that line"
    )
    entries: list[str] = []
    for line in exc.message.split("\n"):
        if line.startswith((" ", "\t")) and entries:
            entries[-1] += "\n" + line.strip()
        elif line.strip():
            entries.append(line)
    out: list[Finding] = []
    for entry in entries:
        file: str | None = None
        number: int | None = None
        where = "campaign.yaml" if kind == "content" else kind
        rest = entry
        m = _FILE_LINE.match(entry)
        label = None
        if m:
            file, number, rest = m["file"], int(m["line"]), m["rest"]
        elif m := _FILE_LABEL.match(entry):
            file, label, rest = m["file"], m["label"], m["rest"]
        f = _FIELD.match(rest)
        if f and kind != "template":
            where, rest = f["path"], f["msg"]
        elif label:
            where = label
        elif file:
            where = Path(file).name
        out.append(Finding("error", kind, where, rest, fix, file, number))
    return out


def _unreported(new: list[Finding], found: list[Finding]) -> list[Finding]:
    """Drop errors our own rules already reported for the same field (with a better message)."""
    taken = {f.where for f in found if f.level == "error"}
    return [f for f in new if f.where not in taken]


def _postal_address(source: Source | None, settings: Settings) -> str:
    footer = source.get(("footer",)) if source else None
    if isinstance(footer, dict) and isinstance(footer.get("postal_address"), str):
        return str(footer["postal_address"])
    return settings.list.postal_address
