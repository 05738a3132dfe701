"""Optional live checks against the real provider APIs. Skipped unless credentials are set.

These are the only tests that leave 127.0.0.1, and they run only when asked to:

    COHESION_MAIL_LIVE_POSTMARK='postmark://SERVER_TOKEN@default?message_stream=outbound'
    COHESION_MAIL_LIVE_SENDGRID='sendgrid://API_KEY@default'
    COHESION_MAIL_LIVE_MAILGUN='mailgun://API_KEY@mg.example.org?region=eu'
    COHESION_MAIL_LIVE_FROM='news@your-verified-domain.example'   # a verified sender
    COHESION_MAIL_LIVE_TO='you@example.org'                        # where the two test mails go
    pytest tests/test_live_providers.py

Each provider gets one real message (to COHESION_MAIL_LIVE_TO) and one request with a wrong
key, which must stop with ``AuthenticationError``. Postmark's documented test token
``POSTMARK_API_TEST`` accepts a message without delivering it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import pytest

from cohesion_mail.errors import AuthenticationError
from cohesion_mail.message import OutgoingMessage
from cohesion_mail.transports.base import Status
from cohesion_mail.transports.dsn import parse_dsn
from cohesion_mail.transports.mailgun import MailgunTransport
from cohesion_mail.transports.postmark import PostmarkTransport
from cohesion_mail.transports.sendgrid import SendGridTransport

LIVE = {
    "postmark": (PostmarkTransport, "COHESION_MAIL_LIVE_POSTMARK"),
    "sendgrid": (SendGridTransport, "COHESION_MAIL_LIVE_SENDGRID"),
    "mailgun": (MailgunTransport, "COHESION_MAIL_LIVE_MAILGUN"),
}


def live_dsn(provider: str) -> str:
    dsn = os.environ.get(LIVE[provider][1], "")
    if not dsn or not os.environ.get("COHESION_MAIL_LIVE_TO"):
        pytest.skip(f"set {LIVE[provider][1]} and COHESION_MAIL_LIVE_TO to run live tests")
    return dsn


@pytest.fixture
def live_message(message_factory: Callable[..., OutgoingMessage]) -> OutgoingMessage:
    """One message of the sample issue to COHESION_MAIL_LIVE_TO, from COHESION_MAIL_LIVE_FROM."""
    to = os.environ.get("COHESION_MAIL_LIVE_TO", "nobody@example.org")
    msg = message_factory(1, to, "Live Test")
    sender = os.environ.get("COHESION_MAIL_LIVE_FROM")
    return replace(msg, from_address=sender) if sender else msg


@pytest.mark.parametrize("provider", list(LIVE))
def test_live_send_one_message(provider: str, live_message: OutgoingMessage) -> None:
    transport = LIVE[provider][0].from_dsn(live_dsn(provider))
    with transport:
        [result] = transport.send([live_message])
    assert result.status is Status.SENT, result.detail
    assert result.provider_message_id


@pytest.mark.parametrize("provider", list(LIVE))
def test_live_wrong_key_is_refused(provider: str, live_message: OutgoingMessage) -> None:
    parsed = parse_dsn(live_dsn(provider))
    wrong = replace(parsed, user="wrong-key-for-a-test", password="")
    transport = LIVE[provider][0].from_dsn(wrong)
    with transport, pytest.raises(AuthenticationError) as err:
        transport.send([live_message])
    assert "wrong-key-for-a-test" not in str(err.value)
