"""Provider webhooks: bounces, spam complaints and unsubscribes reported by the mail API.

``register(app, store, settings)`` adds three routes to the tracking service:

``POST /webhooks/postmark/<secret>``
    Postmark does not sign its webhooks, so the URL carries a shared secret
    (``COHESION_MAIL_WEBHOOK_SECRET``); HTTP basic auth with that secret as the password is
    accepted too (``https://hooks:SECRET@news.example.org/webhooks/postmark``).
``POST /webhooks/sendgrid``
    SendGrid's *signed* Event Webhook: an ECDSA P-256/SHA-256 signature over the
    ``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body, checked with
    the verification key from ``COHESION_MAIL_SENDGRID_WEBHOOK_KEY`` (base64 DER, as SendGrid's
    settings page shows it).
``POST /webhooks/mailgun``
    Mailgun's JSON webhooks: HMAC-SHA256 of ``timestamp + token`` with the webhook signing key
    from ``COHESION_MAIL_MAILGUN_SIGNING_KEY``; stale timestamps and reused tokens are refused.

A route whose secret is not configured answers 404 (it is disabled) and logs why; a wrong
secret or signature answers 403 and changes nothing. A hard bounce marks the subscriber
``bounced``, a complaint ``complained``, a provider unsubscribe ``unsubscribed`` (all three
suppress the address for every later send; an unknown address is added with that status), and
each becomes an event linked to the delivery when the provider echoes the delivery id we sent
as metadata, our Message-ID or its own message id. Soft bounces are ignored: the provider keeps
retrying those, and they say nothing permanent about the address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Flask, Response, request

from ..store.csvio import normalise_address
from ..store.db import Store, now
from ..transports.http import METADATA_KEY

log = logging.getLogger(__name__)

ENV_WEBHOOK_SECRET = "COHESION_MAIL_WEBHOOK_SECRET"
ENV_SENDGRID_KEY = "COHESION_MAIL_SENDGRID_WEBHOOK_KEY"
ENV_MAILGUN_KEY = "COHESION_MAIL_MAILGUN_SIGNING_KEY"
MAILGUN_MAX_AGE = 15 * 60  # seconds a Mailgun signature stays acceptable (replay window)
# SendGrid posts up to 768 KB of events at once; the service's own pages allow far less.
MAX_PAYLOAD = 4 * 1024 * 1024
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

# A later, stronger status may replace an earlier one; never back to subscribed.
_RANK = {"subscribed": 0, "unsubscribed": 1, "bounced": 2, "complained": 3}


@dataclass(frozen=True)
class ProviderEvent:
    """One normalised notification: what happened to which address, and how to find the row."""

    kind: str  # events.kind: bounce, complaint, unsubscribe, delivered
    email: str
    status: str | None  # subscriber status to set, or None (delivered)
    detail: str = ""
    delivery_id: int | None = None
    provider_message_id: str = ""
    message_id: str = ""


BOUNCE = ("bounce", "bounced")
COMPLAINT = ("complaint", "complained")
UNSUBSCRIBE = ("unsubscribe", "unsubscribed")
DELIVERED = ("delivered", None)


def _delivery_id(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _event(what: tuple[str, str | None], email: Any, detail: str, **ids: Any) -> ProviderEvent:
    return ProviderEvent(what[0], str(email or "").strip(), what[1], detail[:500], **ids)


# -- parsing each provider's payload ----------------------------------------------------------


def postmark_events(payload: Any) -> list[ProviderEvent]:
    """Postmark posts one JSON object per event (``RecordType`` says which)."""
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    record = payload.get("RecordType")
    metadata = payload.get("Metadata") or {}
    ids = {
        "delivery_id": _delivery_id(metadata.get(METADATA_KEY))
        if isinstance(metadata, dict)
        else None,
        "provider_message_id": str(payload.get("MessageID") or ""),
    }
    email = payload.get("Email") or payload.get("Recipient")
    description = str(payload.get("Description") or payload.get("Details") or "")
    what: tuple[str, str | None] | None = None
    if record == "Bounce":
        what = {
            "HardBounce": BOUNCE,
            "BadEmailAddress": BOUNCE,
            "SpamNotification": COMPLAINT,
            "SpamComplaint": COMPLAINT,
        }.get(str(payload.get("Type")))
        description = f"Postmark {payload.get('Type')}: {description}"
    elif record == "SpamComplaint":
        what, description = COMPLAINT, f"Postmark spam complaint: {description}"
    elif record == "SubscriptionChange" and payload.get("SuppressSending"):
        reason = str(payload.get("SuppressionReason") or "")
        what = {"HardBounce": BOUNCE, "SpamComplaint": COMPLAINT}.get(reason, UNSUBSCRIBE)
        description = f"Postmark suppression: {reason}"
    elif record == "Delivery":
        what, description = DELIVERED, f"Postmark: {payload.get('Details') or 'delivered'}"
    return [_event(what, email, description, **ids)] if what and email else []


def sendgrid_events(payload: Any) -> list[ProviderEvent]:
    """SendGrid posts a JSON array of events; our ``custom_args`` appear as top-level keys."""
    if not isinstance(payload, list):
        raise ValueError("expected a JSON array")
    out = []
    dropped = {
        "Bounced Address": BOUNCE,
        "Invalid": BOUNCE,
        "Spam Reporting Address": COMPLAINT,
        "Unsubscribed Address": UNSUBSCRIBE,
    }
    for item in payload:
        if not isinstance(item, dict):
            continue
        kind = item.get("event")
        reason = str(item.get("reason") or item.get("response") or "")
        what: tuple[str, str | None] | None = None
        if kind == "bounce" and item.get("type", "bounce") == "bounce":
            what = BOUNCE  # "blocked" is the receiving server refusing for now, not the address
        elif kind == "dropped":
            what = dropped.get(reason)
        elif kind == "spamreport":
            what = COMPLAINT
        elif kind in ("unsubscribe", "group_unsubscribe"):
            what = UNSUBSCRIBE
        elif kind == "delivered":
            what = DELIVERED
        if what and item.get("email"):
            out.append(
                _event(
                    what,
                    item["email"],
                    f"SendGrid {kind}: {reason}".rstrip(": "),
                    delivery_id=_delivery_id(item.get(METADATA_KEY)),
                    # sg_message_id is the request's X-Message-Id plus ".filter…"
                    provider_message_id=str(item.get("sg_message_id") or "").split(".")[0],
                )
            )
    return out


def mailgun_events(payload: Any) -> list[ProviderEvent]:
    """Mailgun posts ``{"signature": {…}, "event-data": {…}}``, one event per request."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event-data"), dict):
        raise ValueError("expected a JSON object with event-data")
    data = payload["event-data"]
    kind = data.get("event")
    what: tuple[str, str | None] | None = None
    status = _mapping(data.get("delivery-status"))
    detail = str(status.get("description") or status.get("message") or data.get("reason") or "")
    if kind == "failed" and data.get("severity") == "permanent":
        what = {
            "suppress-complaint": COMPLAINT,
            "suppress-unsubscribe": UNSUBSCRIBE,
            "old": None,  # gave up after retrying: says nothing permanent about the address
        }.get(str(data.get("reason")), BOUNCE)
    elif kind == "complained":
        what = COMPLAINT
    elif kind == "unsubscribed":
        what = UNSUBSCRIBE
    elif kind == "delivered":
        what = DELIVERED
    variables = _mapping(data.get("user-variables"))
    headers = _mapping(_mapping(data.get("message")).get("headers"))
    message_id = str(headers.get("message-id") or "").strip("<>")
    if not (what and data.get("recipient")):
        return []
    return [
        _event(
            what,
            data["recipient"],
            f"Mailgun {kind}: {detail}".rstrip(": "),
            delivery_id=_delivery_id(variables.get(METADATA_KEY)),
            provider_message_id=message_id,
            message_id=message_id,
        )
    ]


