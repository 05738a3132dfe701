"""What the tracking, report and load tests share: a real server on 127.0.0.1 and ledger rows
made with plain SQL (so these tests do not depend on the send loop)."""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

from cohesion_mail.config import Settings, load_settings
from cohesion_mail.render.personalise import CompiledIssue
from cohesion_mail.render.pipeline import build_issue
from cohesion_mail.store.db import Store, now
from cohesion_mail.tracking.app import EXTENSION, create_app
from cohesion_mail.tracking.tokens import Links, Signer, load_secret

REPO = Path(__file__).resolve().parent.parent
SEED = REPO / "campaigns" / "2020-02-cohes3ion"
SLUG = SEED.name
# The seed issue with a greeting, so the web version has recipient data to show (or not show).
GREETING = "Dear *|first_name|* (*|email|*, *|organisation|*), bringing together"


def seed_issue(workdir: Path) -> CompiledIssue:
    """The seed campaign, compiled by ``build_issue``, with a personal greeting added."""
    folder = workdir / "campaigns" / SLUG
    shutil.copytree(SEED, folder)
    yaml_path = folder / "campaign.yaml"
    text = yaml_path.read_text(encoding="utf-8")
    assert "      Bringing together" in text
    yaml_path.write_text(text.replace("      Bringing together", "      " + GREETING, 1),
                         encoding="utf-8")
    return build_issue(folder, load_settings(REPO / "cohesion-mail.toml"))


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="microseconds")


def add_campaign(store: Store, slug: str, issue: CompiledIssue, *, click_tracking: bool = True,
                 language: str = "en") -> int:
    cid = store.campaign_id(slug, issue.subject)
    with store.atomic() as conn:
        conn.execute("UPDATE campaigns SET click_tracking = ? WHERE id = ?",
                     (int(click_tracking), cid))
        conn.execute(
            "INSERT INTO campaign_variants (campaign_id, language, subject, compiled, created_at)"
            " VALUES (?, ?, ?, ?, ?)", (cid, language, issue.subject, issue.to_json(), now()))
    return cid


def add_delivery(store: Store, cid: int, email: str, name: str = "", *, state: str = "sent",
                 sent_at: str | None = None, is_proof: bool = False, status: str = "subscribed",
                 organisation: str = "", subscriber: bool = True) -> int:
    """A delivery row (sent an hour ago unless told) and, by default, its subscriber row."""
    stamp = now()
    with store.atomic() as conn:
        if subscriber:
            conn.execute(
                "INSERT INTO subscribers (email, name, organisation, fields, status, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (email) DO NOTHING",
                (email.lower(), name, organisation,
                 json.dumps({"first_name": name.split(" ")[0]} if name else {}), status,
                 stamp, stamp))
        cur = conn.execute(
            "INSERT INTO deliveries (campaign_id, email, name, language, is_proof, state,"
            " created_at, updated_at, sent_at) VALUES (?, ?, ?, 'en', ?, ?, ?, ?, ?)",
            (cid, email.lower(), name, int(is_proof), state, stamp, stamp,
             (sent_at or ago(3600)) if state == "sent" else None))
        return int(cur.lastrowid or 0)


def status_of(store: Store, email: str) -> str:
    return str(store.query("SELECT status FROM subscribers WHERE email = ?", (email,))[0][0])


def events_of(store: Store, delivery_id: int, kind: str) -> list[dict[str, object]]:
    rows = store.query("SELECT * FROM events WHERE delivery_id = ? AND kind = ? ORDER BY id",
                       (delivery_id, kind))
    return [dict(r) for r in rows]


@dataclass
class Service:
    """A running tracking service: its URL, its settings, a store and links for the test."""

    url: str
    settings: Settings
    store: Store
    links: Links
    app: Flask


@contextmanager
def running(app: Flask, sock: socket.socket, threads: int = 8) -> Iterator[None]:
    """Serve ``app`` with waitress on an already bound socket until the block ends."""
    server = create_server(app, sockets=[sock], threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.task_dispatcher.shutdown()
        wasyncore.close_all(server._map)  # the listener and any kept-alive connection
        thread.join(timeout=10)


def bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def service(state_dir: Path, *, threads: int = 8) -> Iterator[Service]:
    """The app of ``create_app`` over ``state_dir/state.db``, served on a free port."""
    sock = bound_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = replace(load_settings(REPO / "cohesion-mail.toml"), base_url=url, root=state_dir)
    store_path = state_dir / "state.db"
    app = create_app(store_path, settings)
    links = Links(url, Signer(load_secret(store_path)[0]))
    try:
        with Store(store_path) as store, running(app, sock, threads):
            yield Service(url, settings, store, links, app)
    finally:
        app.extensions[EXTENSION]["store"].close()
