"""Transports, chosen by a DSN: ``outbox://``, ``smtp://…``, ``smtps://…``, API providers.

``open_transport`` looks the scheme up in ``TRANSPORTS`` (``"module:Class"``, imported only when
used, so a provider's dependencies never load for another) and calls the class's
``from_dsn(dsn, *, campaign_dir, timeout)`` classmethod, which validates its parameters and
raises ``ConfigError`` naming the redacted DSN. A new provider is one module and one line here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .base import RecipientResult, Status, Transport
from .dsn import Dsn, parse_dsn, redact

__all__ = [
    "TRANSPORTS",
    "Dsn",
    "RecipientResult",
    "Status",
    "Transport",
    "describe_dsn",
    "open_transport",
    "parse_dsn",
    "redact",
]

TRANSPORTS: dict[str, str] = {
    "outbox": "cohesion_mail.transports.outbox:OutboxTransport",
    "smtp": "cohesion_mail.transports.smtp:SmtpTransport",
    "smtps": "cohesion_mail.transports.smtp:SmtpTransport",
    "postmark": "cohesion_mail.transports.postmark:PostmarkTransport",
    "sendgrid": "cohesion_mail.transports.sendgrid:SendGridTransport",
    "mailgun": "cohesion_mail.transports.mailgun:MailgunTransport",
}


def transport_class(scheme: str) -> Any:
    """The class registered for ``scheme`` (imported now)."""
    target = TRANSPORTS[scheme]
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def open_transport(dsn: str, *, campaign_dir: Path, timeout: float = 30) -> Transport:
    """The transport ``dsn`` names, configured but not yet connected.

    Connecting happens on the first ``send`` so a dry run never touches the network.
    ``campaign_dir`` anchors defaults such as the outbox folder; ``timeout`` (seconds) bounds
    every network operation unless the DSN says ``?timeout=``.
    """
    parsed = parse_dsn(dsn)
    if parsed.scheme not in TRANSPORTS:
        raise ConfigError(
            f"transport {parsed.redacted}: unknown scheme {parsed.scheme!r}",
            hint=f"known schemes: {', '.join(f'{s}://' for s in TRANSPORTS)}",
        )
    try:
        cls = transport_class(parsed.scheme)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"transport {parsed.redacted}: the {parsed.scheme} transport is not available ({exc})"
        ) from exc
    transport: Transport = cls.from_dsn(parsed, campaign_dir=campaign_dir, timeout=timeout)
    return transport


def describe_dsn(dsn: str) -> str:
    """``dsn`` safe to print: the password, API keys and secret parameters replaced by ***."""
    return redact(dsn)
