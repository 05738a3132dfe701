"""SendGrid: ``sendgrid://API_KEY@default``.

Sends through ``POST /v3/mail/send`` (``Authorization: Bearer``). One request carries one body
and up to 1,000 *personalizations*; each personalization is one recipient with their own
``to``, ``subject``, ``headers`` (List-Unsubscribe, List-Unsubscribe-Post, List-Id,
Feedback-ID, Message-ID) and ``substitutions``, so the shared body gets each recipient's own
signed links and merge values (see ``transports.http.share_bodies``; recipients whose body
cannot be shared exactly go in requests of their own).

* SendGrid's click, open and subscription tracking are turned off in ``tracking_settings``
  because cohesion-mail tracks opens and clicks itself and writes its own List-Unsubscribe;
  SendGrid's would rewrite our signed links and add a second unsubscribe footer.
* Our delivery id goes along as ``custom_args`` so Event Webhook posts map back to the ledger.
* A request is accepted (202, ``X-Message-Id``) or refused as a whole. A 400 whose errors
  name ``personalizations.N`` rejects those recipients; the others are sent again without
  them. Any other 400 stops the run with SendGrid's words.
* Substitutions are limited to 10,000 bytes per personalization; a recipient over it is sent
  alone, with their own literal body.

Options: ``base_url``, ``timeout``, ``retries``, ``backoff``, ``max_wait``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import requests

from ..message import OutgoingMessage
from .base import Status
from .http import (
    METADATA_KEY,
    ApiCall,
    HttpTransport,
    Outcome,
    SharedBody,
    ascii_address,
    extra_headers,
    result,
    share_bodies,
)

MAX_PERSONALIZATIONS = 1000
MAX_SUBSTITUTION_BYTES = 10_000
# SendGrid refuses these in ``headers`` (they are fields of the request, or its own).
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "content-type",
        "content-transfer-encoding",
        "to",
        "from",
        "subject",
        "reply-to",
        "cc",
        "bcc",
    }
)
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)")


def tag(key: str) -> str:
    """A substitution tag in the shared body."""
    return f"%{key}%"


def _address(name: str, email: str) -> dict[str, str]:
    out = {"email": ascii_address(email)}
    if name:
        out["name"] = name
    return out


class SendGridTransport(HttpTransport):
    scheme = "sendgrid"
    provider = "SendGrid"
    default_base_url = "https://api.sendgrid.com"
    max_batch = MAX_PERSONALIZATIONS

    def _request_kwargs(self, call: ApiCall) -> dict[str, Any]:
        kwargs = super()._request_kwargs(call)
        kwargs["headers"] = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        return kwargs

    def payload(self, body: SharedBody) -> dict[str, Any]:
        """The JSON of one request for ``body``'s messages."""
        first = body.messages[0]
        personalizations = []
        for msg, values in zip(body.messages, body.values, strict=True):
            one: dict[str, Any] = {
                "to": [_address(msg.to_name, msg.to_email)],
                "subject": msg.subject,
                "custom_args": {METADATA_KEY: str(msg.delivery_id)},
            }
            headers = {
                k: v for k, v in extra_headers(msg).items() if k.lower() not in RESERVED_HEADERS
            }
            if headers:
                one["headers"] = headers
            if values:
                one["substitutions"] = {tag(k): v for k, v in values.items()}
            personalizations.append(one)
        data: dict[str, Any] = {
            "personalizations": personalizations,
            "from": _address(first.from_name, first.from_address),
            "content": [],
            "tracking_settings": {
                "click_tracking": {"enable": False, "enable_text": False},
                "open_tracking": {"enable": False},
                "subscription_tracking": {"enable": False},
                "ganalytics": {"enable": False},
            },
        }
        if first.reply_to:
            data["reply_to"] = {"email": ascii_address(first.reply_to)}
        # SendGrid wants text/plain before text/html.
        if body.text:
            data["content"].append({"type": "text/plain", "value": body.text})
        if body.html:
            data["content"].append({"type": "text/html", "value": body.html})
        return data

    def _calls(self, messages: list[OutgoingMessage]) -> Iterable[ApiCall]:
        bodies = share_bodies(
            messages,
            tag,
            compatible=lambda m: (m.from_name, m.from_address, m.reply_to),
            max_values_bytes=MAX_SUBSTITUTION_BYTES,
        )
        for body in bodies:
            for start in range(0, len(body.messages), MAX_PERSONALIZATIONS):
                part = SharedBody(
                    body.messages[start : start + MAX_PERSONALIZATIONS],
                    body.html,
                    body.text,
                    body.values[start : start + MAX_PERSONALIZATIONS],
                )
                yield self._call(part)

    def _call(self, body: SharedBody) -> ApiCall:
        return ApiCall(body.messages, "/v3/mail/send", json=self.payload(body), context=body)

    def _parse(self, call: ApiCall, response: requests.Response) -> Outcome:
        if response.status_code in (200, 202):
            message_id = response.headers.get("X-Message-Id", "")
            return [result(m, Status.SENT, message_id) for m in call.messages], []
        body: SharedBody = call.context
        blamed: dict[int, str] = {}
        other: list[str] = []
        try:
            errors = response.json().get("errors", [])
        except (ValueError, AttributeError):
            errors = []
        for error in errors if isinstance(errors, list) else []:
            if not isinstance(error, dict):
                continue
            words = self.redact(str(error.get("message", "")))
            match = _PERSONALIZATION.match(str(error.get("field") or ""))
            if match and int(match.group(1)) < len(call.messages):
                blamed.setdefault(int(match.group(1)), words)
            else:
                other.append(words)
        everyone_alike = (
            len(call.messages) > 1
            and len(blamed) == len(call.messages)
            and len(set(blamed.values())) == 1
        )
        if not blamed or other or everyone_alike:
            # Nobody in particular, or everybody for the same reason (say, a header SendGrid
            # will not take): a problem with what we send, not with these recipients.
            raise self._request_error(response, f"a request for {len(call.messages)} recipient(s)")
        out = [
            result(msg, Status.REJECTED, detail=f"SendGrid: {blamed[i]}")
            for i, msg in enumerate(call.messages)
            if i in blamed
        ]
        keep = [i for i in range(len(call.messages)) if i not in blamed]
        more = []
        if keep:
            rest = SharedBody(
                [body.messages[i] for i in keep],
                body.html,
                body.text,
                [body.values[i] for i in keep],
            )
            more.append(self._call(rest))
        return out, more
