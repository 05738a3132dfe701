"""``send --dry-run``: build every message a send would (personalise + MIME), send nothing.

It writes nothing to the state either: no delivery rows, no subscriber upsert, not even the
signing secret (a throwaway one signs the links when none exists yet).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import ENV_SECRET, Settings
from ..message import message_bytes
from ..render.personalise import CompiledIssue
from ..store.db import Store
from ..store.ledger import Ledger, find_campaign
from ..tracking.tokens import Links, Signer
from .audience import AudienceFile, proof_addresses, sendable_rows
from .compose import Composer


@dataclass
class DryRun:
    """Counts and sizes of the messages built."""

    built: int = 0
    bytes_total: int = 0
    bytes_max: int = 0
    already_sent: int = 0

    def add(self, raw: bytes) -> None:
        self.built += 1
        self.bytes_total += len(raw)
        self.bytes_max = max(self.bytes_max, len(raw))


def dry_run(
    issue: CompiledIssue,
    settings: Settings,
    store: Store,
    loaded: AudienceFile | None,
    *,
    to: Sequence[str] | None,
    limit: int | None,
    click_tracking: bool,
) -> DryRun:
    """Build the messages for ``to`` (proofs) or for the ``loaded`` audience."""
    cid = find_campaign(store, issue.slug)
    composer = Composer(issue, settings, Links(settings.base_url, Signer(_secret(store))),
                        cid or 0, click_tracking=click_tracking,
                        open_tracking=settings.send.open_tracking)
    out = DryRun()
    if to:
        for address in proof_addresses(to):
            out.add(message_bytes(composer.message(0, address, "", {}, is_proof=True)))
        return out
    assert loaded is not None, "an audience or proof addresses"
    if cid is not None:
        out.already_sent = Ledger(store, cid).counts()["sent"]
    for row in sendable_rows(store, cid):
        if limit is not None and out.built >= limit:
            break
        msg = composer.message(0, row.email, row.name, row.merge_values(), language=row.language)
        out.add(message_bytes(msg))
    return out


def _secret(store: Store) -> bytes:
    """The signing secret ``load_secret`` would use, without creating one."""
    env = os.environ.get(ENV_SECRET)
    if env:
        return env.encode("utf-8")
    path = store.path.parent / "secret"
    return path.read_bytes().strip() if path.is_file() else secrets.token_bytes(32)