# -- signatures ------------------------------------------------------------------------------


def verify_sendgrid(public_key: str, body: bytes, signature: str, timestamp: str) -> bool:
    """SendGrid's ECDSA signature over ``timestamp + body``. A malformed key raises ValueError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    text = public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError(f"{ENV_SENDGRID_KEY} is not a base64 DER or PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"{ENV_SENDGRID_KEY} is not an elliptic-curve (ECDSA) key")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode("utf-8") + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    """The hex HMAC-SHA256 Mailgun puts in ``signature.signature``."""
    return hmac.new(key.encode("utf-8"), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


class _SeenTokens:
    """Mailgun tokens seen within the replay window (a replayed post is refused)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, token: str, clock: float) -> bool:
        with self._lock:
            for old in [t for t, at in self._seen.items() if at < clock - MAILGUN_MAX_AGE]:
                del self._seen[old]
            if token in self._seen:
                return False
            self._seen[token] = clock
            return True


# -- the store -------------------------------------------------------------------------------


def _find_delivery(conn: Any, event: ProviderEvent) -> Any:
    """The ledger row this event is about, or None: our id, then the provider's, then ours."""
    email = event.email.lower()
    if event.delivery_id:
        row = conn.execute(
            "SELECT id, campaign_id, email FROM deliveries WHERE id = ?", (event.delivery_id,)
        ).fetchone()
        if row and (not email or row["email"].lower() == email):
            return row
    for column, value in (
        ("provider_message_id", event.provider_message_id),
        ("message_id", event.message_id),
    ):
        if value and email:
            row = conn.execute(
                f"SELECT id, campaign_id, email FROM deliveries WHERE {column} IN (?, ?) "
                "AND email = ? ORDER BY id DESC LIMIT 1",
                (value, f"<{value.strip('<>')}>", email),
            ).fetchone()
            if row:
                return row
    return None


