"""The exception tree. Every error a user can cause is a ``CohesionMailError``.

The CLI turns these into one message on stderr and exit code 1; anything else is a bug.
Messages say *where* (file, line, field, host:port) and *what to do next*.
"""

from __future__ import annotations


class CohesionMailError(Exception):
    """Root of every error cohesion-mail raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nHint: {self.hint}"
        return self.message


class ConfigError(CohesionMailError):
    """cohesion-mail.toml, an environment variable or an option has a bad value."""


class ContentError(CohesionMailError):
    """A campaign's content file is missing, malformed or fails validation."""


class TemplateError(CohesionMailError):
    """A Jinja2 or MJML template failed to render or compile."""


class MergeFieldError(CohesionMailError):
    """A merge field is unknown or cannot be filled."""


class SubscriberError(CohesionMailError):
    """A subscribers file cannot be read at all (bad rows are reported, not raised)."""


class StoreError(CohesionMailError):
    """The SQLite state store cannot be opened, migrated or locked."""


class TransportError(CohesionMailError):
    """A transport cannot be configured or cannot reach its server at all.

    Per-recipient failures are *results*, not exceptions (see ``transports.base``).
    """


class AuthenticationError(TransportError):
    """The server or API rejected our credentials: stop the run, nothing is marked sent."""


class TokenError(CohesionMailError):
    """A tracking or unsubscribe token is forged, truncated or for another campaign."""


class CheckFailed(CohesionMailError):
    """Preflight found errors; ``send`` refuses unless ``--force``."""
