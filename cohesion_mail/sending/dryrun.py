"""``send --dry-run``: build every message a send would (personalise + MIME), send nothing.

It writes nothing either: no delivery rows, no subscriber upsert, not even the signing secret
(a throwaway one signs the links when none exists yet).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from ..config import ENV_SECRET, Settings
from ..message import message_bytes
from ..render.personalise import CompiledIssue
from ..store.db import Store
from ..store.ledger import Ledger, find_campaign
from ..store.subscribers import audience, read_csv
from ..tracking.tokens import Links, Signer
from .audience import REJECTED_SAMPLE, proof_addresses
from .compose import Composer


class DryRun:
    """Counts and sizes of the messages built."""

    def __init__(self) -> None:
        self.built = 0
        self.bytes_total = 0
        self.bytes_max = 0
        self.suppressed = 0
        self.already_sent = 0
        self.rejected: list = []
        self.rejected_count = 0
        self.warnings: list[str] = []

    def add(self, raw: bytes) -> None:
        self.built += 1
        self.bytes_total += len(raw)
        self.bytes_max = max(self.bytes_max, len(raw))


def dry_run(
    issue: CompiledIssue,
    settings: Settings,
    store: Store,
    *,
    subscribers: Path,
    to: Sequence[str] | None,
    limit: int | None,
    click_tracking: bool,
) -> DryRun:
    cid = find_campaign(store, issue.slug)
    secret = _existing_secret(store.path) or secrets.token_bytes(32)
    composer = Composer(issue, settings, Links(settings.base_url, Signer(secret)), cid or 0,
                        click_tracking=click_tracking,
                        open_tracking=settings.send.open_tracking)
    out = DryRun()
    if to:
        for address in proof_addresses(to):
            out.add(message_bytes(composer.message(0, address, "", {}, is_proof=True)))
        return out
    result = read_csv(subscribers)
    out.rejected = result.rejected[:REJECTED_SAMPLE]
    out.rejected_count = len(result.rejected)
    out.warnings = result.warnings
    to_send, skipped = audience(store, result.rows)
    out.suppressed = len(skipped)
    sent: set[str] = set()
    if cid is not None:
        sent = Ledger(store, cid).sent_addresses([r.email for r in to_send])
        out.already_sent = len(sent)
    for row in to_send:
        if limit is not None and out.built >= limit:
            break
        if row.email.lower() in sent:
            continue
        msg = composer.message(0, row.email, row.name, row.merge_values(), language=row.language)
        out.add(message_bytes(msg))
    return out


def _existing_secret(state_path: Path) -> bytes | None:
    """The signing secret ``load_secret`` would use, without creating one."""
    env = os.environ.get(ENV_SECRET)
    if env:
        return env.encode("utf-8")
    path = state_path.parent / "secret"
    return path.read_bytes().strip() if path.is_file() else None
