"""Provider webhooks in the tracking service: signed and unsigned posts, suppression, events."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from cohesion_mail.config import Settings
from cohesion_mail.store.db import Store, now
from cohesion_mail.tracking import webhooks
from cohesion_mail.tracking.webhooks import (
    ENV_MAILGUN_KEY,
    ENV_SENDGRID_KEY,
    ENV_WEBHOOK_SECRET,
    SENDGRID_SIGNATURE,
    SENDGRID_TIMESTAMP,
)
from cohesion_mail.transports.http import METADATA_KEY

SECRET = "hook-secret-123"
MAILGUN_SIGNING_KEY = "mg-signing-key-456"
ANN, BOB = "ann@example.org", "bob@example.org"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A state store with campaign 'issue-1', subscribers Ann and Bob, one delivery each."""
    with Store(tmp_path / "state.db") as s:
        cid = s.campaign_id("issue-1", "Issue 1")
        stamp = now()
        with s.atomic() as conn:
            for email, provider_id in ((ANN, "pm-ann-1"), (BOB, "sg-req-7")):
                conn.execute(
                    "INSERT INTO subscribers (email, name, created_at, updated_at) "
                    "VALUES (?, '', ?, ?)",
                    (email, stamp, stamp),
                )
                conn.execute(
                    "INSERT INTO deliveries (campaign_id, email, state, message_id, "
                    "provider_message_id, created_at, updated_at) "
                    "VALUES (?, ?, 'sent', ?, ?, ?, ?)",
                    (cid, email, f"<{email}.1@example.org>", provider_id, stamp, stamp),
                )
        yield s


@pytest.fixture
def ids(store: Store) -> dict[str, int]:
    return {r["email"]: r["id"] for r in store.query("SELECT id, email FROM deliveries")}


@pytest.fixture
def client(store: Store, tmp_path: Path) -> FlaskClient:
    """A Flask app with only the webhook routes, over the ``store`` fixture."""
    app = Flask(__name__)
    webhooks.register(app, store, Settings(root=tmp_path))
    return app.test_client()


