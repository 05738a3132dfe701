"""Subscribers in the state store: import, suppression, listing and export.

The store is where suppression lives. An address that unsubscribed, bounced or complained is
never sent to again, even when it is still in the CSV the officer sends with: ``audience``
removes it, ``import_csv`` never turns it back to subscribed, and ``set_status`` records an
unsubscribe for an address the store has never seen (someone replying "remove me" before the
list was imported).

Addresses are stored lower-cased (``deliveries.email`` is too, so the two join with ``=``);
``SubscriberRow.email`` keeps the normalised form from the file for the To header.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError

from ..errors import SubscriberError
from .csvio import (
    FORMULA_START,
    ImportResult,
    Rejected,
    SubscriberRow,
    iter_csv,
    normalise_address,
    normalise_language,
    read_csv,
)
from .db import SUBSCRIBER_STATUSES, SUPPRESSED_STATUSES, Store, now

__all__ = [
    "ImportResult",
    "Rejected",
    "Subscriber",
    "SubscriberRow",
    "audience",
    "counts",
    "export_csv",
    "import_csv",
    "import_rows",
    "iter_csv",
    "list_subscribers",
    "normalise_address",
    "normalise_language",
    "read_csv",
    "set_status",
    "suppressed",
]

# first/last name have no column of their own; they travel in the fields JSON.
_NAME_PARTS = ("first_name", "last_name")
EXPORT_COLUMNS = (
    "email",
    "name",
    "first_name",
    "last_name",
    "organisation",
    "country",
    "language",
    "status",
    "status_reason",
    "status_changed_at",
)


@dataclass(slots=True)
class Subscriber:
    """One subscriber as the store knows it."""

    email: str
    name: str = ""
    organisation: str = ""
    country: str = ""
    language: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    status: str = "subscribed"
    status_reason: str = ""
    status_changed_at: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def suppressed(self) -> bool:
        return self.status in SUPPRESSED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Subscriber:
        return cls(
            email=row["email"],
            name=row["name"],
            organisation=row["organisation"],
            country=row["country"],
            language=row["language"],
            fields=json.loads(row["fields"] or "{}"),
            status=row["status"],
            status_reason=row["status_reason"],
            status_changed_at=row["status_changed_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def _check_status(status: str, *, allow_suppressed_alias: bool = False) -> None:
    allowed: tuple[str, ...] = SUBSCRIBER_STATUSES
    if allow_suppressed_alias:
        allowed = (*allowed, "suppressed")
    if status not in allowed:
        raise SubscriberError(
            f"unknown subscriber status {status!r}", hint=f"use one of: {', '.join(allowed)}"
        )


def _stored_fields(row: SubscriberRow) -> dict[str, str]:
    values = {key: value for key, value in row.fields.items() if value}
    for part in _NAME_PARTS:
        if getattr(row, part):
            values[part] = getattr(row, part)
    return values


_FIND = (
    "SELECT id, name, organisation, country, language, fields, status FROM subscribers"
    " WHERE email = ?"
)
_INSERT = (
    "INSERT INTO subscribers (email, name, organisation, country, language, fields, status,"
    " status_reason, status_changed_at, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE = (
    "UPDATE subscribers SET name = ?, organisation = ?, country = ?, language = ?, fields = ?,"
    " updated_at = ? WHERE id = ?"
)


def import_csv(store: Store, path: Path) -> ImportResult:
    """Read ``path`` and upsert its rows; return the read result with the counts filled in.

    Non-empty cells update name, organisation, country, language and merge fields of a known
    subscriber; blank cells never erase what the store knows (an event's sign-up sheet with only
    email and name must not wipe organisations). A suppressed subscriber stays suppressed; a row
    the file itself marks unsubscribed/bounced/complained (an exported list) suppresses.
    One transaction: an import is applied whole or not at all.
    """
    result = read_csv(path)
    return import_rows(store, result.rows, result)


def import_rows(
    store: Store, rows: Iterable[SubscriberRow], result: ImportResult
) -> ImportResult:
    """Upsert ``rows`` as ``import_csv`` does (one transaction), counting into ``result``.

    ``rows`` may be a generator: the send loop streams a large list through here.
    """
    stamp = now()
    with store.atomic() as conn:
        for row in rows:
            key = row.email.lower()
            old = conn.execute(_FIND, (key,)).fetchone()
            new_fields = _stored_fields(row)
            suppress = row.status in SUPPRESSED_STATUSES
            if old is None:
                conn.execute(
                    _INSERT,
                    (
                        key,
                        row.name,
                        row.organisation,
                        row.country,
                        row.language,
                        json.dumps(new_fields, ensure_ascii=False, sort_keys=True),
                        row.status if suppress else "subscribed",
                        row.status_reason if suppress else "",
                        stamp if suppress else None,
                        stamp,
                        stamp,
                    ),
                )
                result.added += 1
                continue
            subscriber_id, *old_profile, old_fields, old_status = tuple(old)
            given = (row.name, row.organisation, row.country, row.language)
            profile = [new or previous for new, previous in zip(given, old_profile, strict=True)]
            fields = old_fields
            if new_fields:
                merged = json.loads(old_fields or "{}")
                if any(merged.get(k) != v for k, v in new_fields.items()):
                    merged.update(new_fields)
                    fields = json.dumps(merged, ensure_ascii=False, sort_keys=True)
            if old_status in SUPPRESSED_STATUSES:
                result.kept_suppressed += 1
                suppress = False  # already suppressed: keep the first status, time and reason
            if profile == old_profile and fields == old_fields and not suppress:
                result.unchanged += 1
                continue
            conn.execute(_UPDATE, (*profile, fields, stamp, subscriber_id))
            if suppress:
                conn.execute(
                    "UPDATE subscribers SET status = ?, status_reason = ?, status_changed_at = ?"
                    " WHERE id = ?",
                    (row.status, row.status_reason, stamp, subscriber_id),
                )
            result.updated += 1
    return result


def suppressed(store: Store) -> set[str]:
    """Lower-cased addresses that must never be sent to (unsubscribed, bounced, complained)."""
    marks = ", ".join("?" * len(SUPPRESSED_STATUSES))
    rows = store.query(
        f"SELECT email FROM subscribers WHERE status IN ({marks})", SUPPRESSED_STATUSES
    )
    return {row["email"].lower() for row in rows}


def set_status(store: Store, email: str, status: str, reason: str = "") -> str | None:
    """Set one address's status; return the previous status, ``None`` if it was unknown.

    An unknown address is created with ``status``, so an unsubscribe recorded before the list is
    imported still suppresses it. Setting the status it already has changes nothing (the first
    unsubscribe's time and reason are kept).
    """
    _check_status(status)
    try:
        address, _ = normalise_address(email.strip())
    except EmailNotValidError as exc:
        raise SubscriberError(f"{email!r} is not a valid email address: {exc}") from exc
    key = address.lower()
    reason = " ".join(reason.split())
    stamp = now()
    with store.atomic() as conn:
        old = conn.execute("SELECT id, status FROM subscribers WHERE email = ?", (key,)).fetchone()
        if old is None:
            conn.execute(
                "INSERT INTO subscribers (email, status, status_reason, status_changed_at,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, status, reason, stamp, stamp, stamp),
            )
            return None
        if old["status"] != status:
            conn.execute(
                "UPDATE subscribers SET status = ?, status_reason = ?, status_changed_at = ?,"
                " updated_at = ? WHERE id = ?",
                (status, reason, stamp, stamp, old["id"]),
            )
        return str(old["status"])


def list_subscribers(store: Store, status: str | None = None) -> list[Subscriber]:
    """All subscribers by address, or those with ``status`` ("suppressed" = any of the three)."""
    if status is None:
        rows = store.query("SELECT * FROM subscribers ORDER BY email")
    else:
        _check_status(status, allow_suppressed_alias=True)
        wanted = SUPPRESSED_STATUSES if status == "suppressed" else (status,)
        marks = ", ".join("?" * len(wanted))
        rows = store.query(
            f"SELECT * FROM subscribers WHERE status IN ({marks}) ORDER BY email", wanted
        )
    return [Subscriber.from_row(row) for row in rows]


def counts(store: Store) -> dict[str, int]:
    """Number of subscribers per status, every status present (0 when none)."""
    found = {
        row["status"]: int(row["n"])
        for row in store.query("SELECT status, count(*) AS n FROM subscribers GROUP BY status")
    }
    return {status: found.get(status, 0) for status in SUBSCRIBER_STATUSES}


def audience(
    store: Store, rows: list[SubscriberRow]
) -> tuple[list[SubscriberRow], list[SubscriberRow]]:
    """``(to_send, skipped_suppressed)``: the file's rows minus every suppressed address.

    A row is skipped when the store has the address as unsubscribed, bounced or complained, or
    when the file itself marks it so (an exported list used as the send list).
    """
    blocked = suppressed(store)
    to_send: list[SubscriberRow] = []
    skipped: list[SubscriberRow] = []
    for row in rows:
        if row.email.lower() in blocked or row.status in SUPPRESSED_STATUSES:
            skipped.append(row)
        else:
            to_send.append(row)
    return to_send, skipped


def _safe_cell(value: str) -> str:
    """Prefix ``'`` so a spreadsheet shows the text instead of running it (OWASP CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def export_csv(store: Store, path: Path) -> int:
    """Write every subscriber with its status to ``path``; return the number of rows.

    UTF-8 with a BOM (so Excel shows accents right), comma-delimited, one column per merge
    field. Cells that a spreadsheet would run as a formula get a leading ``'``; ``read_csv``
    removes it again, so the file imports back unchanged. Written to a temporary file and
    renamed, so an interrupted export never leaves half a list.
    """
    path = Path(path)
    subscribers = list_subscribers(store)
    extra = sorted({k for s in subscribers for k in s.fields} - set(_NAME_PARTS))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8-sig", newline="") as out:
                writer = csv.writer(out)
                writer.writerow([*EXPORT_COLUMNS, *extra])
                for s in subscribers:
                    record = {
                        **s.fields,
                        **{k: getattr(s, k) for k in EXPORT_COLUMNS if hasattr(s, k)},
                    }
                    writer.writerow(
                        [_safe_cell(str(record.get(k) or "")) for k in (*EXPORT_COLUMNS, *extra)]
                    )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise SubscriberError(
            f"{path}: cannot write the export: {exc.strerror or exc}",
            hint="choose a writable path",
        ) from exc
    return len(subscribers)
