"""A bounded load test: ``cohesion-mail serve`` in its own process, 200 concurrent clients.

Every client opens (twice), clicks and one-click unsubscribes (twice, as a retrying mail
client would) for its deliveries. No request may fail, and the store must hold every open and
click exactly once per request and exactly one unsubscribe per delivery. No timing assertion:
the bound is on the number of requests, and each request has a timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tracking_support import REPO, SLUG, add_campaign, add_delivery, bound_socket, seed_issue

from cohesion_mail.store.db import Store
from cohesion_mail.tracking.tokens import Links, Signer, load_secret

CLIENTS = 200
PER_CLIENT = 2  # deliveries each client acts for
OPENS = 2  # pixel fetches per delivery
UNSUBSCRIBES = 2  # one-click POSTs per delivery
TIMEOUT = 60  # seconds, per request
TARGET = "https://www.interregeurope.eu/cohes3ion"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``python -m cohesion_mail serve`` on a free port; its URL and state path."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    sock.close()  # the server binds it again at once; nothing else here wants a port
    state = tmp_path / "state.db"
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COHESION_MAIL_BASE_URL": url}
    env.pop("COHESION_MAIL_SECRET", None)
    Store(state).close()
    load_secret(state)  # generated once, shared with the server through the state folder
    proc = subprocess.Popen(
        [sys.executable, "-m", "cohesion_mail", "serve", "--port", str(port), "--threads", "16",
         "--state", str(state), "--config", str(REPO / "cohesion-mail.toml")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"serve exited: {proc.communicate()[1]}")
            time.sleep(0.1)
        else:
            pytest.fail("serve did not answer /healthz")
        yield url, state
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_200_concurrent_clients_every_event_once(server: tuple[str, Path], tmp_path: Path):
    url, state = server
    issue = seed_issue(tmp_path)
    with Store(state) as store:
        cid = add_campaign(store, SLUG, issue)
        deliveries = [add_delivery(store, cid, f"load{i}@example.org", f"Load {i}")
                      for i in range(CLIENTS * PER_CLIENT)]
    links = Links(url, Signer(load_secret(state)[0]))
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(mine: list[int]) -> None:
        with requests.Session() as http:
            http.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
            start.wait(timeout=TIMEOUT)
            for did in mine:
                calls = [("GET", links.open_pixel(cid, did), 200)] * OPENS
                calls += [("GET", links.click(cid, did, TARGET), 302)]
                calls += [("POST", links.unsubscribe(cid, did), 200)] * UNSUBSCRIBES
                for method, target, expected in calls:
                    try:
                        answer = http.request(method, target, timeout=TIMEOUT,
                                              allow_redirects=False,
                                              data={"List-Unsubscribe": "One-Click"}
                                              if method == "POST" else None)
                        if answer.status_code != expected:
                            raise AssertionError(f"{answer.status_code} != {expected}")
                    except (requests.RequestException, AssertionError) as exc:
                        with lock:
                            errors.append(f"{method} {target}: {exc}")

    threads = [threading.Thread(target=client, args=(deliveries[i::CLIENTS],))
               for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT * 10)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

    with Store(state) as store:
        counts = {
            (r["delivery_id"], r["kind"]): r["n"]
            for r in store.query("SELECT delivery_id, kind, count(*) AS n FROM events "
                                 "GROUP BY delivery_id, kind")
        }
        statuses = {r["status"] for r in store.query("SELECT status FROM subscribers")}
    for did in deliveries:
        assert counts.get((did, "open")) == OPENS
        assert counts.get((did, "click")) == 1
        assert counts.get((did, "unsubscribe")) == 1
    assert sum(counts.values()) == len(deliveries) * (OPENS + 2)
    assert statuses == {"unsubscribed"}