@pytest.fixture
def sendgrid_key(monkeypatch: pytest.MonkeyPatch) -> ec.EllipticCurvePrivateKey:
    """A P-256 key pair; the public half configured as SendGrid's verification key."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv(ENV_SENDGRID_KEY, base64.b64encode(der).decode())
    return private


def status(store: Store, email: str) -> str | None:
    rows = store.query("SELECT status FROM subscribers WHERE email = ?", (email,))
    return rows[0]["status"] if rows else None


def events(store: Store) -> list[tuple]:
    return [
        (r["delivery_id"], r["email"], r["kind"])
        for r in store.query("SELECT * FROM events ORDER BY id")
    ]


# -- Postmark ---------------------------------------------------------------------------------


def postmark_bounce(email: str = ANN, delivery: int | None = None, **extra) -> dict:
    body = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "TypeCode": 1,
        "ID": 42,
        "MessageID": "pm-ann-1",
        "Email": email,
        "Description": "The server was unable to "
        "deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "BouncedAt": "2024-01-01T10:00:00Z",
        "MessageStream": "broadcast",
        "Metadata": {METADATA_KEY: str(delivery)} if delivery else {},
    }
    body.update(extra)
    return body


def test_postmark_hard_bounce_suppresses_and_links_the_delivery(client, store, ids, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    reply = client.post(f"/webhooks/postmark/{SECRET}", json=postmark_bounce(delivery=ids[ANN]))
    assert reply.status_code == 200
    assert status(store, ANN) == "bounced"
    assert events(store) == [(ids[ANN], ANN, "bounce")]
    [row] = store.query("SELECT detail, campaign_id FROM events")
    assert row["detail"].startswith("Postmark HardBounce: The server was unable")
    assert row["campaign_id"] == store.campaign_id("issue-1")
    # The provider retries: one event, still bounced.
    client.post(f"/webhooks/postmark/{SECRET}", json=postmark_bounce(delivery=ids[ANN]))
    assert len(events(store)) == 1
    # Suppressed for the next issue.
    assert status(store, BOB) == "subscribed"


def test_postmark_without_metadata_maps_by_its_message_id(client, store, ids, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    client.post(f"/webhooks/postmark/{SECRET}", json=postmark_bounce())
    assert events(store) == [(ids[ANN], ANN, "bounce")]


def test_postmark_complaint_unsubscribe_and_unknown_address(client, store, ids, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    url = f"/webhooks/postmark/{SECRET}"
    complaint = {
        "RecordType": "SpamComplaint",
        "Type": "SpamComplaint",
        "Email": BOB,
        "MessageID": "x",
        "Metadata": {METADATA_KEY: str(ids[BOB])},
    }
    assert client.post(url, json=complaint).status_code == 200
    change = {
        "RecordType": "SubscriptionChange",
        "Recipient": "new@example.org",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
        "MessageID": "y",
    }
    assert client.post(url, json=change).status_code == 200
    # A later, weaker report never downgrades a complaint.
    client.post(url, json=postmark_bounce(email=BOB))
    reactivated = dict(change, SuppressSending=False)
    client.post(url, json=reactivated)
    assert status(store, BOB) == "complained"
    assert status(store, "new@example.org") == "unsubscribed"
    assert (ids[BOB], BOB, "complaint") in events(store)
    assert (None, "new@example.org", "unsubscribe") in events(store)


def test_postmark_soft_bounce_changes_nothing(client, store, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    reply = client.post(
        f"/webhooks/postmark/{SECRET}", json=postmark_bounce(Type="SoftBounce", TypeCode=4096)
    )
    assert reply.status_code == 200
    assert status(store, ANN) == "subscribed" and events(store) == []


def test_postmark_basic_auth_is_accepted(client, store, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    auth = base64.b64encode(f"postmark:{SECRET}".encode()).decode()
    reply = client.post(
        "/webhooks/postmark", json=postmark_bounce(), headers={"Authorization": f"Basic {auth}"}
    )
    assert reply.status_code == 200 and status(store, ANN) == "bounced"


def test_postmark_wrong_secret_is_403_and_changes_nothing(client, store, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    assert client.post("/webhooks/postmark/guess", json=postmark_bounce()).status_code == 403
    bad = base64.b64encode(b"postmark:guess").decode()
    assert (
        client.post(
            "/webhooks/postmark", json=postmark_bounce(), headers={"Authorization": f"Basic {bad}"}
        ).status_code
        == 403
    )
    assert client.post("/webhooks/postmark", json=postmark_bounce()).status_code == 403
    assert status(store, ANN) == "subscribed" and events(store) == []


def test_webhooks_without_configured_secrets_answer_404(client, store, monkeypatch, caplog):
    for variable in (ENV_WEBHOOK_SECRET, ENV_SENDGRID_KEY, ENV_MAILGUN_KEY):
        monkeypatch.delenv(variable, raising=False)
    assert client.post(f"/webhooks/postmark/{SECRET}", json=postmark_bounce()).status_code == 404
    assert client.post("/webhooks/sendgrid", json=[]).status_code == 404
    assert client.post("/webhooks/mailgun", json={}).status_code == 404
    assert ENV_SENDGRID_KEY in caplog.text and ENV_MAILGUN_KEY in caplog.text
    assert status(store, ANN) == "subscribed"


def test_unreadable_payload_is_400(client, monkeypatch):
    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    reply = client.post(
        f"/webhooks/postmark/{SECRET}", data=b"not json", content_type="application/json"
    )
    assert reply.status_code == 400


# -- SendGrid ---------------------------------------------------------------------------------


def signed(private: ec.EllipticCurvePrivateKey, body: bytes, timestamp: str) -> dict[str, str]:
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
        SENDGRID_TIMESTAMP: timestamp,
        "Content-Type": "application/json",
    }


def sendgrid_batch(ids: dict[str, int]) -> bytes:
    return json.dumps(
        [
            {
                "email": ANN,
                "event": "bounce",
                "type": "bounce",
                "reason": "550 5.1.1 no such user",
                "status": "5.1.1",
                "sg_message_id": "sg-req-7.filter0001.1.0",
                "sg_event_id": "e1",
                METADATA_KEY: str(ids[ANN]),
                "timestamp": 1700000000,
            },
            {
                "email": BOB,
                "event": "spamreport",
                "sg_message_id": "sg-req-7.filter0002.2.0",
                "sg_event_id": "e2",
                "timestamp": 1700000001,
            },
            {
                "email": "carol@example.org",
                "event": "bounce",
                "type": "blocked",
                "reason": "IP listed",
                "sg_event_id": "e3",
            },
            {
                "email": "dan@example.org",
                "event": "dropped",
                "reason": "Unsubscribed Address",
                "sg_event_id": "e4",
            },
            {"email": "erin@example.org", "event": "group_unsubscribe", "sg_event_id": "e5"},
            {"email": ANN, "event": "delivered", METADATA_KEY: str(ids[ANN]), "sg_event_id": "e6"},
        ]
    ).encode()


def test_sendgrid_signed_events_are_applied(client, store, ids, sendgrid_key):
    body = sendgrid_batch(ids)
    reply = client.post(
        "/webhooks/sendgrid", data=body, headers=signed(sendgrid_key, body, "1700000002")
    )
    assert reply.status_code == 200
    assert status(store, ANN) == "bounced"
    assert status(store, BOB) == "complained"  # mapped by sg_message_id + address
    assert status(store, "carol@example.org") is None  # "blocked" is not the address's fault
    assert status(store, "dan@example.org") == "unsubscribed"
    assert status(store, "erin@example.org") == "unsubscribed"
    assert events(store) == [
        (ids[ANN], ANN, "bounce"),
        (ids[BOB], BOB, "complaint"),
        (None, "dan@example.org", "unsubscribe"),
        (None, "erin@example.org", "unsubscribe"),
        (ids[ANN], ANN, "delivered"),
    ]


def test_sendgrid_wrong_or_missing_signature_is_403(client, store, ids, sendgrid_key):
    body = sendgrid_batch(ids)
    other = ec.generate_private_key(ec.SECP256R1())
    assert (
        client.post(
            "/webhooks/sendgrid", data=body, headers=signed(other, body, "1700000002")
        ).status_code
        == 403
    )
    tampered = body.replace(b"spamreport", b"delivered")
    assert (
        client.post(
            "/webhooks/sendgrid", data=tampered, headers=signed(sendgrid_key, body, "1700000002")
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/webhooks/sendgrid",
            data=body,
            headers=signed(sendgrid_key, body, "1700000003") | {SENDGRID_TIMESTAMP: "1700000002"},
        ).status_code
        == 403
    )
    assert (
        client.post("/webhooks/sendgrid", data=body, content_type="application/json").status_code
        == 403
    )
    assert status(store, ANN) == status(store, BOB) == "subscribed"
    assert events(store) == []


def test_sendgrid_malformed_key_disables_the_route(client, monkeypatch, sendgrid_key):
    monkeypatch.setenv(ENV_SENDGRID_KEY, "not a key")
    body = b"[]"
    reply = client.post("/webhooks/sendgrid", data=body, headers=signed(sendgrid_key, body, "1"))
    assert reply.status_code == 404


def test_sendgrid_accepts_a_large_batch(client, store, sendgrid_key):
    items = [
        {
            "email": f"user{i}@example.org",
            "event": "bounce",
            "type": "bounce",
            "reason": "550 unknown user " + "x" * 200,
        }
        for i in range(1500)
    ]
    body = json.dumps(items).encode()
    assert len(body) > 300_000
    reply = client.post("/webhooks/sendgrid", data=body, headers=signed(sendgrid_key, body, "5"))
    assert reply.status_code == 200
    assert status(store, "user1499@example.org") == "bounced"


# -- Mailgun ----------------------------------------------------------------------------------


def mailgun_post(
    event: dict, *, key: str = MAILGUN_SIGNING_KEY, age: float = 0, token: str = "tok-1"
) -> dict:
    timestamp = str(int(time.time() - age))
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    }


def mailgun_failed(delivery: int, severity: str = "permanent") -> dict:
    return {
        "event": "failed",
        "severity": severity,
        "reason": "bounce",
        "recipient": ANN,
        "delivery-status": {
            "code": 550,
            "description": "No such mailbox",
            "message": "550 5.1.1 unknown",
        },
        "message": {"headers": {"message-id": "20240101.1@mg.example.org"}},
        "user-variables": {METADATA_KEY: str(delivery)},
    }


def test_mailgun_permanent_failure_bounces(client, store, ids, monkeypatch):
    monkeypatch.setenv(ENV_MAILGUN_KEY, MAILGUN_SIGNING_KEY)
    reply = client.post("/webhooks/mailgun", json=mailgun_post(mailgun_failed(ids[ANN])))
    assert reply.status_code == 200
    assert status(store, ANN) == "bounced"
    assert events(store) == [(ids[ANN], ANN, "bounce")]
    complaint = {"event": "complained", "recipient": BOB, "user-variables": {}}
    assert (
        client.post("/webhooks/mailgun", json=mailgun_post(complaint, token="tok-2")).status_code
        == 200
    )
    assert status(store, BOB) == "complained"


def test_mailgun_temporary_failure_changes_nothing(client, store, ids, monkeypatch):
    monkeypatch.setenv(ENV_MAILGUN_KEY, MAILGUN_SIGNING_KEY)
    post = mailgun_post(mailgun_failed(ids[ANN], severity="temporary"))
    assert client.post("/webhooks/mailgun", json=post).status_code == 200
    assert status(store, ANN) == "subscribed" and events(store) == []


def test_mailgun_bad_stale_or_replayed_signatures_are_403(client, store, ids, monkeypatch):
    monkeypatch.setenv(ENV_MAILGUN_KEY, MAILGUN_SIGNING_KEY)
    event = mailgun_failed(ids[ANN])
    assert (
        client.post("/webhooks/mailgun", json=mailgun_post(event, key="wrong")).status_code == 403
    )
    assert (
        client.post(
            "/webhooks/mailgun", json=mailgun_post(event, age=3600, token="old")
        ).status_code
        == 403
    )
    assert client.post("/webhooks/mailgun", json={"event-data": event}).status_code == 403
    assert status(store, ANN) == "subscribed" and events(store) == []
    fresh = mailgun_post(event, token="once")
    assert client.post("/webhooks/mailgun", json=fresh).status_code == 200
    assert client.post("/webhooks/mailgun", json=fresh).status_code == 403  # replay


# -- the real tracking app --------------------------------------------------------------------


def test_tracking_app_serves_the_webhooks(tmp_path, monkeypatch):
    from cohesion_mail.tracking.app import create_app

    monkeypatch.setenv(ENV_WEBHOOK_SECRET, SECRET)
    state = tmp_path / "state.db"
    app = create_app(state, Settings(root=tmp_path, base_url="https://news.example.org"))
    reply = app.test_client().post(f"/webhooks/postmark/{SECRET}", json=postmark_bounce())
    assert reply.status_code == 200
    with Store(state) as store:
        assert status(store, ANN) == "bounced"
        assert events(store) == [(None, ANN, "bounce")]
