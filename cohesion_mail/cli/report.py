"""``cohesion-mail report``: what happened to a campaign, in the terminal, as JSON or as HTML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..report import CampaignReport, as_dict, load_report
from ..report_html import write_report_html
from .common import (
    CampaignArg,
    ConfigOption,
    JsonOption,
    StateOption,
    console,
    handle_errors,
    settings_for,
)


def _pct(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _tables(r: CampaignReport) -> list[Table]:
    deliveries = Table(title="Deliveries", title_justify="left", show_header=False)
    deliveries.add_column("figure")
    deliveries.add_column("count", justify="right")
    deliveries.add_column("rate", justify="right", style="dim")
    for label, n in (("Recipients", r.recipients), ("Sent", r.sent), ("Failed", r.failed),
                     ("In doubt", r.in_doubt), ("Deferred", r.deferred), ("Pending", r.pending)):
        deliveries.add_row(label, str(n), "")
    deliveries.add_row("Delivered (provider)", str(r.delivered), _pct(r.rates["delivered"]))

    engagement = Table(title="Engagement (rates of sent)", title_justify="left")
    for col in ("", "unique", "rate", "human unique", "human rate", "total", "machine"):
        engagement.add_column(col, justify="left" if not col else "right")
    for label, e in (("Opens", r.opens), ("Clicks", r.clicks)):
        engagement.add_row(label, str(e.unique), _pct(e.unique_rate), str(e.human_unique),
                           _pct(e.human_unique_rate), str(e.total), str(e.machine_total))
    engagement.add_row("Web version", str(r.webviews), "", "", "", "", "")

    health = Table(title="List health", title_justify="left", show_header=False)
    health.add_column("figure")
    health.add_column("count", justify="right")
    health.add_column("rate", justify="right", style="dim")
    for label, n, key in (("Unsubscribes", r.unsubscribes, "unsubscribe"),
                          ("Bounces", r.bounces, "bounce"),
                          ("Complaints", r.complaints, "complaint")):
        health.add_row(label, str(n), _pct(r.rates[key]))
    health.add_row("Re-subscribes", str(r.resubscribes), "")

    tables = [deliveries, engagement, health]
    if r.by_language and [f.language for f in r.by_language] != [""]:
        languages = Table(title="By language (the edition sent)", title_justify="left")
        for col in ("language", "recipients", "sent", "opens", "rate", "human opens",
                    "human rate", "clicks", "human clicks", "unsubscribes"):
            languages.add_column(col, justify="left" if col == "language" else "right")
        for f in r.by_language:
            languages.add_row(f.language or "(none)", str(f.recipients), str(f.sent),
                              str(f.opens_unique), _pct(f.open_rate), str(f.opens_human_unique),
                              _pct(f.human_open_rate), str(f.clicks_unique),
                              str(f.clicks_human_unique), str(f.unsubscribes))
        tables.append(languages)
    if r.links:
        links = Table(title="Clicks per link", title_justify="left")
        links.add_column("link", overflow="fold")
        for col in ("unique", "human unique", "total"):
            links.add_column(col, justify="right")
        for link in r.links:
            links.add_row(link.url, str(link.unique), str(link.human_unique), str(link.total))
        tables.append(links)
    return tables


@handle_errors
def report(
    campaign_dir: CampaignArg,
    json_out: JsonOption = False,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write a self-contained HTML report with charts to FILE.",
                     metavar="FILE", show_default=False),
    ] = None,
    proofs: Annotated[
        bool, typer.Option("--proofs", help="Count proof deliveries too (left out by default).")
    ] = False,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Show sent/failed/in-doubt counts, opens (human vs machine), clicks per link, unsubscribes,
    bounces and complaints for a campaign, with rates over sent, and the split by language."""
    settings = settings_for(config)
    result = load_report(campaign_dir, settings.state_path(state), include_proofs=proofs)
    if html is not None:
        write_report_html(result, html, settings.theme, settings.list.name)
    if json_out:
        typer.echo(json.dumps(as_dict(result), indent=2, ensure_ascii=False))
        return
    console.print(f"[bold]{result.subject or result.slug}[/]  [dim]{result.slug}[/]")
    for table in _tables(result):
        console.print(table)
    proof_note = (f"{result.proofs} proof deliveries included." if proofs else
                  f"{result.proofs} proof deliveries left out (--proofs counts them).")
    console.print(f"[dim]Rates are over sent; human leaves out proxy and scanner opens. "
                  f"{proof_note}[/]")
    if html is not None:
        console.print(f"Wrote {html}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``report`` to the root app."""
    app.command("report", no_args_is_help=True)(report)
