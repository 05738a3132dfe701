"""The send ledger: one delivery row per campaign × recipient, and the state machine that makes
sending exactly-once and resumable.

States (``db.DELIVERY_STATES``)::

    queued ──claim──▶ sending ──result──▶ sent | failed | deferred ──(retry)──▶ sending …
                         │
                         └─(process killed: found at the next start)──▶ in_doubt

The order of writes is the whole trick. A batch is marked ``sending`` and that is committed
*before* the transport is called; results are written after it returns. So after a crash every
row is in a state that tells the truth: ``queued`` was certainly never handed to a server,
``sent`` certainly was, and ``sending`` may or may not have been. Those last rows become
``in_doubt`` and are not sent again unless the user says so (``--resend-in-doubt``): a
duplicate newsletter is worse than a missing one, and the user can check the server's log.
Their number is bounded by what was in flight, never by the list size.

The unique index ``deliveries_once`` (campaign, address) where ``is_proof = 0`` makes enqueueing
idempotent: a second run's ``INSERT OR IGNORE`` never creates a second delivery for an address.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from .db import DELIVERY_STATES, SUPPRESSED_STATUSES, Store, now

FinalState = Literal["sent", "failed", "deferred"]

_SUPPRESSED_SQL = "(" + ", ".join(f"'{s}'" for s in SUPPRESSED_STATUSES) + ")"
# SQLite's default limit on host parameters is 32766 (3.32+); stay far below it.
_CHUNK = 500


def _chunks(items: Sequence[int], size: int = _CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery row with the subscriber profile needed to personalise it.

    ``profile`` holds the subscriber's stored columns (name, organisation, country, language,
    and the JSON ``fields``), or is empty for a proof to an address not in the store.
    """

    id: int
    email: str
    name: str
    language: str
    is_proof: bool
    attempts: int
    profile: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """What the send loop learned about one delivery; ``record`` writes it."""

    delivery_id: int
    state: FinalState
    detail: str = ""
    message_id: str = ""
    provider_message_id: str = ""


@dataclass(frozen=True)
class Problem:
    """A failed or in-doubt recipient, as ``status`` lists it."""

    delivery_id: int
    email: str
    state: str
    detail: str
    attempts: int
    updated_at: str
    is_proof: bool


def find_campaign(store: Store, slug: str) -> int | None:
    """The id of campaign ``slug`` if it was ever sent or proofed; never creates one."""
    rows = store.query("SELECT id FROM campaigns WHERE slug = ?", (slug,))
    return int(rows[0]["id"]) if rows else None


def save_issue(
    store: Store,
    campaign_id: int,
    *,
    language: str,
    subject: str,
    compiled: str,
    directory: str,
    click_tracking: bool,
) -> None:
    """Keep the compiled issue as sent, so the tracking service's web version shows exactly it.

    A later run replaces it: the newest build is the one the latest recipients received.
    """
    stamp = now()
    with store.atomic() as conn:
        conn.execute(
            "UPDATE campaigns SET directory = ?, click_tracking = ? WHERE id = ?",
            (directory, int(click_tracking), campaign_id),
        )
        conn.execute(
            "INSERT INTO campaign_variants (campaign_id, language, subject, compiled, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (campaign_id, language) DO UPDATE SET "
            "subject = excluded.subject, compiled = excluded.compiled, "
            "created_at = excluded.created_at",
            (campaign_id, language, subject, compiled, stamp),
        )


