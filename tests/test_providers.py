"""The API transports against a real local HTTP server that emulates Postmark, SendGrid, Mailgun.

Every test asserts what went over the wire (auth header, JSON or form fields, batch sizes) and,
through the emulator's own substitution, what each recipient would receive.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from provider_emulator import (
    MAILGUN_DOMAIN,
    MAILGUN_KEY,
    POSTMARK_TOKEN,
    SENDGRID_KEY,
    ProviderEmulator,
    Reply,
)

from cohesion_mail.errors import AuthenticationError, ConfigError, TransportError
from cohesion_mail.message import OutgoingMessage
from cohesion_mail.render.personalise import CompiledIssue, sentinel
from cohesion_mail.transports import open_transport
from cohesion_mail.transports.base import Status
from cohesion_mail.transports.http import (
    METADATA_KEY,
    HttpTransport,
    retry_after_seconds,
    share_bodies,
)
from cohesion_mail.transports.mailgun import MailgunTransport
from cohesion_mail.transports.postmark import PostmarkTransport
from cohesion_mail.transports.sendgrid import SendGridTransport
from cohesion_mail.transports.sendgrid import tag as sendgrid_tag

CLASSES: dict[str, type[HttpTransport]] = {
    "postmark": PostmarkTransport,
    "sendgrid": SendGridTransport,
    "mailgun": MailgunTransport,
}
PROVIDERS = list(CLASSES)
NAMES = ["Ann Example", "Seán O'Brien", 'Zoë "Z" <Zed> & Co', "Bob Builder", "Read Story"]

MakeMessage = Callable[..., OutgoingMessage]


@pytest.fixture
def api() -> Iterator[ProviderEmulator]:
    """The emulator, listening on 127.0.0.1."""
    with ProviderEmulator() as emulator:
        yield emulator


@pytest.fixture
def waits() -> list[float]:
    """The pauses a transport took between attempts (it really sleeps them)."""
    return []


@pytest.fixture
def connect(api: ProviderEmulator, waits: list[float]) -> Callable[..., HttpTransport]:
    """``connect("postmark", retries="2")`` → a transport aimed at the emulator."""

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    def make(provider: str, key: str | None = None, **options: str) -> HttpTransport:
        options.setdefault("backoff", "0.01")
        return CLASSES[provider].from_dsn(api.dsn(provider, key, **options), sleep=sleep)

    return make


@pytest.fixture
def recipients(message_factory: MakeMessage) -> list[OutgoingMessage]:
    """Five messages of the sample issue, with names that need quoting and escaping."""
    return [
        message_factory(i, f"reader{i}@example.com", name)
        for i, name in enumerate(NAMES, start=101)
    ]


def delivered_to(api: ProviderEmulator, provider: str) -> dict[str, object]:
    return {d.to: d for d in api.delivered if d.provider == provider}


def assert_received_as_sent(api: ProviderEmulator, provider: str, msgs: list[OutgoingMessage]):
    """Each recipient got exactly their own body, subject and list headers."""
    got = delivered_to(api, provider)
    assert sorted(got) == sorted(m.to_email for m in msgs)
    for msg in msgs:
        d = got[msg.to_email]
        assert d.html == msg.html  # type: ignore[attr-defined]
        assert d.text == msg.text  # type: ignore[attr-defined]
        assert d.subject == msg.subject  # type: ignore[attr-defined]
        assert d.metadata == {METADATA_KEY: str(msg.delivery_id)}  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in d.headers.items()}  # type: ignore[attr-defined]
        for name in (
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "List-Id",
            "Feedback-ID",
            "Message-ID",
        ):
            assert headers[name.lower()] == msg.headers[name], name


# -- Postmark ---------------------------------------------------------------------------------


def test_postmark_sends_one_batch_with_the_exact_payload(api, connect, recipients):
    transport = connect("postmark")
    results = transport.send(recipients)

    [request] = api.requests
    assert request.path == "/email/batch"
    assert request.headers["X-Postmark-Server-Token"] == POSTMARK_TOKEN
    first, msg = request.json[0], recipients[0]
    assert first == {
        "From": '"Cohesion News" <news@cohesion.example.org>',
        "To": '"Ann Example" <reader101@example.com>',
        "Subject": "Cohesion news for Ann",
        "HtmlBody": msg.html,
        "TextBody": msg.text,
        "ReplyTo": "editor@cohesion.example.org",
        "MessageStream": "broadcast",
        "TrackOpens": False,
        "TrackLinks": "None",
        "Metadata": {METADATA_KEY: "101"},
        "Headers": [{"Name": k, "Value": v} for k, v in msg.headers.items() if k not in ("Date",)],
    }
    assert request.json[2]["To"] == '"Zoë \\"Z\\" <Zed> & Co" <reader103@example.com>'
    assert [r.status for r in results] == [Status.SENT] * 5
    by_to = delivered_to(api, "postmark")
    assert [r.provider_message_id for r in results] == [
        by_to[m.to_email].message_id
        for m in recipients  # type: ignore[attr-defined]
    ]
    assert_received_as_sent(api, "postmark", recipients)


def test_postmark_splits_a_large_send_at_500(api, connect, message_factory):
    msgs = [message_factory(i, f"r{i}@example.com", "R") for i in range(1, 1201)]
    results = PostmarkTransport.send(connect("postmark"), msgs)
    assert [len(r.json) for r in api.requests] == [500, 500, 200]
    assert {r.status for r in results} == {Status.SENT}
    assert api.delivered_count == 1200


def test_postmark_inactive_recipient_is_rejected_alone(api, connect, recipients):
    api.reject["reader102@example.com"] = "Inactive recipients are ones that have bounced."
    results = connect("postmark").send(recipients)
    assert [r.status for r in results] == [
        Status.SENT,
        Status.REJECTED,
        Status.SENT,
        Status.SENT,
        Status.SENT,
    ]
    assert results[1].detail.startswith("Postmark 406: You tried to send to recipient(s)")
    assert "reader102@example.com" not in delivered_to(api, "postmark")


def test_postmark_sender_problem_for_every_message_stops_the_run(api, connect, recipients):
    problem = {"ErrorCode": 400, "Message": "Sender signature not defined for From address."}
    api.script("postmark", Reply(200, [problem] * len(recipients)))
    with pytest.raises(TransportError, match="Sender signature not defined") as err:
        connect("postmark").send(recipients)
    assert err.value.hint and "resume" in err.value.hint


def test_postmark_message_stream_is_a_dsn_option(api, connect, recipients):
    connect("postmark", message_stream="newsletters").send(recipients[:1])
    assert api.requests[0].json[0]["MessageStream"] == "newsletters"


# -- SendGrid ---------------------------------------------------------------------------------


def test_sendgrid_sends_one_body_with_a_personalization_per_recipient(api, connect, recipients):
    results = connect("sendgrid").send(recipients)

    [request] = api.requests
    assert request.path == "/v3/mail/send"
    assert request.headers["Authorization"] == f"Bearer {SENDGRID_KEY}"
    data = request.json
    assert data["from"] == {"email": "news@cohesion.example.org", "name": "Cohesion News"}
    assert data["reply_to"] == {"email": "editor@cohesion.example.org"}
    assert data["tracking_settings"] == {
        "click_tracking": {"enable": False, "enable_text": False},
        "open_tracking": {"enable": False},
        "subscription_tracking": {"enable": False},
        "ganalytics": {"enable": False},
    }
    assert [c["type"] for c in data["content"]] == ["text/plain", "text/html"]
    assert len(data["personalizations"]) == 5
    one, msg = data["personalizations"][1], recipients[1]
    assert one["to"] == [{"email": "reader102@example.com", "name": "Seán O'Brien"}]
    assert one["subject"] == "Cohesion news for Seán"
    assert one["custom_args"] == {METADATA_KEY: "102"}
    assert one["headers"] == {k: v for k, v in msg.headers.items() if k != "Date"}
    # The shared body holds no recipient's links; each personalization carries its own.
    html = data["content"][1]["value"]
    for m in recipients:
        assert m.merge["unsubscribe_url"] not in html
    assert any(msg.merge["unsubscribe_url"].endswith(v) for v in one["substitutions"].values())
    assert all(len(json.dumps(p["substitutions"])) < 10_000 for p in data["personalizations"])

    assert [r.status for r in results] == [Status.SENT] * 5
    assert {r.provider_message_id for r in results} == {api.delivered[0].message_id}
    assert_received_as_sent(api, "sendgrid", recipients)


def test_sendgrid_rejects_only_the_named_recipient_and_sends_the_rest(api, connect, recipients):
    api.reject["reader104@example.com"] = "mailbox syntax"
    results = connect("sendgrid").send(recipients)

    assert [r.status for r in results] == [
        Status.SENT,
        Status.SENT,
        Status.SENT,
        Status.REJECTED,
        Status.SENT,
    ]
    assert results[3].detail == "SendGrid: Does not contain a valid address: mailbox syntax"
    assert [len(r.json["personalizations"]) for r in api.requests] == [5, 4]
    assert_received_as_sent(api, "sendgrid", [m for i, m in enumerate(recipients) if i != 3])


def test_sendgrid_request_level_400_stops_the_run(api, connect, recipients):
    error = {
        "message": "The from address does not match a verified Sender Identity.",
        "field": "from",
    }
    api.script("sendgrid", Reply(400, {"errors": [error]}))
    with pytest.raises(TransportError, match="verified Sender Identity"):
        connect("sendgrid").send(recipients)
    assert api.delivered == []


def test_sendgrid_same_error_for_every_personalization_stops_the_run(api, connect, recipients):
    errors = [
        {"message": "Invalid header", "field": f"personalizations.{i}.headers"}
        for i in range(len(recipients))
    ]
    api.script("sendgrid", Reply(400, {"errors": errors}))
    with pytest.raises(TransportError, match="Invalid header"):
        connect("sendgrid").send(recipients)


def test_sendgrid_stays_within_1000_personalizations(api, connect, message_factory):
    msgs = [message_factory(i, f"r{i}@example.com", f"R{i} X") for i in range(1, 2101)]
    transport = connect("sendgrid")
    results = []
    for start in range(0, len(msgs), transport.max_batch):  # as the send loop slices
        results += transport.send(msgs[start : start + transport.max_batch])
    assert [len(r.json["personalizations"]) for r in api.requests] == [1000, 1000, 100]
    assert {r.status for r in results} == {Status.SENT}
    assert api.delivered_count == 2100
    for d in api.delivered[::97]:
        msg = msgs[int(d.metadata[METADATA_KEY]) - 1]
        assert (d.html, d.text) == (msg.html, msg.text)


# -- Mailgun ----------------------------------------------------------------------------------


def test_mailgun_batch_form_uses_recipient_variables(api, connect, recipients):
    results = connect("mailgun").send(recipients)

    [request] = api.requests
    assert request.path == f"/v3/{MAILGUN_DOMAIN}/messages"
    basic = base64.b64encode(f"api:{MAILGUN_KEY}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {basic}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.form_value("from") == '"Cohesion News" <news@cohesion.example.org>'
    assert request.form_values("to") == [
        '"Ann Example" <reader101@example.com>',
        '"Seán O\'Brien" <reader102@example.com>',
        '"Zoë \\"Z\\" <Zed> & Co" <reader103@example.com>',
        '"Bob Builder" <reader104@example.com>',
        '"Read Story" <reader105@example.com>',
    ]
    assert request.form_value("subject") == "%recipient.subject%"
    assert request.form_value("h:Reply-To") == "editor@cohesion.example.org"
    assert request.form_value("h:List-Unsubscribe") == "%recipient.h:List-Unsubscribe%"
    assert request.form_value("h:Message-ID") == "%recipient.h:Message-ID%"
    assert request.form_value("h:List-Id") == recipients[0].headers["List-Id"]  # same for all
    assert request.form_value(f"v:{METADATA_KEY}") == f"%recipient.v:{METADATA_KEY}%"
    for option in ("o:tracking", "o:tracking-clicks", "o:tracking-opens"):
        assert request.form_value(option) == "no"
    variables = json.loads(request.form_value("recipient-variables"))
    assert list(variables) == [m.to_email for m in recipients]
    mine = variables["reader102@example.com"]
    assert mine["subject"] == "Cohesion news for Seán"
    assert mine["h:List-Unsubscribe"] == recipients[1].headers["List-Unsubscribe"]
    assert mine[f"v:{METADATA_KEY}"] == "102"
    for m in recipients:
        assert m.merge["unsubscribe_url"] not in request.form_value("html")

    assert [r.status for r in results] == [Status.SENT] * 5
    assert_received_as_sent(api, "mailgun", recipients)


def test_mailgun_single_message_goes_literal(api, connect, recipients):
    connect("mailgun").send(recipients[:1])
    [request] = api.requests
    assert request.form_values("recipient-variables") == []
    assert request.form_value("html") == recipients[0].html
    assert request.form_value("h:List-Unsubscribe") == recipients[0].headers["List-Unsubscribe"]
    assert_received_as_sent(api, "mailgun", recipients[:1])


def test_mailgun_finds_a_refused_address_by_halving(api, connect, message_factory):
    msgs = [message_factory(i, f"r{i}@example.com", f"R{i} X") for i in range(1, 9)]
    api.reject["r6@example.com"] = "bad"
    results = connect("mailgun").send(msgs)
    assert [r.status for r in results] == [Status.SENT] * 5 + [Status.REJECTED] + [Status.SENT] * 2
    assert "'to' parameter is not a valid address" in results[5].detail
    assert len(api.requests) <= 7  # 8 → 4 → 2 → 1, and the accepted halves
    assert_received_as_sent(api, "mailgun", [m for m in msgs if m.to_email != "r6@example.com"])


def test_mailgun_unknown_domain_stops_the_run(api, recipients):
    dsn = f"mailgun://{MAILGUN_KEY}@other.example.org?base_url={api.base_url}"
    with pytest.raises(TransportError, match="other.example.org") as err:
        MailgunTransport.from_dsn(dsn).send(recipients)
    assert "region=eu" in (err.value.hint or "")


# -- every provider: authentication, rate limits, server errors, timeouts -----------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_bad_key_stops_at_the_first_request(api, connect, recipients, provider):
    transport = connect(provider, key="wrong-key-42")
    with pytest.raises(AuthenticationError) as err:
        transport.send(recipients)
    assert CLASSES[provider].provider in str(err.value)
    assert "wrong-key-42" not in str(err.value)
    assert "nothing in this batch was marked sent" in (err.value.hint or "")
    assert len(api.requests) == 1 and api.delivered == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_429_waits_for_retry_after_then_sends(api, connect, waits, recipients, provider):
    api.script(provider, Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
    results = connect(provider).send(recipients)
    assert waits == [1.0]
    assert len(api.requests) == 2
    assert [r.status for r in results] == [Status.SENT] * 5
    assert_received_as_sent(api, provider, recipients)


def test_retry_after_is_capped(api, connect, waits, recipients):
    api.script("postmark", Reply(429, None, {"Retry-After": "3600"}))
    connect("postmark", max_wait="0.2").send(recipients)
    assert waits == [0.2]


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2015, 10, 21, 7, 27, 50, tzinfo=UTC)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_500_is_retried_with_backoff(api, connect, waits, recipients, provider):
    api.script(provider, Reply(500, {"message": "oops"}), Reply(503, {"message": "busy"}))
    results = connect(provider, backoff="0.05").send(recipients)
    assert waits == [0.05, 0.1]
    assert len(api.requests) == 3
    assert [r.status for r in results] == [Status.SENT] * 5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_5xx_until_the_last_attempt_defers_the_whole_batch(
    api, connect, waits, recipients, provider
):
    api.script(provider, *[Reply(502, {"message": "bad gateway"})] * 3)
    results = connect(provider, retries="2").send(recipients)
    assert len(api.requests) == 3 and len(waits) == 2
    assert {r.status for r in results} == {Status.DEFERRED}
    assert "HTTP 502" in results[0].detail and "gave up after 3 attempts" in results[0].detail
    assert api.delivered == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_slow_answer_times_out_and_is_retried(api, connect, recipients, provider):
    api.script(provider, Reply(504, {"message": "late"}, delay=1.5))
    results = connect(provider, timeout="0.5").send(recipients)
    assert len(api.requests) == 2
    assert [r.status for r in results] == [Status.SENT] * 5
    assert_received_as_sent(api, provider, recipients)


def test_a_host_that_never_answers_is_a_transport_error(recipients, unused_port):
    transport = PostmarkTransport.from_dsn(
        f"postmark://{POSTMARK_TOKEN}@default?base_url=http://127.0.0.1:{unused_port}"
        "&retries=1&backoff=0.01"
    )
    with pytest.raises(TransportError, match=f"127.0.0.1:{unused_port}.*Connection refused"):
        transport.send(recipients)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_non_ascii_mailbox_fails_without_a_request(api, connect, message_factory, provider):
    msg = message_factory(1, "zoë@example.com", "Zoë")
    [result] = connect(provider).send([msg])
    assert result.status is Status.FAILED and "SMTPUTF8" in result.detail
    assert api.requests == []


# -- DSNs and the registry --------------------------------------------------------------------


def test_open_transport_builds_each_provider_from_its_dsn(api, tmp_path: Path):
    for provider, cls in CLASSES.items():
        transport = open_transport(api.dsn(provider), campaign_dir=tmp_path, timeout=7)
        assert isinstance(transport, cls)
        assert transport.timeout == (7, 7)
        assert "key" not in transport.describe() and api.base_url[7:] in transport.describe()
    assert PostmarkTransport.max_batch == 500
    assert SendGridTransport.max_batch == MailgunTransport.max_batch == 1000


def test_dsn_options_are_checked():
    with pytest.raises(ConfigError, match="unknown parameter.*colour"):
        PostmarkTransport.from_dsn("postmark://tok@default?colour=red")
    with pytest.raises(ConfigError, match="no API key"):
        SendGridTransport.from_dsn("sendgrid://default")
    with pytest.raises(ConfigError, match="region='mars'"):
        MailgunTransport.from_dsn("mailgun://k@mg.example.org?region=mars")
    with pytest.raises(ConfigError, match="not a sending domain"):
        MailgunTransport.from_dsn("mailgun://k@default")
    eu = MailgunTransport.from_dsn("mailgun://k@mg.example.org?region=eu&timeout=5")
    assert eu.base_url == "https://api.eu.mailgun.net" and eu.timeout == (5, 5)
    assert eu.describe() == "Mailgun API at api.eu.mailgun.net, domain mg.example.org"
    login = MailgunTransport.from_dsn("mailgun://api:key-123@mg.example.org")
    assert login.key == "key-123"


# -- shared bodies ----------------------------------------------------------------------------


def _issue(html: str, text: str, nonce: str = "n0nce00000") -> CompiledIssue:
    return CompiledIssue(
        slug="s",
        subject="Hi *|first_name|*",
        preheader="",
        language="en",
        html=html,
        text=text,
        nonce=nonce,
    )


def _messages(issue: CompiledIssue, settings, links, names: list[str], start: int = 1):
    from cohesion_mail.message import Recipient, build_message

    return [
        build_message(
            issue,
            settings,
            Recipient(i, 3, f"p{i}@example.com", name, {"first_name": name.split()[0]}),
            links,
            click_tracking=True,
        )
        for i, name in enumerate(names, start=start)
    ]


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun"])
def test_a_merge_value_that_is_also_ordinary_text_is_never_substituted_wrongly(
    api, connect, sample_settings, links, provider
):
    f = lambda name: sentinel("n0nce00000", name)  # noqa: E731
    issue = _issue(
        f'<p>Ann wrote: Dear {f("first_name")}, see <a href="https://example.org/">Ann</a>'
        f' or <a href="{f("unsubscribe_url")}">leave</a></p>',
        f"Ann wrote: Dear {f('first_name')}\n{f('unsubscribe_url')}\n",
    )
    msgs = _messages(issue, sample_settings, links, ["Ann One", "Bob Two", "Ann Three", "Cy Four"])
    results = connect(provider).send(msgs)
    assert {r.status for r in results} == {Status.SENT}
    assert_received_as_sent(api, provider, msgs)


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun"])
def test_two_issues_in_one_batch_go_as_two_bodies(
    api, connect, sample_issue, sample_settings, links, provider
):
    f = lambda name: sentinel("n0nce00001", name)  # noqa: E731
    other = _issue(
        f'<p>Hallo {f("first_name")} <a href="{f("unsubscribe_url")}">x</a></p>',
        f"Hallo {f('first_name')}",
        nonce="n0nce00001",
    )
    msgs = _messages(sample_issue, sample_settings, links, ["Ann A", "Bob B"])
    msgs += _messages(other, sample_settings, links, ["Cem C", "Dora D"], start=3)
    connect(provider).send(msgs)
    assert len(api.requests) == 2
    assert_received_as_sent(api, provider, msgs)


def test_a_refusal_after_part_of_the_batch_went_defers_the_rest(
    api, connect, sample_issue, sample_settings, links
):
    f = lambda name: sentinel("n0nce00001", name)  # noqa: E731
    other = _issue(f"<p>Hallo {f('first_name')}</p>", f"Hallo {f('first_name')}", "n0nce00001")
    msgs = _messages(sample_issue, sample_settings, links, ["Ann A", "Bob B"])
    msgs += _messages(other, sample_settings, links, ["Cem C", "Dora D"], start=3)
    error = {"message": "Content too large", "field": "content"}
    api.script("sendgrid", Reply(), Reply(400, {"errors": [error]}))
    results = connect("sendgrid").send(msgs)
    assert [r.status for r in results] == [Status.SENT] * 2 + [Status.DEFERRED] * 2
    assert "Content too large" in results[3].detail


def test_a_body_that_contains_our_tag_gets_other_tags(api, connect, sample_settings, links):
    f = lambda name: sentinel("n0nce00000", name)  # noqa: E731
    issue = _issue(
        f'<p>%cm_m0% %cm_h0% {f("first_name")} <a href="{f("unsubscribe_url")}">u</a>',
        f"%cm_m0% {f('first_name')}",
    )
    msgs = _messages(issue, sample_settings, links, ["Ann A", "Bob B", "Cy C"])
    connect("sendgrid").send(msgs)
    assert len(api.requests) == 1
    assert "%cm_m0% %cm_h0%" in api.requests[0].json["content"][1]["value"]
    assert_received_as_sent(api, "sendgrid", msgs)


def test_share_bodies_proves_every_member_and_respects_limits(recipients):
    [body] = share_bodies(recipients, sendgrid_tag)
    assert body.messages == recipients
    assert "%cm_h0%" in body.html and "%cm_t0%" in body.text
    for msg, values in zip(body.messages, body.values, strict=True):
        filled_html, filled_text = body.html, body.text
        for key, value in values.items():
            filled_html = filled_html.replace(sendgrid_tag(key), value)
            filled_text = filled_text.replace(sendgrid_tag(key), value)
        assert (filled_html, filled_text) == (msg.html, msg.text)

    alone = share_bodies(recipients, sendgrid_tag, max_values_bytes=10)
    assert [len(b.messages) for b in alone] == [1] * 5
    assert all(b.html == b.messages[0].html and b.values == [{}] for b in alone)

    twice = recipients[:2] + [recipients[0]]
    split = share_bodies(twice, sendgrid_tag, distinct=lambda m: m.to_email)
    assert [len(b.messages) for b in split] == [2, 1]


# -- the whole way: send loop → Postmark → ledger, then a bounce webhook suppresses -----------


def test_seed_issue_via_postmark_then_a_bounce_suppresses_the_next_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import shutil

    from cohesion_mail import campaign as core
    from cohesion_mail.config import load_settings
    from cohesion_mail.store.db import Store
    from cohesion_mail.tracking.app import create_app
    from cohesion_mail.tracking.webhooks import ENV_WEBHOOK_SECRET

    repo = Path(__file__).resolve().parent.parent
    shutil.copy(repo / "cohesion-mail.toml", tmp_path)
    shutil.copytree(repo / "campaigns" / "2020-02-cohes3ion", tmp_path / "issue")
    rows = [f"reader{i}@example.org,Reader {i}" for i in range(1100)]
    (tmp_path / "subscribers.csv").write_text("email,name\n" + "\n".join(rows) + "\n")
    settings = load_settings(start=tmp_path)
    state = tmp_path / ".cohesion-mail" / "state.db"

    with ProviderEmulator(keep_bodies=False) as api, Store(state) as store:
        summary = core.send_campaign(
            tmp_path / "issue", settings, store=store, transport=api.dsn("postmark")
        )
        assert summary.sent == 1100 and summary.failed == 0
        assert len(api.requests) == 3  # 500 + 500 + 100
        ledger = store.query(
            "SELECT state, count(*) AS n, count(DISTINCT provider_message_id) AS ids "
            "FROM deliveries GROUP BY state"
        )
        assert [tuple(r) for r in ledger] == [("sent", 1100, 1100)]
        bounced = store.query("SELECT id FROM deliveries WHERE email = 'reader7@example.org'")

    monkeypatch.setenv(ENV_WEBHOOK_SECRET, "s3cret")
    app = create_app(state, settings)
    bounce = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "Email": "reader7@example.org",
        "MessageID": "x",
        "Metadata": {METADATA_KEY: str(bounced[0]["id"])},
    }
    assert app.test_client().post("/webhooks/postmark/s3cret", json=bounce).status_code == 200

    with Store(state) as store:
        again = core.plan(tmp_path / "issue", settings, store=store, transport="outbox://")
        assert again.suppressed == 1
        [event] = store.query("SELECT delivery_id, kind FROM events")
        assert tuple(event) == (bounced[0]["id"], "bounce")
