"""``cohesion-mail new`` and ``cohesion-mail build``: scaffold a campaign, build it to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import ConfigError
from ..i18n import normalise_language
from ..render.pipeline import GMAIL_CLIP_BYTES
from ..render.sample import SampleBuild, build_all_samples, build_sample
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
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="Build the edition for this language (ISO 639-1, e.g. es) as "
            "email.<lang>.html; the main language when it has no campaign.<lang>.yaml.",
            show_default=False,
        ),
    ] = None,
    all_languages: Annotated[
        bool,
        typer.Option(
            "--all-languages",
            help="Build every language edition as email.<lang>.html/.txt, and the main "
            "language as email.html/.txt too.",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Build a campaign into email.html and email.txt, filled in for a sample recipient."""
    if lang is not None and all_languages:
        raise ConfigError("use --lang or --all-languages, not both")
    settings = settings_for(config, start=campaign)
    if all_languages:
        _print_all(build_all_samples(campaign, settings, out))
        return
    result = build_sample(campaign, settings, out, language=lang)
    issue = result.issue
    rows = [
        ("Subject:", issue.subject),
        ("Preheader:", issue.preheader or "(none)"),
        ("HTML:", f"{result.html_path}  ({_kb(result.html_bytes)})"),
        ("Text:", f"{result.text_path}  ({_kb(result.text_bytes)})"),
    ]
    if lang is not None:
        rows.insert(0, ("Language:", issue.language))
    for label, value in rows:
        console.print(f"[bold]{label:<10}[/] {escape(value)}", soft_wrap=True)
    wanted = normalise_language(lang)
    if wanted is not None and wanted != issue.language:
        err_console.print(
            f"[yellow]Warning:[/] no campaign.{wanted}.yaml: {wanted} readers get the main "
            f"language, {issue.language}; that is what was built."
        )
    _warn_clipped(result)


def _print_all(results: list[SampleBuild]) -> None:
    console.print(f"[bold]Folder:[/]   {escape(str(results[0].html_path.parent))}", soft_wrap=True)
    rows = [
        (
            r.issue.language,
            f"{r.html_path.name} {_kb(r.html_bytes)}",
            f"{r.text_path.name} {_kb(r.text_bytes)}",
            r.issue.subject,
        )
        for r in results
    ]
    table = Table(header_style="bold", box=None)
    widths = [max(len(r[i]) for r in [("Lang", "HTML", "Text"), *rows]) for i in range(3)]
    for column in ("Lang", "HTML", "Text"):
        table.add_column(column, no_wrap=True)
    room = console.width - sum(widths) - 2 * 4  # the subject is cut to fit, not the files
    table.add_column("Subject", no_wrap=True, overflow="ellipsis", max_width=max(12, room))
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for r in results[1:]:
        _warn_clipped(r)


def _warn_clipped(result: SampleBuild) -> None:
    if result.clipped:
        err_console.print(
            f"[yellow]Warning:[/] {escape(str(result.html_path))} is {_kb(result.html_bytes)}; "
            f"Gmail clips messages over {_kb(GMAIL_CLIP_BYTES)} (shorten the issue or drop "
            "images/sections)."
        )


def register(app: typer.Typer) -> None:
    """Add ``new`` and ``build`` to the root app."""
    app.command("new", no_args_is_help=True)(new)
    app.command("build", no_args_is_help=True)(build)
