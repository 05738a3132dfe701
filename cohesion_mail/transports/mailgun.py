"""Mailgun: ``mailgun://API_KEY@DOMAIN[?region=eu|us]``.

Sends through ``POST /v3/<domain>/messages`` (HTTP basic auth ``api:KEY``) with *batch
sending*: one form with up to 1,000 ``to`` fields, one shared ``html``/``text`` holding
``%recipient.KEY%`` tags, and ``recipient-variables``, a JSON object giving each address its
values, so every recipient gets their own signed links and merge values (see
``transports.http.share_bodies``). Per-recipient headers (List-Unsubscribe, Feedback-ID,
Message-Id …) use the same indirection: ``h:List-Unsubscribe=%recipient.h:List-Unsubscribe%``;
our delivery id travels as ``v:cohesion_delivery`` so webhooks map back to the ledger.
Mailgun documents that batch sending *without* recipient variables shows every address to
every recipient, so a group of more than one always carries them.

* Mailgun's own tracking is off (``o:tracking``, ``o:tracking-clicks``, ``o:tracking-opens``
  = ``no``) because cohesion-mail tracks opens and clicks itself; Mailgun's would rewrite our
  signed links.
* ``region=eu`` sends to ``api.eu.mailgun.net`` (an EU domain does not exist on the US API).
* A batch is accepted (200, one ``id`` for the whole batch) or refused as a whole. A 400 about
  the ``to`` addresses is narrowed down by halving the batch until the refused recipients are
  alone (they are rejected, the rest sent); any other refusal stops the run.

Options: ``region``, plus ``base_url``, ``timeout``, ``retries``, ``backoff``, ``max_wait``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from ..errors import ConfigError, TransportError
from ..message import OutgoingMessage
from .base import Status
from .dsn import Dsn
from .http import (
    METADATA_KEY,
    ApiCall,
    HttpTransport,
    Outcome,
    SharedBody,
    ascii_address,
    extra_headers,
    format_address,
    result,
    share_bodies,
)

MAX_RECIPIENTS = 1000
REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
_ABOUT_RECIPIENTS = re.compile(r"\bto\b|recipient", re.IGNORECASE)


def tag(key: str) -> str:
    """A recipient-variable reference in the shared body."""
    return f"%recipient.{key}%"


class MailgunTransport(HttpTransport):
    scheme = "mailgun"
    provider = "Mailgun"
    default_base_url = REGIONS["us"]
    max_batch = MAX_RECIPIENTS
    options: ClassVar[frozenset[str]] = frozenset({"region"})

    def __init__(self, key: str, *, domain: str, region: str = "us", **kwargs: Any) -> None:
        region = (region or "us").lower()
        if region not in REGIONS:
            raise ConfigError(
                f"mailgun DSN: region={region!r} is not one of {', '.join(REGIONS)}",
                hint="use ?region=eu for domains created in Mailgun's EU region",
            )
        if not domain or domain == "default" or "/" in domain:
            raise ConfigError(
                f"mailgun DSN: {domain!r} is not a sending domain",
                hint="write mailgun://API_KEY@mg.example.org (the domain as set up in Mailgun)",
            )
        kwargs.setdefault("base_url", None)
        kwargs["base_url"] = kwargs["base_url"] or REGIONS[region]
        super().__init__(key, **kwargs)
        self.domain = domain
        self.region = region
        self.path = f"/v3/{quote(domain, safe='')}/messages"

    @classmethod
    def _dsn_kwargs(cls, dsn: Dsn) -> dict[str, Any]:
        return {"domain": dsn.host, "region": dsn.params.get("region", "us")}

    def describe(self) -> str:
        return f"{super().describe()}, domain {self.domain}"

    def _request_kwargs(self, call: ApiCall) -> dict[str, Any]:
        kwargs = super()._request_kwargs(call)
        kwargs["auth"] = ("api", self.key)
        kwargs["headers"] = {"Accept": "application/json"}
        return kwargs

    def form(self, body: SharedBody) -> list[tuple[str, str]]:
        """The form fields of one request for ``body``'s messages, in order."""
        first = body.messages[0]
        batch = len(body.messages) > 1
        fields: list[tuple[str, str]] = [
            ("from", format_address(first.from_name, first.from_address))
        ]
        fields += [("to", format_address(m.to_name, m.to_email)) for m in body.messages]
        per_recipient: list[dict[str, str]] = [dict(v) for v in body.values]

        def shared_or_variable(field: str, values: list[str]) -> None:
            """A literal when every recipient has the same value, else a recipient variable."""
            if not batch or len(set(values)) == 1:
                fields.append((field, values[0]))
                return
            fields.append((field, tag(field)))
            for mine, value in zip(per_recipient, values, strict=True):
                mine[field] = value

        shared_or_variable("subject", [m.subject for m in body.messages])
        if first.reply_to:
            fields.append(("h:Reply-To", first.reply_to))
        for name in extra_headers(first):
            shared_or_variable(f"h:{name}", [extra_headers(m)[name] for m in body.messages])
        shared_or_variable(f"v:{METADATA_KEY}", [str(m.delivery_id) for m in body.messages])
        if body.text:
            fields.append(("text", body.text))
        if body.html:
            fields.append(("html", body.html))
        fields += [("o:tracking", "no"), ("o:tracking-clicks", "no"), ("o:tracking-opens", "no")]
        if batch:
            variables = {
                ascii_address(m.to_email): v
                for m, v in zip(body.messages, per_recipient, strict=True)
            }
            fields.append(("recipient-variables", json.dumps(variables, ensure_ascii=False)))
        return fields

    def _calls(self, messages: list[OutgoingMessage]) -> Iterable[ApiCall]:
        bodies = share_bodies(
            messages,
            tag,
            # One request has one sender and one set of header names (their values may vary).
            compatible=lambda m: (m.from_name, m.from_address, m.reply_to, tuple(extra_headers(m))),
            # Recipient variables are keyed by address.
            distinct=lambda m: ascii_address(m.to_email).lower(),
        )
        for body in bodies:
            for start in range(0, len(body.messages), MAX_RECIPIENTS):
                yield self._call(
                    SharedBody(
                        body.messages[start : start + MAX_RECIPIENTS],
                        body.html,
                        body.text,
                        body.values[start : start + MAX_RECIPIENTS],
                    )
                )

    def _call(self, body: SharedBody) -> ApiCall:
        if len(body.messages) == 1 and body.values[0]:
            # Alone after halving: its own literal body, no recipient variables.
            msg = body.messages[0]
            body = SharedBody([msg], msg.html, msg.text, [{}])
        return ApiCall(body.messages, self.path, form=self.form(body), context=body)

    def _parse(self, call: ApiCall, response: requests.Response) -> Outcome:
        if response.status_code == 200:
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            message_id = str(answer.get("id", "")) if isinstance(answer, dict) else ""
            if not message_id:
                # "Mailgun Magnificent API": a 200 from the wrong endpoint, nothing queued.
                raise self._request_error(response, "the request (no message id in the answer)")
            return [result(m, Status.SENT, message_id) for m in call.messages], []
        if response.status_code == 404:
            raise TransportError(
                f"Mailgun does not know the domain {self.domain!r} at {self.base_url} "
                f"(HTTP 404: {self._error_text(response)})",
                hint="check the domain in the DSN, and region=eu for EU domains",
            )
        words = self._error_text(response)
        if response.status_code != 400 or not _ABOUT_RECIPIENTS.search(words):
            raise self._request_error(response, f"a batch of {len(call.messages)}")
        body: SharedBody = call.context
        if len(call.messages) == 1:
            return [result(call.messages[0], Status.REJECTED, detail=f"Mailgun: {words}")], []
        # Mailgun does not say which address it refused: halve the batch until it is alone.
        half = len(body.messages) // 2
        return [], [
            self._call(SharedBody(body.messages[:half], body.html, body.text, body.values[:half])),
            self._call(SharedBody(body.messages[half:], body.html, body.text, body.values[half:])),
        ]
