"""What every command shares: consoles, the error boundary, common options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from ..config import Settings, load_settings
from ..errors import CohesionMailError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

P = ParamSpec("P")
R = TypeVar("R")

StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="State database (default: $COHESION_MAIL_STATE or .cohesion-mail/state.db).",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Project settings file (default: $COHESION_MAIL_CONFIG or ./cohesion-mail.toml).",
        show_default=False,
    ),
]
CampaignArg = Annotated[
    Path,
    typer.Argument(help="Campaign folder, e.g. campaigns/2020-02-cohes3ion.", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    err_console.print(f"[bold red]Error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The error boundary: our exceptions become one message and exit 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CohesionMailError as exc:
            err_console.print("[bold red]Error:[/] ", end="")
            err_console.print(str(exc), markup=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper


def settings_for(config: Path | None = None, start: Path | None = None) -> Settings:
    """Project settings for a command (``--config`` wins over discovery from ``start``/cwd)."""
    return load_settings(config, start=start)