class Ledger:
    """The delivery rows of one campaign. All writes are single short transactions.

    Methods are called from the send loop's main thread only; ``Store`` serialises access to
    its connection, so the tracking service or ``status`` may read and write meanwhile.
    """

    def __init__(self, store: Store, campaign_id: int) -> None:
        self.store = store
        self.campaign_id = campaign_id

    # -- start of a run -------------------------------------------------------------------

    def recover(self) -> int:
        """Rows a killed process left in ``sending`` become ``in_doubt``; returns how many.

        Call only while holding the campaign's send lock: a live run's ``sending`` rows are
        legitimately in flight.
        """
        with self.store.atomic() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET state = 'in_doubt', updated_at = ?, "
                "detail = 'the sending process stopped before the server''s answer was recorded' "
                "WHERE campaign_id = ? AND state = 'sending'",
                (now(), self.campaign_id),
            )
            return cur.rowcount

    def requeue(self, states: Iterable[str]) -> int:
        """Put campaign rows (not proofs) in ``states`` back to ``queued``; returns how many.

        Used at the start of a run for ``deferred`` rows (a temporary failure is retried on
        the next run), and for ``in_doubt`` / ``failed`` when the user asks for it.
        """
        wanted = [s for s in states if s in DELIVERY_STATES and s not in ("queued", "sent")]
        if not wanted:
            return 0
        with self.store.atomic() as conn:
            cur = conn.execute(
                "UPDATE deliveries SET state = 'queued', updated_at = ? "
                f"WHERE campaign_id = ? AND is_proof = 0 AND state IN ({_marks(len(wanted))})",
                (now(), self.campaign_id, *wanted),
            )
            return cur.rowcount

    def drop_suppressed(self) -> int:
        """Delete queued campaign rows whose address has since been suppressed.

        They were never handed to a server, so nothing is lost; an unsubscribe that arrived
        between two runs must win over the queue.
        """
        with self.store.atomic() as conn:
            cur = conn.execute(
                "DELETE FROM deliveries WHERE campaign_id = ? AND is_proof = 0 "
                "AND state = 'queued' AND email IN (SELECT lower(email) FROM subscribers "
                f"WHERE status IN {_SUPPRESSED_SQL})",
                (self.campaign_id,),
            )
            return cur.rowcount

    def enqueue(self, recipients: Iterable[tuple[str, str, str]], transport: str = "") -> int:
        """Insert ``(email, name, language)`` rows as ``queued``; returns how many were new.

        Idempotent: an address that already has a delivery in this campaign, in any state, is
        left alone (``INSERT OR IGNORE`` over the unique index ``deliveries_once``). The
        caller removes suppressed addresses first.
        """
        stamp = now()
        with self.store.atomic() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries "
                "(campaign_id, email, name, language, transport, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (self.campaign_id, email.lower(), name, language, transport, stamp, stamp)
                    for email, name, language in recipients
                ),
            )
            return conn.total_changes - before

    def add_proofs(
        self, recipients: Iterable[tuple[str, str, str]], transport: str = ""
    ) -> list[int]:
        """New ``is_proof = 1`` rows (a proof may be sent any number of times); their ids."""
        stamp = now()
        ids: list[int] = []
        with self.store.atomic() as conn:
            for email, name, language in recipients:
                cur = conn.execute(
                    "INSERT INTO deliveries (campaign_id, email, name, language, is_proof, "
                    "transport, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                    (self.campaign_id, email.lower(), name, language, transport, stamp, stamp),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    # -- during a run ---------------------------------------------------------------------

    def _mark_sending(self, conn: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[Delivery]:
        stamp = now()
        ids = [int(r["id"]) for r in rows]
        for part in _chunks(ids):
            conn.execute(
                "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, "
                f"updated_at = ? WHERE id IN ({_marks(len(part))})",
                (stamp, *part),
            )
        return [_delivery(r) for r in rows]

    _SELECT = (
        "SELECT d.id, d.email, d.name, d.language, d.is_proof, d.attempts, "
        "s.email AS s_email, s.name AS s_name, s.organisation AS s_organisation, "
        "s.country AS s_country, s.language AS s_language, s.fields AS s_fields, "
        "s.status AS s_status "
        "FROM deliveries d LEFT JOIN subscribers s ON s.email = d.email "
    )

    def claim_next(self, limit: int, after_id: int = 0, *, durable: bool = True) -> list[Delivery]:
        """Mark the next ``limit`` queued campaign rows (id > ``after_id``) ``sending`` and
        commit, so they are durably "maybe sent" before any transport sees them.

        Addresses suppressed meanwhile (an unsubscribe through the tracking service during
        the run) are skipped and stay ``queued``; ``drop_suppressed`` removes them next run.
        """
        with self.store.atomic(durable=durable) as conn:
            rows = conn.execute(
                self._SELECT + "WHERE d.campaign_id = ? AND d.is_proof = 0 AND d.state = 'queued' "
                "AND d.id > ? AND (s.status IS NULL OR s.status NOT IN "
                f"{_SUPPRESSED_SQL}) ORDER BY d.id LIMIT ?",
                (self.campaign_id, after_id, limit),
            ).fetchall()
            return self._mark_sending(conn, rows)

    def claim_ids(
        self, ids: Sequence[int], states: Sequence[str] = ("queued",), *, durable: bool = True
    ) -> list[Delivery]:
        """Claim specific rows (a deferred retry, proofs) if they are still in ``states``.

        A retry of a campaign row whose address was suppressed meanwhile is not claimed.
        """
        if not ids:
            return []
        with self.store.atomic(durable=durable) as conn:
            rows: list[sqlite3.Row] = []
            for part in _chunks(ids):
                rows += conn.execute(
                    self._SELECT + f"WHERE d.id IN ({_marks(len(part))}) AND d.campaign_id = ? "
                    f"AND d.state IN ({_marks(len(states))}) AND (d.is_proof = 1 OR "
                    f"s.status IS NULL OR s.status NOT IN {_SUPPRESSED_SQL}) ORDER BY d.id",
                    (*part, self.campaign_id, *states),
                ).fetchall()
            return self._mark_sending(conn, rows)

    def release(self, ids: Sequence[int]) -> None:
        """Claimed rows that certainly never reached a server go back to ``queued``."""
        self.record((), release=ids)

    def record(
        self,
        outcomes: Iterable[Outcome],
        transport: str = "",
        *,
        release: Sequence[int] = (),
        in_doubt: Sequence[int] = (),
        durable: bool = False,
    ) -> None:
        """Write results in one transaction.

        ``release``: claimed rows that certainly never reached a server, back to ``queued``.
        ``in_doubt``: rows the transport may or may not have accepted (it crashed, or gave
        no answer for them). ``durable`` fsyncs the commit (see ``claim_next``).
        """
        stamp = now()
        sent, other = [], []
        for o in outcomes:
            if o.state == "sent":
                sent.append((o.message_id, o.provider_message_id, o.detail[:2000], transport,
                             stamp, stamp, o.delivery_id))
            else:
                other.append((o.state, o.detail[:2000], transport, stamp, o.delivery_id))
        if not (sent or other or release or in_doubt):
            return
        with self.store.atomic(durable=durable) as conn:
            if sent:
                conn.executemany(
                    "UPDATE deliveries SET state = 'sent', message_id = ?, "
                    "provider_message_id = ?, detail = ?, transport = ?, sent_at = ?, "
                    "updated_at = ? WHERE id = ?",
                    sent,
                )
            if other:
                conn.executemany(
                    "UPDATE deliveries SET state = ?, detail = ?, transport = ?, updated_at = ? "
                    "WHERE id = ?",
                    other,
                )
            for part in _chunks(list(release)):
                conn.execute(
                    "UPDATE deliveries SET state = 'queued', attempts = max(attempts - 1, 0), "
                    f"updated_at = ? WHERE state = 'sending' AND id IN ({_marks(len(part))})",
                    (stamp, *part),
                )
            for part in _chunks(list(in_doubt)):
                conn.execute(
                    "UPDATE deliveries SET state = 'in_doubt', updated_at = ?, detail = "
                    "'the transport failed without saying whether the server accepted it' "
                    f"WHERE state = 'sending' AND id IN ({_marks(len(part))})",
                    (stamp, *part),
                )

    # -- reading --------------------------------------------------------------------------

    def counts(self, *, proofs: bool = False) -> dict[str, int]:
        """Rows per state (every state present, zero if none); campaign rows or proofs."""
        result = dict.fromkeys(DELIVERY_STATES, 0)
        for row in self.store.query(
            "SELECT state, count(*) AS n FROM deliveries WHERE campaign_id = ? AND is_proof = ? "
            "GROUP BY state",
            (self.campaign_id, int(proofs)),
        ):
            result[row["state"]] = int(row["n"])
        return result

    def problems(
        self, states: Sequence[str] = ("failed", "in_doubt"), *, limit: int | None = None
    ) -> list[Problem]:
        """Failed and in-doubt recipients with the reason, oldest first (proofs included)."""
        sql = (
            "SELECT id, email, state, detail, attempts, updated_at, is_proof FROM deliveries "
            f"WHERE campaign_id = ? AND state IN ({_marks(len(states))}) ORDER BY id"
        )
        params: tuple[object, ...] = (self.campaign_id, *states)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [
            Problem(
                delivery_id=int(r["id"]),
                email=r["email"],
                state=r["state"],
                detail=r["detail"],
                attempts=int(r["attempts"]),
                updated_at=r["updated_at"],
                is_proof=bool(r["is_proof"]),
            )
            for r in self.store.query(sql, params)
        ]

    def pending_count(self, states: Sequence[str]) -> int:
        """Campaign rows in ``states`` whose address is not suppressed (what a run would send)."""
        rows = self.store.query(
            "SELECT count(*) AS n FROM deliveries d LEFT JOIN subscribers s ON s.email = d.email "
            f"WHERE d.campaign_id = ? AND d.is_proof = 0 AND d.state IN ({_marks(len(states))}) "
            f"AND (s.status IS NULL OR s.status NOT IN {_SUPPRESSED_SQL})",
            (self.campaign_id, *states),
        )
        return int(rows[0]["n"])


def _delivery(row: sqlite3.Row) -> Delivery:
    profile: dict[str, str] = {}
    if row["s_email"] is not None:
        profile = {
            "email": row["s_email"],
            "name": row["s_name"],
            "organisation": row["s_organisation"],
            "country": row["s_country"],
            "language": row["s_language"],
            "fields": row["s_fields"],
        }
    return Delivery(
        id=int(row["id"]),
        email=row["email"],
        name=row["name"],
        language=row["language"],
        is_proof=bool(row["is_proof"]),
        attempts=int(row["attempts"]) + 1,
        profile=profile,
    )
