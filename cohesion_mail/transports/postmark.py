"""Postmark: ``postmark://SERVER_TOKEN@default[?message_stream=broadcast]``.

Sends through the batch endpoint ``POST /email/batch`` (up to 500 messages, 50 MB per call),
authenticated with the ``X-Postmark-Server-Token`` header. Each message is complete (its own
personalised HTML, text and headers), so nothing depends on provider-side substitution.

* Newsletters belong on a *broadcast* message stream (Postmark keeps bulk and transactional
  reputations apart); ``message_stream=`` in the DSN picks another.
* Postmark's own open and link tracking are turned off (``TrackOpens: false``,
  ``TrackLinks: "None"``) because cohesion-mail tracks opens and clicks itself; both at once
  would rewrite our signed links and count every open twice.
* Our delivery id goes along as ``Metadata`` so bounce and complaint webhooks map back to the
  ledger row; our ``Message-ID`` goes in ``Headers``.
* The batch answer is a 200 with one entry per message, in order: ``ErrorCode`` 0 is accepted
  (``MessageID`` is Postmark's id), 406 is an inactive (bounced/complained) recipient, 300 an
  invalid one; an error every message shares (unverified sender, pending account) stops the run.

Options: ``message_stream``, plus ``base_url``, ``timeout``, ``retries``, ``backoff``,
``max_wait`` (see ``transports.http``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, ClassVar

import requests

from ..errors import TransportError
from ..message import OutgoingMessage
from .base import Status
from .dsn import Dsn
from .http import (
    METADATA_KEY,
    ApiCall,
    HttpTransport,
    Outcome,
    extra_headers,
    format_address,
    result,
)

MAX_MESSAGES = 500
MAX_BYTES = 45 * 1024 * 1024  # Postmark allows 50 MB per batch call; keep a margin.

# Per-message codes (https://postmarkapp.com/developer/api/overview#error-codes).
INACTIVE_RECIPIENT = 406
INVALID_REQUEST = 300
RATE_LIMITED = 429
MAINTENANCE = 100
_RECIPIENT_FIELD = re.compile(r"'(To|Cc|Bcc)'|recipient", re.IGNORECASE)


class PostmarkTransport(HttpTransport):
    scheme = "postmark"
    provider = "Postmark"
    default_base_url = "https://api.postmarkapp.com"
    max_batch = MAX_MESSAGES
    options: ClassVar[frozenset[str]] = frozenset({"message_stream"})

    def __init__(self, key: str, *, message_stream: str = "broadcast", **kwargs: Any) -> None:
        super().__init__(key, **kwargs)
        self.message_stream = message_stream or "broadcast"

    @classmethod
    def _dsn_kwargs(cls, dsn: Dsn) -> dict[str, Any]:
        if "message_stream" in dsn.params:
            return {"message_stream": dsn.params["message_stream"]}
        return {}

    def describe(self) -> str:
        return f"{super().describe()}, stream {self.message_stream}"

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        """One message of the batch, exactly as Postmark receives it."""
        data: dict[str, Any] = {
            "From": format_address(msg.from_name, msg.from_address),
            "To": format_address(msg.to_name, msg.to_email),
            "Subject": msg.subject,
            "MessageStream": self.message_stream,
            "TrackOpens": False,
            "TrackLinks": "None",
            "Metadata": {METADATA_KEY: str(msg.delivery_id)},
        }
        if msg.html:
            data["HtmlBody"] = msg.html
        if msg.text:
            data["TextBody"] = msg.text
        if msg.reply_to:
            data["ReplyTo"] = msg.reply_to
        headers = extra_headers(msg)
        if headers:
            data["Headers"] = [{"Name": k, "Value": v} for k, v in headers.items()]
        return data

    def _request_kwargs(self, call: ApiCall) -> dict[str, Any]:
        kwargs = super()._request_kwargs(call)
        kwargs["headers"] = {
            **kwargs.get("headers", {}),
            "X-Postmark-Server-Token": self.key,
            "Accept": "application/json",
        }
        return kwargs

    def _calls(self, messages: list[OutgoingMessage]) -> Iterable[ApiCall]:
        # Each message is serialised once: to measure the batch and to send it.
        batch: list[OutgoingMessage] = []
        pieces: list[bytes] = []
        size = 2
        for msg in messages:
            piece = json.dumps(self.payload(msg)).encode()
            if batch and (len(batch) >= MAX_MESSAGES or size + len(piece) + 1 > MAX_BYTES):
                yield self._call(batch, pieces)
                batch, pieces, size = [], [], 2
            batch.append(msg)
            pieces.append(piece)
            size += len(piece) + 1
        if batch:
            yield self._call(batch, pieces)

    @staticmethod
    def _call(batch: list[OutgoingMessage], pieces: list[bytes]) -> ApiCall:
        return ApiCall(batch, "/email/batch", data=b"[" + b",".join(pieces) + b"]")

    def _parse(self, call: ApiCall, response: requests.Response) -> Outcome:
        if response.status_code != 200:
            raise self._request_error(response, f"a batch of {len(call.messages)}")
        try:
            answers = response.json()
        except ValueError:
            answers = None
        if not isinstance(answers, list) or len(answers) != len(call.messages):
            raise self._request_error(response, "the batch (unexpected answer)")
        codes = {int(a.get("ErrorCode", 0) or 0) for a in answers if isinstance(a, dict)}
        if len(codes) == 1 and not codes & {0, INACTIVE_RECIPIENT, RATE_LIMITED, MAINTENANCE}:
            first = answers[0]
            if not _RECIPIENT_FIELD.search(str(first.get("Message", ""))):
                # Every message failed the same way, and not for a recipient: a sender or
                # account problem. Stop rather than mark the whole list rejected.
                raise TransportError(
                    f"Postmark refused every message of the batch (ErrorCode {codes.pop()}): "
                    f"{self.redact(str(first.get('Message', '')))}",
                    hint="fix the sender signature or account named above, then run the same "
                    "send again to resume",
                )
        out = []
        for msg, answer in zip(call.messages, answers, strict=True):
            code = int(answer.get("ErrorCode", 0) or 0)
            words = self.redact(str(answer.get("Message", "")))
            if code == 0:
                out.append(result(msg, Status.SENT, str(answer.get("MessageID", "")), words))
            elif code in (RATE_LIMITED, MAINTENANCE):
                out.append(result(msg, Status.DEFERRED, detail=f"Postmark {code}: {words}"))
            else:
                out.append(result(msg, Status.REJECTED, detail=f"Postmark {code}: {words}"))
        return out, []
