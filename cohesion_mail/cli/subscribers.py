"""``cohesion-mail subscribers …``: import, list, unsubscribe and export the subscriber list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..store import Store
from ..store import subscribers as core
from .common import ConfigOption, JsonOption, StateOption, console, handle_errors, settings_for

app = typer.Typer(
    name="subscribers",
    help="Import, list, unsubscribe and export subscribers (kept in the state database).",
    no_args_is_help=True,
)

FileArg = Annotated[
    Path,
    typer.Argument(
        help="CSV file (comma, semicolon or tab; UTF-8 or Windows-1252).", show_default=False
    ),
]


def _store(state: Path | None, config: Path | None) -> Store:
    return Store(settings_for(config).state_path(state))


def _print_report(result: core.ImportResult) -> None:
    if result.rejected:
        table = Table(title=f"Rejected rows in {result.path}", title_justify="left")
        table.add_column("Line", justify="right", style="bold")
        table.add_column("Reason")
        table.add_column("Row as read", overflow="fold", style="dim")
        for bad in result.rejected:
            table.add_row(str(bad.line), escape(bad.reason), escape(bad.raw))
        console.print(table)
    for warning in result.warnings:
        console.print(f"[yellow]Warning:[/] {escape(warning)}", soft_wrap=True)


@app.command("import")
@handle_errors
def import_(file: FileArg, state: StateOption = None, config: ConfigOption = None) -> None:
    """Add or update subscribers from a CSV file; report every rejected row with its line.

    Suppressed addresses (unsubscribed, bounced, complained) stay suppressed.
    Blank cells never erase stored values.
    Exits 0 even when rows are rejected: fix them and import again.
    """
    with _store(state, config) as store:
        result = core.import_csv(store, file)
    _print_report(result)
    console.print(
        f"Imported {len(result.rows)} subscribers from {escape(str(file))}: "
        f"{result.added} new, {result.updated} updated, {result.unchanged} unchanged."
    )
    if result.kept_suppressed:
        console.print(
            f"{result.kept_suppressed} of these addresses are unsubscribed, bounced or "
            "complained and stay suppressed: they will not be sent to."
        )
    if result.rejected:
        console.print(
            f"[bold yellow]{len(result.rejected)} rows were rejected and not imported[/] "
            "(see the table above): fix them in the file and import it again."
        )


@app.command("list")
@handle_errors
def list_(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only this status: subscribed, unsubscribed, bounced, complained or suppressed.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """List subscribers with their status, as a table or as JSON."""
    with _store(state, config) as store:
        people = core.list_subscribers(store, status)
        totals = core.counts(store)
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in people], ensure_ascii=False, indent=2))
        return
    table = Table()
    for column in ("Email", "Name", "Organisation", "Country", "Language", "Status"):
        table.add_column(column, overflow="fold")  # an address is never shown cut short
    for p in people:
        shown = p.status if not p.status_reason else f"{p.status} ({p.status_reason})"
        style = "red" if p.suppressed else ""
        table.add_row(
            *(escape(v) for v in (p.email, p.name, p.organisation, p.country, p.language, shown)),
            style=style,
        )
    console.print(table)
    console.print(", ".join(f"{n} {s}" for s, n in totals.items()))


@app.command("unsubscribe")
@handle_errors
def unsubscribe(
    email: Annotated[str, typer.Argument(help="The address to suppress.", show_default=False)],
    reason: Annotated[
        str, typer.Option("--reason", help="Why, kept with the status (e.g. 'asked by phone').")
    ] = "",
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Suppress an address for good, even one not imported yet."""
    with _store(state, config) as store:
        previous = core.set_status(store, email, "unsubscribed", reason or "command line")
    if previous is None:
        console.print(
            f"{escape(email)} was not in the list; recorded as unsubscribed so it is never sent to."
        )
    elif previous == "unsubscribed":
        console.print(f"{escape(email)} was already unsubscribed.")
    else:
        console.print(f"Unsubscribed {escape(email)} (was {previous}).")


@app.command("export")
@handle_errors
def export(
    file: Annotated[Path, typer.Argument(help="CSV file to write.", show_default=False)],
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Write all subscribers with their status to a CSV file, safe to open in a spreadsheet."""
    with _store(state, config) as store:
        written = core.export_csv(store, file)
    console.print(f"Exported {written} subscribers to {escape(str(file))}.")


def register(root: typer.Typer) -> None:
    """Add the ``subscribers`` group to the root app."""
    root.add_typer(app)
