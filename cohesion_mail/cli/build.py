"""``cohesion-mail new`` and ``cohesion-mail build``: scaffold a campaign, build it to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..render.pipeline import GMAIL_CLIP_BYTES
from ..render.sample import build_sample
from ..render.scaffold import new_campaign
from .common import CampaignArg, ConfigOption, console, err_console, handle_errors, settings_for


@handle_errors
def new(
    slug: Annotated[
        str, typer.Argument(help="Folder name of the new campaign, e.g. 2020-03-news.")
    ],
    directory: Annotated[
        Path, typer.Option("--dir", help="Parent folder of campaigns.", show_default=True)
    ] = Path("campaigns"),
    config: ConfigOption = None,
) -> None:
    """Create campaigns/<slug>/campaign.yaml with an example of every section type."""
    settings = settings_for(config)
    path = new_campaign(slug, directory, root=settings.root)
    console.print(f"Created {escape(str(path))}", soft_wrap=True)
    console.print(
        f"Edit it, then run: cohesion-mail build {escape(str(path.parent))}", soft_wrap=True
    )


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


@handle_errors
def build(
    campaign: CampaignArg,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Output folder (default: <campaign>/build/).", show_default=False
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Build a campaign into email.html and email.txt, filled in for a sample recipient."""
    settings = settings_for(config, start=campaign)
    result = build_sample(campaign, settings, out)
    issue = result.issue
    rows = [
        ("Subject:", issue.subject),
        ("Preheader:", issue.preheader or "(none)"),
        ("HTML:", f"{result.html_path}  ({_kb(result.html_bytes)})"),
        ("Text:", f"{result.text_path}  ({_kb(result.text_bytes)})"),
    ]
    for label, value in rows:
        console.print(f"[bold]{label:<10}[/] {escape(value)}", soft_wrap=True)
    if result.clipped:
        err_console.print(
            f"[yellow]Warning:[/] the HTML is {_kb(result.html_bytes)}; Gmail clips messages "
            f"over {_kb(GMAIL_CLIP_BYTES)} (shorten the issue or drop images/sections)."
        )


def register(app: typer.Typer) -> None:
    """Add ``new`` and ``build`` to the root app."""
    app.command("new", no_args_is_help=True)(new)
    app.command("build", no_args_is_help=True)(build)
