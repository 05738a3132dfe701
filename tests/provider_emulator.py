"""A real local HTTP server that behaves like the Postmark, SendGrid and Mailgun send APIs.

It listens on 127.0.0.1 (a free port, in a thread), checks each provider's authentication,
records the exact request (headers, raw body, parsed JSON or form), enforces the batch limits,
and *delivers* what it accepted the way the provider would: SendGrid substitutions and Mailgun
recipient variables are applied, so tests can compare what each recipient would receive with
the message we meant to send. Replies can be scripted (429 with Retry-After, 500, 401, slow
answers) and addresses can be refused per recipient.

    with ProviderEmulator() as api:
        transport = PostmarkTransport.from_dsn(api.dsn("postmark"))
        api.reject["bad@example.org"] = "inactive"
        api.script("postmark", Reply(500), Reply(429, headers={"Retry-After": "1"}))
"""

from __future__ import annotations

import base64
import email.utils
import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

POSTMARK_TOKEN = "pm-server-token-0123"
SENDGRID_KEY = "SG.test-key.0123456789"
MAILGUN_KEY = "mg-key-0123456789"
MAILGUN_DOMAIN = "mg.example.org"

LIMITS = {"postmark": 500, "sendgrid": 1000, "mailgun": 1000}
_MAILGUN_PATH = re.compile(r"^/v3/([^/]+)/messages$")
_RECIPIENT_VAR = re.compile(r"%recipient\.([^%]+)%")


@dataclass
class Reply:
    """A scripted answer. ``status=None`` means: after ``delay``, answer normally."""

    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    provider: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: list[tuple[str, str]] | None = None
    status: int = 0

    def form_values(self, name: str) -> list[str]:
        return [v for k, v in self.form or [] if k == name]

    def form_value(self, name: str) -> str:
        values = self.form_values(name)
        assert len(values) == 1, f"{name}: {values}"
        return values[0]


@dataclass
class Delivered:
    """One message as its recipient would get it."""

    provider: str
    to: str  # bare address
    to_field: str
    from_field: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    metadata: dict[str, str]
    message_id: str


