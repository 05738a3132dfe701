"""Who a send goes to: the subscriber CSV minus suppressed addresses, or proof addresses.

A list of 100,000 rows must not cost 100,000 rows of memory, so the file is streamed
(``iter_csv``) into a temporary table of the store's connection (SQLite ``temp`` schema: a
scratch file of its own, never the state file) and everything after that is SQL over it: the
duplicate merge (the first row wins, later ones fill its blanks, as ``read_csv`` does), the
counts for the confirmation prompt, the subscriber upsert, and the queueing. Only the rows of
one page are in Python at a time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from email_validator import EmailNotValidError

from ..config import Settings
from ..errors import ConfigError
from ..store.csvio import _merge_duplicate
from ..store.db import SUPPRESSED_STATUSES, Store
from ..store.ledger import Ledger
from ..store.subscribers import (
    ImportResult,
    Rejected,
    SubscriberRow,
    import_rows,
    iter_csv,
    normalise_address,
)

REJECTED_SAMPLE = 50
PAGE = 1000

_TABLE = "temp.send_audience"
_SUPPRESSED = "(" + ", ".join(f"'{s}'" for s in SUPPRESSED_STATUSES) + ")"
# A row the send may use: the file does not mark it suppressed, nor does the store.
_SENDABLE = (
    f"a.status NOT IN {_SUPPRESSED} AND NOT EXISTS (SELECT 1 FROM subscribers s "
    f"WHERE s.email = a.email AND s.status IN {_SUPPRESSED})"
)


@dataclass
class AudienceFile:
    """A subscriber CSV loaded into the temporary table of one store connection."""

    path: Path
    store: Store
    signature: tuple[int, int]  # (mtime_ns, size) when loaded
    rows: int = 0  # distinct addresses
    suppressed: int = 0  # of those, unsubscribed / bounced / complained
    result: ImportResult = field(init=False)

    def __post_init__(self) -> None:
        self.result = ImportResult(path=self.path)

    @property
    def rejected(self) -> list[Rejected]:
        return self.result.rejected[:REJECTED_SAMPLE]

    @property
    def rejected_count(self) -> int:
        return len(self.result.rejected)

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings

    def current(self, store: Store) -> bool:
        """Still loaded on ``store``'s connection, and the file unchanged since?"""
        return store is self.store and _signature(self.path) == self.signature


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


_ROW_FIELDS = tuple(f.name for f in fields(SubscriberRow))


def _dump(row: SubscriberRow) -> str:
    """``row`` as JSON (``dataclasses.asdict`` deep-copies: 10x slower at 100,000 rows)."""
    return json.dumps({name: getattr(row, name) for name in _ROW_FIELDS})


def _signature(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


def load_audience(store: Store, path: Path) -> AudienceFile:
    """Stream ``path`` into the temporary table, merging duplicates as ``read_csv`` does.

    Each statement commits on its own (temporary tables only), so no lock on the state file
    is held while the file is read.
    """
    loaded = AudienceFile(Path(path), store, _signature(Path(path)))
    store.query(f"DROP TABLE IF EXISTS {_TABLE}")
    store.query(
        f"CREATE TABLE {_TABLE} (email TEXT PRIMARY KEY, line INTEGER NOT NULL, "
        "name TEXT NOT NULL, language TEXT NOT NULL, status TEXT NOT NULL, row TEXT NOT NULL)"
    )
    store.query("CREATE INDEX temp.send_audience_line ON send_audience(line)")
    for row in iter_csv(loaded.path, loaded.result):
        key = row.email.lower()
        inserted = store.query(
            f"INSERT INTO {_TABLE} VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING "
            "RETURNING line",
            (key, row.line, row.name, row.language, row.status, _dump(row)),
        )
        if inserted:
            continue
        [stored] = store.query(f"SELECT row FROM {_TABLE} WHERE email = ?", (key,))
        first = SubscriberRow(**json.loads(stored["row"]))
        _merge_duplicate(first, row)
        store.query(
            f"UPDATE {_TABLE} SET name = ?, language = ?, status = ?, row = ? WHERE email = ?",
            (first.name, first.language, first.status, _dump(first), key),
        )
        loaded.result.warnings.append(
            f"line {row.line}: {row.email} duplicates line {first.line}; merged "
            "(the first row wins, this one only fills its blank cells)"
        )
    loaded.rows = _count(store, "1")
    loaded.suppressed = loaded.rows - _count(store, _SENDABLE)
    return loaded


def _count(store: Store, where: str, params: tuple[object, ...] = ()) -> int:
    rows = store.query(f"SELECT count(*) AS n FROM {_TABLE} a WHERE {where}", params)
    return int(rows[0]["n"])


def new_addresses(store: Store, campaign_id: int | None) -> int:
    """Sendable addresses of the loaded file that have no delivery in the campaign yet."""
    if campaign_id is None:
        return _count(store, _SENDABLE)
    return _count(
        store,
        f"{_SENDABLE} AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = ? "
        "AND d.is_proof = 0 AND d.email = a.email)",
        (campaign_id,),
    )


def _pages(
    store: Store, columns: str, where: str = "1", params: tuple[object, ...] = ()
) -> Iterator[list[sqlite3.Row]]:
    """The loaded rows in file order, one page in memory at a time."""
    after = 0
    while True:
        page = store.query(
            f"SELECT line, {columns} FROM {_TABLE} a WHERE line > ? AND {where} "
            "ORDER BY line LIMIT ?",
            (after, *params, PAGE),
        )
        if not page:
            return
        yield page
        after = page[-1]["line"]


def rows(
    store: Store, where: str = "1", params: tuple[object, ...] = ()
) -> Iterator[SubscriberRow]:
    """The loaded rows as ``SubscriberRow``s, in file order."""
    for page in _pages(store, "row", where, params):
        for r in page:
            yield SubscriberRow(**json.loads(r["row"]))


def sendable_rows(store: Store, campaign_id: int | None) -> Iterator[SubscriberRow]:
    """Rows a send would go to: not suppressed and not already sent in the campaign."""
    if campaign_id is None:
        return rows(store, _SENDABLE)
    return rows(
        store,
        f"{_SENDABLE} AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = ? "
        "AND d.is_proof = 0 AND d.state = 'sent' AND d.email = a.email)",
        (campaign_id,),
    )


def queue_audience(
    store: Store,
    ledger: Ledger,
    loaded: AudienceFile,
    transport: str,
    edition: Callable[[str], str] = str,
) -> None:
    """Upsert the loaded rows into the store (so the tracking service knows every recipient),
    then queue each sendable address once (``Ledger.enqueue`` leaves known ones alone).

    ``edition(language)`` names the edition a reader gets (issue 7): that, not the reader's
    own language, is stored on the delivery, so reports and the web version match what was sent.
    """
    import_rows(store, rows(store), loaded.result)
    for page in _pages(store, "email, name, language", _SENDABLE):
        ledger.enqueue(
            ((r["email"], r["name"], edition(r["language"])) for r in page), transport
        )
