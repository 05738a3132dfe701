"""``cohesion-mail check``: the preflight a campaign must pass before ``send``."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from ..check import CheckReport, run_checks
from .common import CampaignArg, ConfigOption, JsonOption, console, handle_errors, settings_for


def print_report(report: CheckReport) -> None:
    """The findings as a table (errors first), then a one-line verdict."""
    if report.findings:
        table = Table(show_lines=True, header_style="bold", expand=True)
        table.add_column("", width=7, no_wrap=True)
        table.add_column("Where", ratio=1, overflow="fold")
        table.add_column("Problem → how to fix", ratio=3)
        prefix = f"{report.campaign}/"
        for f in report.findings:
            level = "[bold red]error[/]" if f.level == "error" else "[yellow]warning[/]"
            where = escape(f.where)
            location = f.location.removeprefix(prefix)
            if location and not location.split(":")[0].endswith(f.where):
                where = f"{escape(location)}\n[dim]{where}[/]"
            elif location:
                where = escape(location)
            table.add_row(level, where, f"{escape(f.message)}\n[dim]→ {escape(f.fix)}[/]")
        console.print(table)
    if not report.built:
        console.print(
            "[dim]The email itself (size, unsubscribe link, CSS) was not checked: it does not"
            " build until the errors above are fixed.[/]"
        )
    errors, warnings = len(report.errors), len(report.warnings)
    counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    size = f" · HTML {report.html_bytes / 1024:.1f} KB" if report.html_bytes else ""
    if errors:
        console.print(f"[bold red]✗ {escape(report.campaign)}: {counts}{size}[/] — fix the errors"
                      " before sending.")  # fmt: skip
    else:
        console.print(f"[bold green]✓ {escape(report.campaign)}: ready to send[/] ({counts}{size})")


@handle_errors
def check(campaign: CampaignArg, json: JsonOption = False, config: ConfigOption = None) -> None:
    """Preflight a campaign: placeholder links, images, size, unsubscribe link, subject, CSS.

    Exits 1 when there are errors (warnings alone exit 0). send runs the same check.
    """
    settings = settings_for(config, start=campaign)
    report = run_checks(campaign, settings)
    if json:
        typer.echo(report.to_json())
    else:
        print_report(report)
    if report.errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``check`` to the root app."""
    app.command("check", no_args_is_help=True)(check)