class ProviderEmulator:
    def __init__(self, *, keep_bodies: bool = True) -> None:
        self.keep_bodies = keep_bodies
        self.requests: list[Recorded] = []
        self.delivered: list[Delivered] = []
        self.delivered_count = 0
        self.reject: dict[str, str] = {}  # address -> reason
        self._scripts: dict[str, deque[Reply]] = {p: deque() for p in LIMITS}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                emulator._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> ProviderEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def dsn(self, provider: str, key: str | None = None, **options: str) -> str:
        """A DSN for ``provider`` pointing at this emulator (``key`` overrides the good key)."""
        opts = "&".join(f"{k}={v}" for k, v in {"base_url": self.base_url, **options}.items())
        if provider == "postmark":
            return f"postmark://{key or POSTMARK_TOKEN}@default?{opts}"
        if provider == "sendgrid":
            return f"sendgrid://{key or SENDGRID_KEY}@default?{opts}"
        return f"mailgun://{key or MAILGUN_KEY}@{MAILGUN_DOMAIN}?{opts}"

    def script(self, provider: str, *replies: Reply) -> None:
        """Answer the next requests to ``provider`` with ``replies``, in order."""
        with self._lock:
            self._scripts[provider].extend(replies)

    def requests_to(self, provider: str) -> list[Recorded]:
        return [r for r in self.requests if r.provider == provider]

    # -- dispatch ---------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        path = handler.path.split("?")[0]
        if path == "/email/batch":
            provider = "postmark"
        elif path == "/v3/mail/send":
            provider = "sendgrid"
        elif _MAILGUN_PATH.match(path):
            provider = "mailgun"
        else:
            self._send(handler, 404, {"message": "not found"})
            return
        record = Recorded(
            provider, path, dict(handler.headers.items()), body if self.keep_bodies else b""
        )
        ctype = handler.headers.get("Content-Type", "")
        try:
            if ctype.startswith("application/json"):
                record.json = json.loads(body)
            elif ctype.startswith("application/x-www-form-urlencoded"):
                record.form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except ValueError:
            self._send(handler, 400, {"message": "unparseable body"})
            return
        with self._lock:
            self.requests.append(record)
            reply = self._scripts[provider].popleft() if self._scripts[provider] else None
        if not self._authorised(provider, handler):
            record.status = 401
            self._send(handler, 401, _auth_error(provider))
            return
        if reply is not None:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status is not None:
                record.status = reply.status
                self._send(handler, reply.status, reply.body, reply.headers)
                return
        status, answer, headers = getattr(self, f"_{provider}")(record, path)
        record.status = status
        if not self.keep_bodies:
            record.json = record.form = None
        self._send(handler, status, answer, headers)

    def _authorised(self, provider: str, handler: BaseHTTPRequestHandler) -> bool:
        if provider == "postmark":
            return handler.headers.get("X-Postmark-Server-Token") == POSTMARK_TOKEN
        if provider == "sendgrid":
            return handler.headers.get("Authorization") == f"Bearer {SENDGRID_KEY}"
        expected = "Basic " + base64.b64encode(f"api:{MAILGUN_KEY}".encode()).decode()
        return handler.headers.get("Authorization") == expected

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        try:
            handler.send_response(status)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            if data:
                handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (a timeout test)

    def _deliver(self, item: Delivered) -> None:
        with self._lock:
            self.delivered_count += 1
            if self.keep_bodies:
                self.delivered.append(item)

    # -- Postmark ---------------------------------------------------------------------------

    def _postmark(self, record: Recorded, path: str) -> tuple[int, Any, dict[str, str]]:
        messages = record.json
        if not isinstance(messages, list):
            return 422, {"ErrorCode": 402, "Message": "Invalid JSON"}, {}
        if len(messages) > LIMITS["postmark"]:
            return 422, {"ErrorCode": 410, "Message": "Too many batch messages (500 max)"}, {}
        answers = []
        for m in messages:
            to = email.utils.parseaddr(m.get("To", ""))[1]
            if to in self.reject:
                answers.append(
                    {
                        "ErrorCode": 406,
                        "Message": "You tried to send to recipient(s) that have been marked as "
                        f"inactive. Found inactive addresses: {to}. {self.reject[to]}",
                    }
                )
                continue
            message_id = str(uuid.uuid4())
            self._deliver(
                Delivered(
                    "postmark",
                    to,
                    m["To"],
                    m["From"],
                    m["Subject"],
                    m.get("HtmlBody", ""),
                    m.get("TextBody", ""),
                    {h["Name"]: h["Value"] for h in m.get("Headers", [])},
                    m.get("Metadata", {}),
                    message_id,
                )
            )
            answers.append(
                {
                    "ErrorCode": 0,
                    "Message": "OK",
                    "MessageID": message_id,
                    "To": m["To"],
                    "SubmittedAt": "2024-01-01T00:00:00Z",
                }
            )
        return 200, answers, {}

    # -- SendGrid ---------------------------------------------------------------------------

    def _sendgrid(self, record: Recorded, path: str) -> tuple[int, Any, dict[str, str]]:
        data = record.json
        personalizations = data.get("personalizations", []) if isinstance(data, dict) else []
        if not personalizations or len(personalizations) > LIMITS["sendgrid"]:
            return (
                400,
                {
                    "errors": [
                        {
                            "message": "The personalizations field must have between "
                            "1 and 1000 items",
                            "field": "personalizations",
                        }
                    ]
                },
                {},
            )
        errors = [
            {
                "message": f"Does not contain a valid address: {self.reject[p['to'][0]['email']]}",
                "field": f"personalizations.{i}.to.0.email",
            }
            for i, p in enumerate(personalizations)
            if p["to"][0]["email"] in self.reject
        ]
        if errors:
            return 400, {"errors": errors}, {}
        message_id = f"sg{next(self._ids):06d}"
        if not self.keep_bodies:  # a benchmark: count, do not expand
            with self._lock:
                self.delivered_count += len(personalizations)
            return 202, None, {"X-Message-Id": message_id}
        content = {c["type"]: c["value"] for c in data.get("content", [])}
        for p in personalizations:
            html, text = content.get("text/html", ""), content.get("text/plain", "")
            for tag, value in p.get("substitutions", {}).items():
                html, text = html.replace(tag, value), text.replace(tag, value)
            to = p["to"][0]
            self._deliver(
                Delivered(
                    "sendgrid",
                    to["email"],
                    email.utils.formataddr((to.get("name", ""), to["email"])),
                    email.utils.formataddr((data["from"].get("name", ""), data["from"]["email"])),
                    p.get("subject", data.get("subject", "")),
                    html,
                    text,
                    dict(p.get("headers", {})),
                    dict(p.get("custom_args", {})),
                    message_id,
                )
            )
        return 202, None, {"X-Message-Id": message_id}

    # -- Mailgun ----------------------------------------------------------------------------

    def _mailgun(self, record: Recorded, path: str) -> tuple[int, Any, dict[str, str]]:
        match = _MAILGUN_PATH.match(path)
        assert match
        if match.group(1) != MAILGUN_DOMAIN:
            return 404, {"message": "Domain not found: " + match.group(1)}, {}
        form = record.form or []
        to_fields = record.form_values("to")
        if not to_fields:
            return 400, {"message": "'to' parameter is missing"}, {}
        if len(to_fields) > LIMITS["mailgun"]:
            return 400, {"message": "Too many recipients: batch sending allows 1000"}, {}
        if any(email.utils.parseaddr(t)[1] in self.reject for t in to_fields):
            return (
                400,
                {"message": "'to' parameter is not a valid address. please check documentation"},
                {},
            )
        message_id = f"<{next(self._ids):06d}.1@{MAILGUN_DOMAIN}>"
        if not self.keep_bodies:  # a benchmark: count, do not expand
            with self._lock:
                self.delivered_count += len(to_fields)
            return 200, {"id": message_id, "message": "Queued. Thank you."}, {}
        variables = (
            json.loads(record.form_value("recipient-variables"))
            if record.form_values("recipient-variables")
            else {}
        )
        single = {k: v for k, v in form if k != "to"}
        for to_field in to_fields:
            to = email.utils.parseaddr(to_field)[1]
            mine = variables.get(to, {})

            def fill(value: str, mine: dict[str, str] = mine) -> str:
                return _RECIPIENT_VAR.sub(lambda m: str(mine.get(m.group(1), "")), value)

            self._deliver(
                Delivered(
                    "mailgun",
                    to,
                    to_field,
                    single["from"],
                    fill(single.get("subject", "")),
                    fill(single.get("html", "")),
                    fill(single.get("text", "")),
                    {k[2:]: fill(v) for k, v in single.items() if k.startswith("h:")},
                    {k[2:]: fill(v) for k, v in single.items() if k.startswith("v:")},
                    message_id,
                )
            )
        return 200, {"id": message_id, "message": "Queued. Thank you."}, {}


def _auth_error(provider: str) -> Any:
    if provider == "postmark":
        return {
            "ErrorCode": 10,
            "Message": "The Server Token you provided in the "
            "X-Postmark-Server-Token request header was invalid.",
        }
    if provider == "sendgrid":
        return {
            "errors": [
                {
                    "message": "The provided authorization grant is invalid, expired, or revoked",
                    "field": None,
                    "help": None,
                }
            ]
        }
    return b"Forbidden"


if __name__ == "__main__":
    # A separate process for benchmarks: print the base URL, serve until stdin closes.
    import sys

    with ProviderEmulator(keep_bodies=False) as emulator:
        print(emulator.base_url, flush=True)
        sys.stdin.read()
