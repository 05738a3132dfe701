"""``cohesion-mail preview``: a live preview in the browser, or screenshots with --screenshot."""

from __future__ import annotations

import ipaddress
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..preview import SAMPLE, PreviewServer, find_subscriber
from ..screenshots import screenshot_campaign
from .common import CampaignArg, ConfigOption, console, err_console, handle_errors, settings_for


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@handle_errors
def preview(
    campaign: CampaignArg,
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on; 0 picks a free one.", min=0, max=65535)
    ] = 0,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to listen on (0.0.0.0 shares it on your network)."),
    ] = "127.0.0.1",
    as_email: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Personalise for this subscriber (looked up in the subscribers "
            "CSV) instead of a sample recipient.",
            show_default=False,
        ),
    ] = None,
    subscribers: Annotated[
        Path | None,
        typer.Option(
            "--subscribers",
            help="Subscribers CSV for --as (default: send.subscribers in cohesion-mail.toml).",
            show_default=False,
        ),
    ] = None,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="Do not open a browser (print the URL only).")
    ] = False,
    screenshot: Annotated[
        Path | None,
        typer.Option(
            "--screenshot",
            help="Write desktop.png and phone.png of the email to this "
            "folder with headless Chromium, then exit.",
            show_default=False,
        ),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option(
            "--lang",
            help="Show this language edition (campaign.XX.yaml), e.g. es; the main one if it "
            "has none. Default: the --as subscriber's language. The page can switch too.",
            metavar="XX",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Preview the issue in the browser: desktop and phone side by side, the plain-text part,
    the inbox line, the preflight findings. It rebuilds and reloads whenever you save.

    Stop with Ctrl-C.
    """
    settings = settings_for(config, start=campaign)
    recipient = SAMPLE
    if as_email:
        csv_path = subscribers or settings.root / settings.send.subscribers
        recipient = find_subscriber(csv_path, as_email)
    if screenshot is not None:
        shot = replace(recipient, language=lang) if lang else recipient
        for path in screenshot_campaign(campaign, settings, screenshot, recipient=shot):
            console.print(f"Wrote {escape(str(path))}", soft_wrap=True)
        return
    server = PreviewServer(
        campaign,
        settings,
        host=host,
        port=port,
        recipient=recipient,
        language=lang,
        reload_settings=lambda: settings_for(config, start=campaign),
    )
    with server:
        console.print(f"Previewing [bold]{escape(str(campaign))}[/] at [link={server.url}]"
                      f"{server.url}[/link]", soft_wrap=True)  # fmt: skip
        console.print(f"Personalised for {escape(recipient.name)} <{escape(recipient.email)}>."
                      " Save a file to update the page; Ctrl-C stops.", soft_wrap=True)  # fmt: skip
        if not server.state.ok:
            err_console.print("[yellow]The issue does not build yet:[/] the page shows why.")
        if not _loopback(host):
            err_console.print(f"[yellow]Note:[/] listening on {escape(host)}: anyone on your"
                              " network can open this preview.")  # fmt: skip
        if not no_open:
            webbrowser.open(server.url)
        try:
            server.wait()
        except KeyboardInterrupt:
            console.print("Preview stopped.")


def register(app: typer.Typer) -> None:
    """Add ``preview`` to the root app."""
    app.command("preview", no_args_is_help=True)(preview)
