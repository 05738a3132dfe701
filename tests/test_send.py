"""Sending a campaign end to end: real SMTP server (aiosmtpd) and the outbox, resume, suppression,
proofs, dry runs, the lock, fault injection, a server that is down, and the CLI."""

from __future__ import annotations

import email
import email.policy
import quopri
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohesion_mail.campaign import SendSummary, campaign_status, plan, send_campaign
from cohesion_mail.cli import app
from cohesion_mail.config import Settings, load_settings
from cohesion_mail.errors import AuthenticationError, StoreError, TransportError
from cohesion_mail.message import Recipient, build_message, message_bytes
from cohesion_mail.render.personalise import CompiledIssue, sentinel
from cohesion_mail.sending.compose import _Clicks
from cohesion_mail.sending.lock import CampaignLock
from cohesion_mail.sending.loop import MAX_TRIES
from cohesion_mail.store.db import Store
from cohesion_mail.store.ledger import Ledger, find_campaign
from cohesion_mail.store.subscribers import set_status
from cohesion_mail.tracking.tokens import Links, Signer
from cohesion_mail.wire import StubIssue, WireIssue, WireMessage, _qp
from tests.conftest import Faults, Received, SmtpServer

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "campaigns" / "2020-02-cohes3ion"
SECRET = "test-signing-secret"
SLUG = SEED.name


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder: the repository's settings file and a copy of the seed campaign."""
    shutil.copy(REPO / "cohesion-mail.toml", tmp_path / "cohesion-mail.toml")
    shutil.copytree(SEED, tmp_path / "campaigns" / SLUG)
    monkeypatch.setenv("COHESION_MAIL_SECRET", SECRET)
    for name in ("COHESION_MAIL_STATE", "COHESION_MAIL_TRANSPORT", "COHESION_MAIL_CONFIG",
                 "COHESION_MAIL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def settings(project: Path) -> Settings:
    return load_settings(project / "cohesion-mail.toml")


@pytest.fixture
def seed_campaign(project: Path) -> Path:
    return project / "campaigns" / SLUG


@pytest.fixture
def store(project: Path) -> Iterator[Store]:
    with Store(project / ".cohesion-mail" / "state.db") as s:
        yield s


def write_csv(path: Path, n: int, *, extra: str = "") -> Path:
    lines = ["email,name,organisation,country,language"]
    lines += [f"reader{i}@example.org,Reader {i},Org {i},Spain,es" for i in range(n)]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


@pytest.fixture
def subscribers_csv(project: Path) -> Path:
    """Five good rows, one invalid address and one duplicate (reported, never sent)."""
    return write_csv(
        project / "subscribers.csv",
        5,
        extra="not-an-address,Broken Row,,,\nREADER1@example.org,Reader One Again,,,\n",
    )


def delivery_of(received: Received) -> int:
    """The delivery id signed into the message's unsubscribe link."""
    header = received.message["List-Unsubscribe"]
    token = re.search(r"/u/([A-Za-z0-9_-]+)>", header)
    assert token, header
    return Signer(SECRET.encode()).verify("unsubscribe", token.group(1)).delivery_id


def send(
    seed_campaign: Path, settings: Settings, store: Store, server: SmtpServer | str, **kw: object
) -> SendSummary:
    dsn = server if isinstance(server, str) else server.dsn()
    return send_campaign(seed_campaign, settings, store=store, transport=dsn, **kw)  # type: ignore[arg-type]


# -- end to end -----------------------------------------------------------------------------


def test_smtp_end_to_end_one_personal_message_per_recipient(
    seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path,
    smtp_server: SmtpServer,
) -> None:
    summary = send(seed_campaign, settings, store, smtp_server)

    assert (summary.sent, summary.failed, summary.planned) == (5, 0, 5)
    assert summary.rejected_count == 1 and summary.rejected[0].line == 7
    assert sorted(smtp_server.recipients()) == [f"reader{i}@example.org" for i in range(5)]
    cid = find_campaign(store, SLUG)
    rows = {r["id"]: r for r in store.query("SELECT * FROM deliveries")}
    unsubscribe_links = set()
    for received in smtp_server.received:
        msg = received.message
        did = delivery_of(received)
        assert rows[did]["email"] == received.rcpt_tos[0]  # the token names this recipient's row
        assert rows[did]["state"] == "sent" and rows[did]["provider_message_id"].startswith("Q")
        assert msg["Message-ID"] == rows[did]["message_id"]
        assert msg["Message-ID"].endswith("@cohes3ion.eu>")
        assert msg["To"].startswith("Reader ")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Precedence"] == "bulk"
        assert msg["List-Id"] == "COHES3ION Newsletter <newsletter.cohes3ion.eu>"
        assert f":{cid}:" in msg["Feedback-ID"]
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        links = Links(settings.base_url, Signer(SECRET.encode()))
        assert links.unsubscribe(cid, did) in html and links.web_version(cid, did) in text
        assert links.click(cid, did, "https://www.interregeurope.eu/cohes3ion").replace(
            "&", "&amp;") in html
        unsubscribe_links.add(msg["List-Unsubscribe"])
    assert len(unsubscribe_links) == 5
    # The issue as sent, every language edition of it, is kept for the web version.
    variants = store.query("SELECT * FROM campaign_variants")
    editions = {v["language"]: CompiledIssue.from_json(v["compiled"]) for v in variants}
    assert set(editions) == {"en", "es"}  # the seed and its Spanish translation
    assert all(e.slug == SLUG and e.language == lang for lang, e in editions.items())


def test_outbox_then_second_run_sends_nothing(
    seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path
) -> None:
    first = send(seed_campaign, settings, store, "outbox://", connections=2)
    assert first.sent == 5
    files = sorted((seed_campaign / "outbox").glob("*.eml"))
    assert len(files) == 5
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed.get_body(("html",)) is not None
    second = send(seed_campaign, settings, store, "outbox://")
    assert (second.sent, second.planned, second.skipped_already_sent) == (0, 0, 5)
    assert len(list((seed_campaign / "outbox").glob("*.eml"))) == 5


def test_resume_after_a_partial_run_sends_only_the_rest(
    project: Path, seed_campaign: Path, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    write_csv(project / "subscribers.csv", 12)
    assert send(seed_campaign, settings, store, smtp_server, limit=5).sent == 5
    rest = send(seed_campaign, settings, store, smtp_server)
    assert (rest.sent, rest.skipped_already_sent) == (7, 5)
    counts = Counter(smtp_server.recipients())
    assert len(counts) == 12 and set(counts.values()) == {1}


def test_suppressed_addresses_are_skipped_even_when_in_the_csv(
    seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path,
    smtp_server: SmtpServer,
) -> None:
    set_status(store, "reader2@example.org", "unsubscribed", "one-click")
    set_status(store, "Reader3@Example.org", "bounced", "550")
    summary = send(seed_campaign, settings, store, smtp_server)
    assert summary.sent == 3 and summary.skipped_suppressed == 2
    assert {"reader2@example.org", "reader3@example.org"}.isdisjoint(smtp_server.recipients())
    # The import never turned them back to subscribed.
    statuses = {r["email"]: r["status"] for r in store.query("SELECT * FROM subscribers")}
    assert statuses["reader2@example.org"] == "unsubscribed"


def test_an_unsubscribe_between_two_runs_wins_over_the_queue(
    project: Path, seed_campaign: Path, settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    write_csv(project / "subscribers.csv", 4)
    send(seed_campaign, settings, store, smtp_server, limit=1)
    set_status(store, "reader3@example.org", "unsubscribed")
    rest = send(seed_campaign, settings, store, smtp_server)
    assert rest.sent == 2 and rest.skipped_suppressed == 1
    assert "reader3@example.org" not in smtp_server.recipients()


def test_proofs_are_separate_rows_and_always_sent(
    seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path,
    smtp_server: SmtpServer,
) -> None:
    set_status(store, "editor@example.org", "unsubscribed")
    p = plan(seed_campaign, settings, store=store, transport=smtp_server.dsn(),
             to=["editor@example.org"])
    assert p.proof and p.recipients == 1
    summary = send(seed_campaign, settings, store, smtp_server, to=["editor@example.org"])
    assert summary.proof and summary.sent == 1
    [received] = smtp_server.received
    assert received.message["Subject"].startswith("[PROOF] ")
    ledger = Ledger(store, find_campaign(store, SLUG) or 0)
    assert ledger.counts(proofs=True)["sent"] == 1
    assert sum(ledger.counts().values()) == 0  # no campaign delivery
    # A proof neither suppresses nor counts: the real send still reaches everyone.
    assert send(seed_campaign, settings, store, smtp_server).sent == 5


def test_dry_run_builds_everything_and_writes_nothing(
    seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COHESION_MAIL_SECRET")
    summary = send(seed_campaign, settings, store, "outbox://", dry_run=True)
    assert summary.dry_run and summary.planned == 5 and summary.sent == 0
    assert summary.bytes_max > 10_000 and summary.bytes_total >= 5 * 10_000
    for table in ("deliveries", "subscribers", "campaigns"):
        assert store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0
    assert not (seed_campaign / "outbox").exists()
    assert not (store.path.parent / "secret").exists()


def test_a_second_send_of_the_same_campaign_is_refused(
    seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path
) -> None:
    with CampaignLock(store.path, SLUG), pytest.raises(StoreError) as info:
        send(seed_campaign, settings, store, "outbox://")
    assert SLUG in str(info.value) and "already being sent" in str(info.value)
    assert store.query("SELECT count(*) AS n FROM deliveries")[0]["n"] == 0


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_fault_injecting_server_every_recipient_sent_once_or_failed_with_reason(
    project: Path, seed_campaign: Path, settings: Settings, store: Store,
    smtp_server_factory: Callable[..., SmtpServer], seed: int,
) -> None:
    write_csv(project / "subscribers.csv", 40)
    faults = Faults(seed=seed, closing=0.06, temporary=0.1, permanent=0.05, drop=0.06)
    server = smtp_server_factory(faults=faults)
    summary = send(seed_campaign, settings, store, server, connections=3)

    assert server.handler.injected  # the faults did happen
    at_server = Counter((r.rcpt_tos[0], delivery_of(r)) for r in server.received)
    assert set(at_server.values()) == {1}  # never twice
    rows = store.query("SELECT * FROM deliveries")
    assert len(rows) == 40
    for row in rows:
        if row["state"] == "sent":
            assert at_server[(row["email"], row["id"])] == 1
        else:
            assert row["state"] == "failed", dict(row)
            assert row["detail"] and (row["email"], row["id"]) not in at_server
    assert summary.sent + summary.failed == 40
    assert summary.failed == len([r for r in rows if r["state"] == "failed"])
    assert all("550" in reason or "attempts" in reason for _, reason in summary.failures)


def test_server_down_stops_cleanly_and_the_run_resumes(
    project: Path, seed_campaign: Path, settings: Settings, store: Store, unused_port: int,
    smtp_server: SmtpServer,
) -> None:
    write_csv(project / "subscribers.csv", 6)
    with pytest.raises(TransportError) as info:
        send(seed_campaign, settings, store, f"smtp://127.0.0.1:{unused_port}?tls=none&timeout=5",
             connections=2)
    assert f"127.0.0.1:{unused_port}" in str(info.value)
    assert "again to resume" in str(info.value)
    stopped = info.value.summary  # type: ignore[attr-defined]
    assert stopped.sent == 0 and stopped.remaining == 6
    assert Ledger(store, find_campaign(store, SLUG) or 0).counts()["queued"] == 6
    assert send(seed_campaign, settings, store, smtp_server).sent == 6


def test_bad_login_stops_before_anything_is_sent(
    project: Path, seed_campaign: Path, settings: Settings, store: Store,
    smtp_server_factory: Callable[..., SmtpServer],
) -> None:
    write_csv(project / "subscribers.csv", 3)
    server = smtp_server_factory(starttls=True, auth=("ann", "right"))
    with pytest.raises(AuthenticationError, match="ann"):
        send(seed_campaign, settings, store, server.dsn(password="wrong"))
    assert server.received == []
    assert Ledger(store, find_campaign(store, SLUG) or 0).counts()["queued"] == 3


# -- the fast wire form ---------------------------------------------------------------------


def _issue() -> CompiledIssue:
    f = lambda name: sentinel("w1r3n0nce0", name)  # noqa: E731
    html = (
        "<!doctype html><html><body>"
        f'<p title="{f("organisation")}">Dear {f("first_name")} from {f("region")},</p>'
        + "<p>" + "Långa rader med ÅÄÖ och = tecken. " * 40 + "</p>\n.dot at line start\n"
        '<p><a href="https://example.org/story?id=1&amp;x=2">Read</a> '
        '<a href="https://example.org/other">Other</a></p>'
        f'<a href="{f("unsubscribe_url")}">Unsubscribe</a>'
        f'<img src="{f("open_pixel_url")}" alt=""></body></html>'
    )
    text = f"Dear {f('first_name')} ({f('organisation')}),\r\n" + "Text ü " * 30 + "\n"
    return CompiledIssue(slug="2020-02-wire", subject="News for *|first_name|*", preheader="",
                         language="en", html=html, text=text, nonce="w1r3n0nce0",
                         merge_defaults={"region": "your region"})


@pytest.mark.parametrize("click_tracking", [True, False])
@pytest.mark.parametrize(
    "values",
    [
        {"first_name": "Ane", "organisation": "BEAZ"},
        {"first_name": 'Zoë "<b>" & co', "organisation": "A&B <x> 'q' " + "é" * 90,
         "region": ".Bizkaia ="},
        {"first_name": "", "organisation": " trailing space "},
    ],
)
def test_wire_form_parses_like_message_bytes(
    sample_settings: Settings, values: dict[str, str], click_tracking: bool
) -> None:
    issue = _issue()
    links = Links("https://news.example.org", Signer(b"k"))
    recipient = Recipient(42, 7, "zoe@example.org", "Zoë Example", values, language="es")
    plain = build_message(issue, sample_settings, recipient, links, click_tracking=click_tracking)
    click = (lambda url: links.click(7, 42, url)) if click_tracking else None
    raw = WireIssue(issue, click_tracking=click_tracking).message(plain, click)
    assert raw is not None

    a = email.message_from_bytes(message_bytes(plain), policy=email.policy.SMTP)
    b = email.message_from_bytes(raw, policy=email.policy.SMTP)
    strip = lambda items: [(k, re.sub(r'boundary="[^"]+"', "", v)) for k, v in items]  # noqa: E731
    assert strip(a.items()) == strip(b.items())
    assert [(p.get_content_type(), p.get_content()) for p in a.iter_parts()] == [
        (p.get_content_type(), p.get_content()) for p in b.iter_parts()
    ]
    assert max(len(line) for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n")) <= 76
    # The stub path (no body personalisation) gives the same headers and values.
    stub = build_message(StubIssue(issue), sample_settings, recipient, links,
                         click_tracking=click_tracking)
    assert stub.merge == plain.merge and stub.subject == plain.subject
    wired = WireMessage(stub, raw, lambda: issue.personalise(stub.merge, click))
    assert (wired.html, wired.text) == (plain.html, plain.text)


def test_click_urls_from_templates_are_the_signed_urls() -> None:
    links = Links("https://news.example.org", Signer(b"k"))
    clicks = _Clicks(links, 7)
    for delivery_id in (1, 99, 2**40):
        for target in ("https://a.example.org/x?y=1&z=2", "https://b.example.org/é"):
            assert clicks.url(delivery_id, target) == links.click(7, delivery_id, target)


def test_quoted_printable_segments_decode_exactly_and_never_start_a_line_with_a_dot() -> None:
    rng = random.Random(7)
    alphabet = "ab. =é\t\nxyz.-€"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 250)))
        encoded = _qp(text)
        lines = encoded.split(b"\r\n")
        assert all(len(line) <= 76 and not line.startswith(b".") for line in lines)
        assert encoded.endswith(b"\r\n") and b"\n" not in encoded.replace(b"\r\n", b"")
        decoded = quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode("utf-8")
        assert decoded == text


def test_a_recipient_deferred_every_time_fails_with_the_servers_words(
    project: Path, seed_campaign: Path, settings: Settings, store: Store,
    smtp_server_factory: Callable[..., SmtpServer],
) -> None:
    write_csv(project / "subscribers.csv", 2)
    server = smtp_server_factory(faults=Faults(seed=1, temporary=1.0))
    summary = send(seed_campaign, settings, store, server)
    assert (summary.sent, summary.failed) == (0, 2)
    for _, reason in summary.failures:
        assert reason.startswith(f"still refused after {MAX_TRIES} attempts") and "451" in reason
    rows = store.query("SELECT state, attempts FROM deliveries")
    assert [(r["state"], r["attempts"]) for r in rows] == [("failed", MAX_TRIES)] * 2


# -- status and the command line -------------------------------------------------------------


def test_status_lists_failed_and_in_doubt_with_reasons(
    project: Path, seed_campaign: Path, settings: Settings, store: Store,
    smtp_server_factory: Callable[..., SmtpServer],
) -> None:
    write_csv(project / "subscribers.csv", 8)
    server = smtp_server_factory(faults=Faults(seed=3, permanent=0.5))
    summary = send(seed_campaign, settings, store, server)
    assert summary.failed
    ledger = Ledger(store, find_campaign(store, SLUG) or 0)
    # A killed run's leftovers: rows claimed and never answered.
    store.conn.execute("UPDATE deliveries SET state = 'sending' WHERE id = "
                       "(SELECT min(id) FROM deliveries WHERE state = 'sent')")
    st = campaign_status(seed_campaign, store)
    assert st.recovered == 1 and st.counts["in_doubt"] == 1
    assert st.counts["failed"] == summary.failed
    assert {p.state for p in st.problems} == {"failed", "in_doubt"}
    assert all("550" in p.detail for p in st.problems if p.state == "failed")
    assert ledger.counts()["sending"] == 0

    result = CliRunner().invoke(app, ["status", str(seed_campaign), "--json"])
    assert result.exit_code == 0, result.output
    assert '"in_doubt": [' in result.output and "550" in result.output
    result = CliRunner().invoke(app, ["status", str(seed_campaign)])
    assert "in doubt" in result.output and "--resend-in-doubt" in result.output


def test_cli_refuses_without_a_terminal_unless_yes(
    seed_campaign: Path, subscribers_csv: Path, smtp_server: SmtpServer, store: Store
) -> None:
    runner = CliRunner()
    refused = runner.invoke(app, ["send", str(seed_campaign), "--transport", smtp_server.dsn()])
    assert refused.exit_code == 1
    assert "--yes" in refused.output and "5 recipients" in refused.output
    assert smtp_server.received == []

    sent = runner.invoke(app, ["send", str(seed_campaign), "--transport", smtp_server.dsn(),
                               "--yes", "--connections", "2"])
    assert sent.exit_code == 0, sent.output
    assert "Sent" in sent.output and "Rejected CSV rows" in sent.output
    assert "not-an-address" in sent.output or "line 7" in sent.output.lower()
    assert len(smtp_server.received) == 5

    again = runner.invoke(app, ["send", str(seed_campaign), "--transport", smtp_server.dsn()])
    assert again.exit_code == 0 and "5 already sent" in again.output


def test_cli_exit_1_when_a_recipient_failed(
    project: Path, seed_campaign: Path, smtp_server_factory: Callable[..., SmtpServer],
    store: Store,
) -> None:
    write_csv(project / "subscribers.csv", 4)
    server = smtp_server_factory(faults=Faults(seed=5, permanent=0.5))
    result = CliRunner().invoke(app, ["send", str(seed_campaign), "--transport", server.dsn(),
                                      "--yes"])
    assert result.exit_code == 1
    assert "Failed recipients" in result.output and "550" in result.output


def test_cli_dry_run_and_proof(
    seed_campaign: Path, subscribers_csv: Path, smtp_server: SmtpServer, store: Store
) -> None:
    runner = CliRunner()
    dry = runner.invoke(app, ["send", str(seed_campaign), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Messages built" in dry.output and "Average size" in dry.output
    proof = runner.invoke(app, ["send", str(seed_campaign), "--transport", smtp_server.dsn(),
                                "--to", "me@example.org", "--yes"])
    assert proof.exit_code == 0, proof.output
    assert smtp_server.recipients() == ["me@example.org"]
    bad = runner.invoke(app, ["send", str(seed_campaign), "--to", "nope", "--yes"])
    assert bad.exit_code == 1 and "--to 'nope'" in bad.output


def test_settings_defaults_reach_the_core(
    project: Path, seed_campaign: Path, settings: Settings, store: Store, subscribers_csv: Path
) -> None:
    custom = replace(settings, send=replace(settings.send, subscribers="lists/other.csv"))
    (project / "lists").mkdir()
    write_csv(project / "lists" / "other.csv", 2)
    assert send(seed_campaign, custom, store, "outbox://").sent == 2
