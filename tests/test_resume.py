"""Crash safety: a ``send`` killed with SIGKILL (or stopped with Ctrl-C) mid-campaign, then resumed.

The send runs as a real subprocess (``python -m cohesion_mail send``) against a real SMTP server
in this process; ``--rate`` slows it down so the kill lands mid-campaign.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohesion_mail.cli import app
from cohesion_mail.store.db import Store
from cohesion_mail.store.ledger import Ledger, find_campaign
from tests.conftest import SmtpServer

REPO = Path(__file__).resolve().parents[1]
SLUG = "2020-02-cohes3ion"
N = 150
RATE = 40  # messages/s: the run takes ~4 s, the kill lands after ~1 s of sending
# What may be in flight at the kill: the send loop claims groups of max(1, RATE // 4) rows
# and keeps at most two groups per connection (cohesion_mail.campaign, window).
IN_FLIGHT = 2 * max(1, RATE // 4)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "cohesion-mail.toml", tmp_path / "cohesion-mail.toml")
    shutil.copytree(REPO / "campaigns" / SLUG, tmp_path / "campaigns" / SLUG)
    rows = [f"reader{i}@example.org,Reader {i},Org,Spain,es" for i in range(N)]
    (tmp_path / "subscribers.csv").write_text(
        "email,name,organisation,country,language\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return tmp_path


@pytest.fixture
def env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHESION_MAIL_")}
    env["COHESION_MAIL_SECRET"] = "resume-test-secret"
    env["COHESION_MAIL_STATE"] = str(project / "state" / "state.db")
    env["PYTHONPATH"] = str(REPO)
    return env


def start_send(project: Path, env: dict[str, str], dsn: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cohesion_mail", "send", f"campaigns/{SLUG}", "--transport", dsn,
         "--rate", str(RATE), "--yes"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for(server: SmtpServer, count: int, child: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while len(server.received) < count:
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the send did not get going"
        time.sleep(0.02)


def run_cli(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cohesion_mail", *args], cwd=project, env=env,
        capture_output=True, text=True, timeout=120,
    )


def ledger_of(project: Path) -> tuple[Store, Ledger]:
    store = Store(project / "state" / "state.db")
    return store, Ledger(store, find_campaign(store, SLUG) or 0)


def test_sigkill_mid_campaign_then_resume(
    project: Path, env: dict[str, str], smtp_server: SmtpServer
) -> None:
    child = start_send(project, env, smtp_server.dsn())
    try:
        wait_for(smtp_server, 25, child)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        child.kill()
        child.communicate()
    got_before = len(smtp_server.received)
    assert got_before < N  # it really was killed mid-campaign

    # status marks what the killed process had in flight as in doubt, and lists it.
    status = run_cli(project, env, "status", f"campaigns/{SLUG}")
    assert status.returncode == 0, status.stderr
    store, ledger = ledger_of(project)
    with store:
        counts = ledger.counts()
        in_doubt = {p.email for p in ledger.problems(("in_doubt",))}
    assert counts["sending"] == 0
    assert len(in_doubt) == counts["in_doubt"] <= IN_FLIGHT
    for email in in_doubt:
        assert email in status.stdout

    resumed = run_cli(project, env, "send", f"campaigns/{SLUG}", "--transport",
                      smtp_server.dsn(), "--yes")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr

    store, ledger = ledger_of(project)
    with store:
        counts = ledger.counts()
        sent = {r["email"] for r in store.query("SELECT email FROM deliveries WHERE state='sent'")}
    received = Counter(smtp_server.recipients())
    assert counts["sent"] + counts["in_doubt"] == N  # zero missed
    assert counts["queued"] == counts["sending"] == counts["deferred"] == 0
    assert all(received[email] == 1 for email in sent)  # zero duplicates among sent
    assert all(received[email] <= 1 for email in in_doubt)
    assert len(sent) + len(in_doubt) == N

    # --resend-in-doubt sends exactly the in-doubt ones.
    again = run_cli(project, env, "send", f"campaigns/{SLUG}", "--transport",
                    smtp_server.dsn(), "--yes", "--resend-in-doubt")
    assert again.returncode == 0, again.stdout + again.stderr
    store, ledger = ledger_of(project)
    with store:
        assert ledger.counts()["sent"] == N
    after = Counter(smtp_server.recipients())
    assert {e for e in after if after[e] > received[e]} == in_doubt


def test_ctrl_c_finishes_in_flight_and_leaves_nothing_in_doubt(
    project: Path, env: dict[str, str], smtp_server: SmtpServer
) -> None:
    child = start_send(project, env, smtp_server.dsn())
    try:
        wait_for(smtp_server, 15, child)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert b"Interrupted" in out
    store, ledger = ledger_of(project)
    with store:
        counts = ledger.counts()
    assert counts["in_doubt"] == counts["sending"] == 0
    assert 15 <= counts["sent"] < N and counts["sent"] == len(smtp_server.received)

    result = CliRunner().invoke(
        app,
        ["send", f"{project}/campaigns/{SLUG}", "--transport", smtp_server.dsn(), "--yes",
         "--state", env["COHESION_MAIL_STATE"], "--config", str(project / "cohesion-mail.toml"),
         "--subscribers", str(project / "subscribers.csv")],
        env={"COHESION_MAIL_SECRET": env["COHESION_MAIL_SECRET"]},
    )
    assert result.exit_code == 0, result.output
    assert sorted(Counter(smtp_server.recipients()).values()) == [1] * N


def test_a_second_send_while_one_runs_is_refused(
    project: Path, env: dict[str, str], smtp_server: SmtpServer
) -> None:
    child = start_send(project, env, smtp_server.dsn())
    try:
        wait_for(smtp_server, 5, child)
        second = run_cli(project, env, "send", f"campaigns/{SLUG}", "--transport",
                         smtp_server.dsn(), "--yes")
        status = run_cli(project, env, "status", f"campaigns/{SLUG}")
    finally:
        child.kill()
        child.communicate()
    assert second.returncode == 1
    assert f"campaign {SLUG} is already being sent by process {child.pid}" in second.stderr
    assert "again" in second.stderr  # what to do
    # status leaves the running send's rows alone and says it is running.
    assert status.returncode == 0 and f"process {child.pid}" in status.stdout
