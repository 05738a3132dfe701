"""The SQLite state store: one file, WAL mode, schema versioned in ``PRAGMA user_version``.

Every table the product keeps lives here (subscribers, campaigns, the per-recipient delivery
ledger, tracking events), so the CLI, the send loop and the tracking service share one source of
truth. Migrations are append-only: add a new function to ``MIGRATIONS``, never edit an old one.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..errors import StoreError

SUBSCRIBER_STATUSES = ("subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSED_STATUSES = ("unsubscribed", "bounced", "complained")
DELIVERY_STATES = ("queued", "sending", "sent", "failed", "deferred", "in_doubt")
EVENT_KINDS = (
    "open",
    "click",
    "unsubscribe",
    "resubscribe",
    "bounce",
    "complaint",
    "webview",
    "delivered",
)


def now() -> str:
    """UTC timestamp as stored everywhere: ISO 8601 with microseconds, sortable as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _run(conn: sqlite3.Connection, script: str) -> None:
    """Run ``;``-separated statements in the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _v1(conn: sqlite3.Connection) -> None:
    _run(
        conn,
        f"""
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,            -- normalised, compared lower-case
            name TEXT NOT NULL DEFAULT '',
            organisation TEXT NOT NULL DEFAULT '',
            country TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL DEFAULT '',
            fields TEXT NOT NULL DEFAULT '{{}}',    -- JSON object of extra merge fields
            status TEXT NOT NULL DEFAULT 'subscribed'
                CHECK (status IN {SUBSCRIBER_STATUSES!r}),
            status_reason TEXT NOT NULL DEFAULT '',
            status_changed_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE campaigns (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL DEFAULT '',
            directory TEXT NOT NULL DEFAULT '',    -- the campaign folder it was last sent from
            click_tracking INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL
        );
        -- The compiled issue as sent, per language, so the web version shows exactly that.
        CREATE TABLE campaign_variants (
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            language TEXT NOT NULL,
            subject TEXT NOT NULL DEFAULT '',
            compiled TEXT NOT NULL,                -- CompiledIssue.to_json()
            created_at TEXT NOT NULL,
            PRIMARY KEY (campaign_id, language)
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
            email TEXT NOT NULL,                   -- lower-cased normalised address
            name TEXT NOT NULL DEFAULT '',
            language TEXT NOT NULL DEFAULT '',
            is_proof INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN {DELIVERY_STATES!r}),
            attempts INTEGER NOT NULL DEFAULT 0,
            message_id TEXT NOT NULL DEFAULT '',
            provider_message_id TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            transport TEXT NOT NULL DEFAULT '',    -- the DSN scheme only, never credentials
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            sent_at TEXT
        );
        -- Exactly once: one campaign delivery per address (proofs may repeat).
        CREATE UNIQUE INDEX deliveries_once ON deliveries(campaign_id, email) WHERE is_proof = 0;
        CREATE INDEX deliveries_state ON deliveries(campaign_id, state);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            campaign_id INTEGER REFERENCES campaigns(id),
            delivery_id INTEGER REFERENCES deliveries(id),
            email TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN {EVENT_KINDS!r}),
            url TEXT NOT NULL DEFAULT '',
            machine INTEGER NOT NULL DEFAULT 0,    -- 1: a proxy or scanner, not a person
            user_agent TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        );
        CREATE INDEX events_campaign ON events(campaign_id, kind);
        CREATE INDEX events_delivery ON events(delivery_id, kind);
        """
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]


class Store:
    """A connection to the state file, safe to share between the threads of one process.

    Writes go through ``atomic()`` so a crash never leaves half a change. ``busy_timeout`` lets
    the tracking service and a running ``send`` write to the same file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"{self.path}: cannot open the state store: {exc}",
                hint="pass --state PATH or set COHESION_MAIL_STATE to a writable file",
            ) from exc
        self.conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.conn.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"{self.path}: not a cohesion-mail state store ({exc})") from exc

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {version} is newer than this cohesion-mail "
                f"understands ({len(MIGRATIONS)})",
                hint="upgrade cohesion-mail",
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.atomic():
                migration(self.conn)
                self.conn.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def atomic(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on any exception.

        ``durable`` commits with ``synchronous=FULL``: in WAL mode NORMAL survives a killed
        process but not a power cut. The send ledger needs that for its ``sending`` marks (a
        lost mark could mean a message sent twice); it costs one fsync per commit.
        """
        with self._lock:
            level = None
            if durable:
                level = self.conn.execute("PRAGMA synchronous").fetchone()[0]
                self.conn.execute("PRAGMA synchronous=FULL")
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            finally:
                if level is not None:
                    self.conn.execute(f"PRAGMA synchronous={int(level)}")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Read rows (under the lock, so threads never interleave on the connection)."""
        with self._lock:
            return self.conn.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def campaign_id(self, slug: str, subject: str = "") -> int:
        """The id of campaign ``slug``, created on first use."""
        with self.atomic() as conn:
            row = conn.execute("SELECT id FROM campaigns WHERE slug = ?", (slug,)).fetchone()
            if row:
                if subject:
                    conn.execute("UPDATE campaigns SET subject = ? WHERE id = ?", (subject, row[0]))
                return int(row[0])
            cur = conn.execute(
                "INSERT INTO campaigns (slug, subject, created_at) VALUES (?, ?, ?)",
                (slug, subject, now()),
            )
            return int(cur.lastrowid or 0)