def _normalised(address: str) -> str:
    """The address as the subscribers table keys it (see ``store.csvio``)."""
    try:
        return normalise_address(address.strip())[0].lower()
    except ValueError:  # EmailNotValidError: keep the provider's spelling
        return address.strip().lower()


def apply_events(store: Store, events: list[ProviderEvent]) -> int:
    """Record ``events`` and suppress addresses as they say, in one transaction.

    All or nothing: if anything fails the provider gets an error and posts the batch again.
    Returns how many events were new (a retried post records nothing twice).
    """
    with store.atomic() as conn:
        return sum(_apply(conn, event) for event in events)


def _apply(conn: Any, event: ProviderEvent) -> bool:
    row = _find_delivery(conn, event)
    email = _normalised(row["email"] if row else event.email)
    campaign_id, delivery_id = (row["campaign_id"], row["id"]) if row else (None, None)
    if delivery_id is not None:
        seen = conn.execute(
            "SELECT 1 FROM events WHERE delivery_id = ? AND kind = ?", (delivery_id, event.kind)
        ).fetchone()
    else:
        seen = conn.execute(
            "SELECT 1 FROM events WHERE delivery_id IS NULL AND email = ? AND kind = ? "
            "AND detail = ?",
            (email, event.kind, event.detail),
        ).fetchone()
    stamp = now()
    if not seen:
        conn.execute(
            "INSERT INTO events (campaign_id, delivery_id, email, kind, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (campaign_id, delivery_id, email, event.kind, event.detail, stamp),
        )
    if event.status:
        current = conn.execute(
            "SELECT id, status FROM subscribers WHERE email = ?", (email,)
        ).fetchone()
        if current is None:
            conn.execute(
                "INSERT INTO subscribers (email, status, status_reason, status_changed_at, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (email, event.status, event.detail, stamp, stamp, stamp),
            )
        elif _RANK[event.status] > _RANK.get(current["status"], 0):
            conn.execute(
                "UPDATE subscribers SET status = ?, status_reason = ?, status_changed_at = ?, "
                "updated_at = ? WHERE id = ?",
                (event.status, event.detail, stamp, stamp, current["id"]),
            )
    return not seen


# -- routes ----------------------------------------------------------------------------------


def _disabled(route: str, variable: str) -> Response:
    log.warning("%s is disabled: set %s to enable it", route, variable)
    return Response("not found\n", status=404, mimetype="text/plain")


def _forbidden(route: str, why: str) -> Response:
    log.warning("%s: refused a post from %s: %s", route, request.remote_addr, why)
    return Response("forbidden\n", status=403, mimetype="text/plain")


