"""The ``cohesion-mail`` command line: a thin layer over the library, one module per group."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import build, check, preview, report, send, serve, subscribers

app = typer.Typer(
    name="cohesion-mail",
    help="Build, check, preview and send HTML email newsletters from structured content.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _version(value: bool) -> None:
    if value:
        typer.echo(f"cohesion-mail {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Build, check, preview and send HTML email newsletters from structured content."""


for module in (build, check, preview, send, subscribers, serve, report):
    module.register(app)


def main() -> None:
    app()
