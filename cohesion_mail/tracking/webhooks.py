"""Provider webhooks (bounces, complaints, unsubscribes) for the tracking service."""

from __future__ import annotations

from typing import Any


def register(app: Any, store: Any, settings: Any) -> None:
    """Add the provider webhook routes to the Flask ``app``."""