def _record(
    store: Store, route: str, parse: Callable[[Any], list[ProviderEvent]], payload: Any
) -> Response:
    try:
        events = parse(payload)
    except ValueError as exc:
        log.warning("%s: unreadable payload: %s", route, exc)
        return Response(f"bad payload: {exc}\n", status=400, mimetype="text/plain")
    recorded = apply_events(store, events)
    log.info("%s: %d event(s), %d new", route, len(events), recorded)
    return Response("ok\n", status=200, mimetype="text/plain")


def _json_body() -> Any:
    request.max_content_length = MAX_PAYLOAD
    try:
        return json.loads(request.get_data() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


def register(app: Flask, store: Store, settings: Any) -> None:
    """Add the provider webhook routes to the Flask ``app``.

    Secrets are read from the environment on each request, so rotating one needs no restart.
    """
    hooks = Blueprint("provider_webhooks", __name__)
    tokens = _SeenTokens()

    def postmark(secret: str | None = None) -> Response:
        route = "/webhooks/postmark"
        expected = os.environ.get(ENV_WEBHOOK_SECRET, "")
        if not expected:
            return _disabled(route, ENV_WEBHOOK_SECRET)
        given = secret
        if given is None and request.authorization:
            given = request.authorization.password
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            return _forbidden(route, "wrong or missing shared secret")
        payload = _json_body()
        return _record(store, route, postmark_events, payload)

    def sendgrid() -> Response:
        route = "/webhooks/sendgrid"
        key = os.environ.get(ENV_SENDGRID_KEY, "")
        if not key:
            return _disabled(route, ENV_SENDGRID_KEY)
        request.max_content_length = MAX_PAYLOAD
        body = request.get_data()
        signature = request.headers.get(SENDGRID_SIGNATURE, "")
        timestamp = request.headers.get(SENDGRID_TIMESTAMP, "")
        if not signature or not timestamp:
            return _forbidden(route, "no signature headers")
        try:
            good = verify_sendgrid(key, body, signature, timestamp)
        except ValueError as exc:
            log.error("%s is disabled: %s", route, exc)
            return Response("not found\n", status=404, mimetype="text/plain")
        if not good:
            return _forbidden(route, "signature does not match")
        return _record(store, route, sendgrid_events, _json_body())

    def mailgun() -> Response:
        route = "/webhooks/mailgun"
        key = os.environ.get(ENV_MAILGUN_KEY, "")
        if not key:
            return _disabled(route, ENV_MAILGUN_KEY)
        payload = _json_body()
        block = payload.get("signature") if isinstance(payload, dict) else None
        if not isinstance(block, dict):
            return _forbidden(route, "no signature block")
        timestamp, token = str(block.get("timestamp", "")), str(block.get("token", ""))
        expected = mailgun_signature(key, timestamp, token)
        if not hmac.compare_digest(str(block.get("signature", "")).encode(), expected.encode()):
            return _forbidden(route, "signature does not match")
        clock = time.time()
        try:
            age = abs(clock - float(timestamp))
        except ValueError:
            return _forbidden(route, "timestamp is not a number")
        if age > MAILGUN_MAX_AGE:
            return _forbidden(route, f"stale timestamp ({age:.0f}s old)")
        if not tokens.first_use(token, clock):
            return _forbidden(route, "token already used (replay)")
        return _record(store, route, mailgun_events, payload)

    hooks.add_url_rule("/webhooks/postmark/<secret>", "postmark_secret", postmark, methods=["POST"])
    hooks.add_url_rule("/webhooks/postmark", "postmark", postmark, methods=["POST"])
    hooks.add_url_rule("/webhooks/sendgrid", "sendgrid", sendgrid, methods=["POST"])
    hooks.add_url_rule("/webhooks/mailgun", "mailgun", mailgun, methods=["POST"])
    app.register_blueprint(hooks)
    for variable, route in (
        (ENV_WEBHOOK_SECRET, "/webhooks/postmark"),
        (ENV_SENDGRID_KEY, "/webhooks/sendgrid"),
        (ENV_MAILGUN_KEY, "/webhooks/mailgun"),
    ):
        if not os.environ.get(variable):
            log.info("%s answers 404 until %s is set", route, variable)
