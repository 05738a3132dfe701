"""Who a send goes to: the subscriber CSV minus suppressed addresses, or proof addresses."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from email_validator import EmailNotValidError

from ..config import Settings
from ..errors import ConfigError
from ..store.db import Store
from ..store.ledger import Ledger
from ..store.subscribers import (
    Rejected,
    SubscriberRow,
    audience,
    import_csv,
    normalise_address,
)

#: How many queued rows one ``enqueue`` transaction inserts.
ENQUEUE_CHUNK = 1000
REJECTED_SAMPLE = 50


@dataclass
class Queued:
    """What queueing the audience found in the file."""

    suppressed: int = 0
    rejected: list[Rejected] = field(default_factory=list)  # the first REJECTED_SAMPLE
    rejected_count: int = 0
    warnings: list[str] = field(default_factory=list)


def subscribers_path(settings: Settings, subscribers: Path | None) -> Path:
    """``--subscribers`` or ``[send] subscribers`` (relative to the project root)."""
    if subscribers is not None:
        return Path(subscribers)
    return settings.root / settings.send.subscribers


def proof_addresses(to: Sequence[str]) -> list[str]:
    """Validated, de-duplicated ``--to`` addresses; ``ConfigError`` naming a bad one."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in to:
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                address, _ = normalise_address(item)
            except EmailNotValidError as exc:
                raise ConfigError(f"--to {item!r}: not a valid email address: {exc}") from exc
            if address.lower() not in seen:
                seen.add(address.lower())
                out.append(address)
    if not out:
        raise ConfigError("--to: no address given", hint="e.g. --to you@example.org")
    return out


def queue_audience(store: Store, ledger: Ledger, path: Path, transport: str) -> Queued:
    """Upsert the CSV into the store (so the tracking service knows every recipient), then
    queue each non-suppressed address once (``Ledger.enqueue`` ignores known addresses)."""
    result = import_csv(store, path)
    to_send, skipped = audience(store, result.rows)
    for chunk in _chunked(to_send, ENQUEUE_CHUNK):
        ledger.enqueue(((r.email, r.name, r.language) for r in chunk), transport)
    return Queued(
        suppressed=len(skipped),
        rejected=result.rejected[:REJECTED_SAMPLE],
        rejected_count=len(result.rejected),
        warnings=result.warnings,
    )


def _chunked(rows: Sequence[SubscriberRow], size: int) -> Iterator[Sequence[SubscriberRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
