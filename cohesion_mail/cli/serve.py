"""``cohesion-mail serve``: the tracking service (unsubscribe, pixel, clicks, web version)."""

from __future__ import annotations

from typing import Annotated

import typer

from ..tracking.app import create_app
from ..tracking.app import serve as serve_app
from ..tracking.tokens import load_secret
from .common import ConfigOption, StateOption, console, err_console, handle_errors, settings_for


@handle_errors
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (use 0.0.0.0 behind a proxy).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="TCP port to listen on.", min=0, max=65535)
    ] = 8080,
    threads: Annotated[
        int, typer.Option("--threads", help="Worker threads answering requests.", min=1, max=256)
    ] = 8,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Serve the unsubscribe, open-pixel, click and web-version links (waitress, WSGI).

    Put it behind your HTTPS reverse proxy at links.base_url. Any WSGI server works too:
    gunicorn 'cohesion_mail.tracking.wsgi:app' (settings from COHESION_MAIL_CONFIG/_STATE).
    """
    settings = settings_for(config)
    state_path = settings.state_path(state)
    _, notice = load_secret(state_path)
    if notice:
        err_console.print(f"Note: {notice}", markup=False, soft_wrap=True)
    app = create_app(state_path, settings)
    console.print(
        f"Serving {settings.list.name} links on http://{host}:{port} "
        f"(mail links point to {settings.base_url}); state {state_path}. Ctrl+C stops.",
        markup=False, soft_wrap=True,
    )
    serve_app(app, host=host, port=port, threads=threads)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root app."""
    app.command("serve", no_args_is_help=False)(serve)
