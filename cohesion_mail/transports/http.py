"""Shared plumbing for the transactional-mail API transports (Postmark, SendGrid, Mailgun).

One ``requests.Session`` per transport, a ``(connect, read)`` timeout on every call, and one
place that turns HTTP statuses into what the send loop understands (model: anymail's
``base_requests.py``):

* 401/403 → ``AuthenticationError`` naming the provider (never the key), raised at once:
  a bad key stops the run before anything is marked sent.
* 429 → wait ``Retry-After`` (seconds or an HTTP date, capped at ``max_wait``), then retry.
* 5xx, timeouts, dropped connections → exponential backoff, a bounded number of attempts, then
  every message of that request is ``DEFERRED`` (the ledger retries them on resume). A host
  that never answered at all is a ``TransportError`` naming host:port instead.
* other 4xx → handed to the provider, which maps it to per-recipient ``REJECTED`` where the
  provider says which recipient; otherwise it is a request-level ``TransportError``.

A read timeout is ambiguous (the provider may have accepted the request before the answer was
lost), and none of these APIs takes an idempotency key, so retrying it can, rarely, deliver a
batch twice. We retry anyway, as mail servers do after a lost ``250`` (RFC 1047), because
the alternative (marking the batch sent) can silently drop it.

Each provider module describes its payloads; ``share_bodies`` below is the one helper the
substitution-based providers (SendGrid, Mailgun) use to send many personalised messages as one
shared body plus per-recipient values.
"""

from __future__ import annotations

import contextlib
import html as html_lib
import re
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import requests

from .. import __version__
from ..config import ENV_TRANSPORT
from ..errors import AuthenticationError, ConfigError, TransportError
from ..message import OutgoingMessage
from ..tracking.tokens import Signer
from .base import RecipientResult, Status, Transport
from .dsn import Dsn, parse_dsn

# Our delivery id travels with every message as provider metadata (Postmark ``Metadata``,
# SendGrid ``custom_args``, Mailgun ``v:`` variables) so webhooks can map events back.
METADATA_KEY = "cohesion_delivery"

# Headers the APIs take as their own fields (or build themselves); never sent as extra headers.
FIELD_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "sender",
        "date",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


def format_address(name: str, address: str) -> str:
    """``"Name" <addr>`` with the name quoted (RFC 5322 §3.4), or the bare address."""
    address = ascii_address(address)
    if not name:
        return address
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{address}>'


def ascii_address(address: str) -> str:
    """The address with an IDNA-encoded domain (these APIs want ASCII domains)."""
    local, _, domain = address.rpartition("@")
    if not domain.isascii():
        # Not a valid IDN: left as is, and the provider refuses it for this recipient.
        with contextlib.suppress(UnicodeError):
            domain = domain.encode("idna").decode("ascii")
    return f"{local}@{domain}"


def unsupported_address(address: str) -> str:
    """Why an API cannot take ``address`` (non-ASCII mailbox names need SMTPUTF8), or ''."""
    local = address.rpartition("@")[0]
    if not local.isascii():
        return (
            f"{address}: this provider's API does not accept non-ASCII mailbox names "
            "(RFC 6531); send to this address with an SMTP server that offers SMTPUTF8"
        )
    return ""


def extra_headers(msg: OutgoingMessage) -> dict[str, str]:
    """The message's own headers minus those the API sets from its fields."""
    return {k: v for k, v in msg.headers.items() if k.lower() not in FIELD_HEADERS}


@dataclass
class ApiCall:
    """One HTTP request and the messages it carries."""

    messages: list[OutgoingMessage]
    path: str
    json: Any = None
    form: list[tuple[str, str]] | None = None
    data: bytes | None = None  # a JSON body serialised already (sent as application/json)
    context: Any = None  # provider's own notes, e.g. the shared body it was built from


Outcome = tuple[list[tuple[OutgoingMessage, RecipientResult]], list[ApiCall]]


class _Deferred(Exception):
    """Retries exhausted for one request: its messages are deferred."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: an integer or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def result(
    msg: OutgoingMessage, status: Status, message_id: str = "", detail: str = ""
) -> tuple[OutgoingMessage, RecipientResult]:
    return msg, RecipientResult(msg.delivery_id, msg.to_email, status, message_id, detail)


class HttpTransport(Transport):
    """A provider's HTTP API behind the ``Transport`` interface.

    Subclasses say how to build requests (``_calls``) and read answers (``_parse``); this class
    owns the session, the timeouts, the retries and the status classes. ``requests_made``
    counts HTTP attempts (retries included), for benchmarks and summaries.
    """

    provider: ClassVar[str] = ""  # "Postmark"
    default_base_url: ClassVar[str] = ""
    options: ClassVar[frozenset[str]] = frozenset()  # provider-specific DSN options
    common_options: ClassVar[frozenset[str]] = frozenset(
        {"base_url", "timeout", "retries", "backoff", "max_wait"}
    )

    def __init__(
        self,
        key: str,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 1.0,
        max_wait: float = 60.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not key:
            raise ConfigError(
                f"{self.scheme} DSN: the API key is empty",
                hint=f"set {ENV_TRANSPORT}={self.scheme}://YOUR_KEY@…",
            )
        self.key = key
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.scheme} DSN: base_url must be an http(s) URL")
        self.timeout = (min(timeout, 10.0), timeout)  # (connect, read)
        self.retries = retries
        self.backoff = backoff
        self.max_wait = max_wait
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = f"cohesion-mail/{__version__}"
        self._sleep = sleep
        self._reached = False  # has the host ever answered? (unreachable vs. flaky)
        self.requests_made = 0

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_dsn(
        cls,
        dsn: str | Dsn,
        *,
        campaign_dir: Path | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Self:
        """Build from ``scheme://KEY@HOST?options`` (the registry's entry point).

        The key is the DSN's user part (percent-decoded), or its password when a login name is
        given too (``mailgun://api:KEY@mg.example.org``). Unknown options are a ``ConfigError``
        naming the redacted DSN; ``?timeout=`` beats the caller's ``timeout``.
        """
        parsed = dsn if isinstance(dsn, Dsn) else parse_dsn(dsn)
        parsed.check_params(cls.common_options | cls.options)
        key = parsed.password or parsed.user
        if not key:
            raise parsed.error(
                "no API key",
                hint=f"write {cls.scheme}://YOUR_KEY@… in {ENV_TRANSPORT} (percent-encode "
                "@ : / ? # in the key)",
            )
        common: dict[str, Any] = {"timeout": parsed.number("timeout", timeout or 30.0)}
        if parsed.params.get("base_url"):
            common["base_url"] = parsed.params["base_url"]
        for name in ("backoff", "max_wait"):
            if parsed.params.get(name):
                common[name] = parsed.number(name, 0)
        if parsed.params.get("retries"):
            retries = parsed.params["retries"]
            if not retries.isdigit():
                raise parsed.error(f"retries={retries!r} must be a whole number (0 or more)")
            common["retries"] = int(retries)
        return cls(key, **cls._dsn_kwargs(parsed), **{**common, **kwargs})

    @classmethod
    def _dsn_kwargs(cls, dsn: Dsn) -> dict[str, Any]:
        """Provider-specific constructor arguments from the DSN host and options."""
        return {}

    def describe(self) -> str:
        return f"{self.provider} API at {urlsplit(self.base_url).netloc}"

    def close(self) -> None:
        self.session.close()

    # -- the send loop of one batch -------------------------------------------------------

    def send(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        done: dict[int, RecipientResult] = {}
        ready: list[OutgoingMessage] = []
        for msg in messages:
            problem = unsupported_address(msg.to_email)
            if problem:
                done[id(msg)] = RecipientResult(
                    msg.delivery_id, msg.to_email, Status.FAILED, "", problem
                )
            else:
                ready.append(msg)
        queue = deque(self._calls(ready) if ready else [])
        answered = False  # has any request of this batch been answered?
        while queue:
            call = queue.popleft()
            try:
                response = self._post(call)
                outcomes, more = self._parse(call, response)
                answered = True
            except _Deferred as exc:
                outcomes, more = (
                    [result(m, Status.DEFERRED, detail=exc.detail) for m in call.messages],
                    [],
                )
            except TransportError as exc:
                if not answered:
                    raise
                # Part of this batch was accepted: keep those, retry the rest later
                # (the next batch will meet the same error at its first request and stop).
                pending = [m for c in (call, *queue) for m in c.messages if id(m) not in done]
                for msg in pending:
                    done[id(msg)] = RecipientResult(
                        msg.delivery_id, msg.to_email, Status.DEFERRED, "", exc.message
                    )
                break
            for msg, res in outcomes:
                done[id(msg)] = res
            queue.extend(more)
        return [
            done.get(id(m))
            or RecipientResult(
                m.delivery_id,
                m.to_email,
                Status.FAILED,
                "",
                f"no answer from {self.provider} for this recipient",
            )
            for m in messages
        ]

    @abstractmethod
    def _calls(self, messages: list[OutgoingMessage]) -> Iterable[ApiCall]:
        """The requests that carry ``messages`` (each within the provider's limits)."""

    @abstractmethod
    def _parse(self, call: ApiCall, response: requests.Response) -> Outcome:
        """Per-recipient results from a 2xx or non-auth 4xx answer, and any follow-up calls."""

    # -- HTTP -----------------------------------------------------------------------------

    def _request_kwargs(self, call: ApiCall) -> dict[str, Any]:
        """Authentication and body for ``call``; providers add their auth header here."""
        kwargs: dict[str, Any] = {}
        if call.json is not None:
            kwargs["json"] = call.json
        if call.form is not None:
            kwargs["data"] = call.form
        if call.data is not None:
            kwargs["data"] = call.data
            kwargs["headers"] = {"Content-Type": "application/json"}
        return kwargs

    def _post(self, call: ApiCall) -> requests.Response:
        url = self.base_url + call.path
        host = urlsplit(self.base_url).netloc
        attempt = 0
        while True:
            attempt += 1
            connect_failed = False
            wait = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
            try:
                self.requests_made += 1
                response = self.session.post(
                    url, timeout=self.timeout, **self._request_kwargs(call)
                )
            except requests.ConnectTimeout:
                problem, connect_failed = (
                    f"no connection to {host} within {self.timeout[0]:g}s",
                    True,
                )
            except requests.Timeout:
                self._reached = True
                problem = f"no answer from {host} within {self.timeout[1]:g}s"
            except requests.ConnectionError as exc:
                problem, connect_failed = f"cannot connect to {host}: {_reason(exc)}", True
            except requests.RequestException as exc:  # e.g. the answer broke off mid-body
                self._reached = True
                problem = f"broken answer from {host}: {exc.__class__.__name__}"
            else:
                self._reached = True
                status = response.status_code
                if status in (401, 403):
                    raise AuthenticationError(
                        f"{self.provider} refused our credentials (HTTP {status} from {host}): "
                        f"{self._error_text(response)}",
                        hint=f"check the API key in {ENV_TRANSPORT} (and that it may send from "
                        "this sender); nothing in this batch was marked sent",
                    )
                if status == 429:
                    after = retry_after_seconds(response.headers.get("Retry-After"))
                    if after is not None:
                        wait = min(after, self.max_wait)
                    problem = f"HTTP 429 rate limited by {host}"
                elif status >= 500:
                    problem = f"HTTP {status} from {host}: {self._error_text(response)}"
                else:
                    return response
            if attempt > self.retries:
                if connect_failed and not self._reached:
                    raise TransportError(
                        f"{self.provider}: {problem}",
                        hint="check the network, or base_url= in the DSN; nothing was sent, "
                        "run the same send again to resume",
                    )
                raise _Deferred(f"{self.provider}: {problem} (gave up after {attempt} attempts)")
            self._sleep(wait)

    def _error_text(self, response: requests.Response) -> str:
        """The provider's own words from an error answer, without our key, kept short."""
        text = ""
        try:
            data = response.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            if isinstance(data.get("errors"), list):
                text = "; ".join(
                    str(e.get("message", e)) if isinstance(e, dict) else str(e)
                    for e in data["errors"]
                )
            else:
                text = str(data.get("Message") or data.get("message") or "")
        if not text:
            text = response.text.strip() or response.reason or ""
        text = " ".join(text.split())[:300]
        return self.redact(text)

    def redact(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text

    def _request_error(
        self, response: requests.Response, what: str = "the request"
    ) -> TransportError:
        """A 4xx no recipient can be blamed for: stop the run with the provider's words."""
        return TransportError(
            f"{self.provider} rejected {what} (HTTP {response.status_code}): "
            f"{self._error_text(response)}",
            hint="fix the sender, DSN or content named above, then run the same send again "
            "to resume",
        )


def _reason(exc: BaseException) -> str:
    """The operating system's words (``Connection refused``), not urllib3's retry chain."""
    match = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return match.group(1).strip() if match else exc.__class__.__name__


# -- shared bodies for substitution-based batch APIs ----------------------------------------

# A tracking token as tracking.tokens makes it, in the URL shapes /u/…, /w/…, /o/….gif, /c/…?u=.
_TOKEN_LEN = len(Signer(b"length probe").token("open", 0, 0))
_TOKEN = re.compile(rf"(?<=/[cuwo]/)[A-Za-z0-9_-]{{{_TOKEN_LEN}}}(?![A-Za-z0-9_-])")
_TOKEN_CHARS = re.compile(rf"[A-Za-z0-9_-]{{{_TOKEN_LEN}}}")


_RAW, _TEXT, _ATTR = 0, 1, 2  # the escaping forms of a merge value, as the renderer applies them


@dataclass
class _Template:
    """A body cut into literal parts and named slots: ``parts[0] slot[0] parts[1] …``."""

    html_parts: list[str]
    html_slots: list[str]
    text_parts: list[str]
    text_slots: list[str]
    merge_keys: dict[str, tuple[str, int]]  # slot key -> (merge field, escaping form)

    _FORMS: ClassVar[tuple[Callable[[str], str], ...]] = (
        lambda v: v,
        lambda v: html_lib.escape(v, quote=False),
        lambda v: html_lib.escape(v, quote=True),
    )

    @classmethod
    def build(cls, msg: OutgoingMessage, ns: str) -> _Template:
        # Each merge value as it may appear; which form applies at a place depends on where it
        # is, as in the renderer: raw in the text part, escaped inside a tag or in element text.
        found: dict[str, list[tuple[str, int]]] = {}
        for name, value in msg.merge.items():
            if value:
                for form, fn in enumerate(cls._FORMS):
                    found.setdefault(fn(value), []).append((name, form))
        alternatives = sorted(found, key=len, reverse=True)
        pattern = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, alternatives)) + r")(?!\w)")
            if alternatives
            else None
        )
        merge_keys: dict[str, tuple[str, int]] = {}
        key_of: dict[tuple[str, int], str] = {}

        def merge_key(doc: str, at: int, shown: str, is_html: bool) -> str | None:
            if not is_html:
                form = _RAW
            elif doc.rfind("<", 0, at) > doc.rfind(">", 0, at):
                form = _ATTR
            else:
                form = _TEXT
            ref = next((c for c in found[shown] if c[1] == form), None)
            if ref is None:
                return None  # not how the renderer would have put it here: leave it literal
            if ref not in key_of:
                key_of[ref] = f"{ns}m{len(key_of)}"
                merge_keys[key_of[ref]] = ref
            return key_of[ref]

        def cut(doc: str, prefix: str, is_html: bool) -> tuple[list[str], list[str]]:
            parts: list[str] = []
            slots: list[str] = []
            buf = ""
            pos = 0
            segments: list[tuple[int, int, str | None]] = []
            for n, m in enumerate(_TOKEN.finditer(doc)):
                segments.append((pos, m.start(), f"{ns}{prefix}{n}"))
                pos = m.end()
            segments.append((pos, len(doc), None))
            for start, end, token_key in segments:
                lpos = start
                for m in pattern.finditer(doc, start, end) if pattern else ():
                    key = merge_key(doc, m.start(), m.group(0), is_html)
                    if key is None:
                        continue
                    parts.append(buf + doc[lpos : m.start()])
                    buf = ""
                    slots.append(key)
                    lpos = m.end()
                buf += doc[lpos:end]
                if token_key is not None:
                    parts.append(buf)
                    buf = ""
                    slots.append(token_key)
            parts.append(buf)
            return parts, slots

        html_parts, html_slots = cut(msg.html, "h", True)
        text_parts, text_slots = cut(msg.text, "t", False)
        return cls(html_parts, html_slots, text_parts, text_slots, merge_keys)

    def values_for(self, msg: OutgoingMessage, ns: str) -> dict[str, str] | None:
        """The slot values that turn this template into ``msg``'s body, or None if none do.

        Walks ``msg``'s HTML and text along the template: every literal part must follow at
        the current position, a merge slot must hold this recipient's value in that slot's
        form, a token slot takes the next token-length characters. Reaching the exact end of
        both documents proves that filling the template gives ``msg``'s body byte for byte,
        at the cost of a few ``startswith`` calls (no regex, no second copy).
        """
        values: dict[str, str] = {}
        for key, (name, form) in self.merge_keys.items():
            if name not in msg.merge:
                return None
            values[key] = self._FORMS[form](msg.merge[name])
        for doc, parts, slots in (
            (msg.html, self.html_parts, self.html_slots),
            (msg.text, self.text_parts, self.text_slots),
        ):
            if not doc.startswith(parts[0]):
                return None
            pos = len(parts[0])
            for slot, literal in zip(slots, parts[1:], strict=True):
                if slot in self.merge_keys:
                    value = values[slot]
                    if not doc.startswith(value, pos):
                        return None
                else:
                    value = doc[pos : pos + _TOKEN_LEN]
                    if not _TOKEN_CHARS.fullmatch(value):
                        return None
                    values[slot] = value
                pos += len(value)
                if not doc.startswith(literal, pos):
                    return None
                pos += len(literal)
            if pos != len(doc):
                return None
        return values


def _fill(parts: list[str], slots: list[str], values: Mapping[str, str]) -> str:
    out = [parts[0]]
    for slot, literal in zip(slots, parts[1:], strict=True):
        out.append(values[slot])
        out.append(literal)
    return "".join(out)


@dataclass
class SharedBody:
    """Messages that can go as one body with per-recipient substitutions.

    ``html``/``text`` hold provider tags (``tag(key)``); ``values[i]`` maps each key to
    ``messages[i]``'s value. A group of one carries its own literal body and no values.
    """

    messages: list[OutgoingMessage]
    html: str
    text: str
    values: list[dict[str, str]] = field(default_factory=list)


def share_bodies(
    messages: Sequence[OutgoingMessage],
    tag: Callable[[str], str],
    *,
    compatible: Callable[[OutgoingMessage], Hashable] = lambda m: None,
    distinct: Callable[[OutgoingMessage], str] | None = None,
    max_values_bytes: int | None = None,
    max_templates: int = 8,
) -> list[SharedBody]:
    """Group ``messages`` into shared bodies, proving each member's body is reproduced exactly.

    Every message arrives fully personalised (merge values *and* per-recipient tracking links),
    so a shared body is built from one message by cutting out its per-recipient values: the
    signed tokens of the tracking URLs (by position) and its merge values in each escaping form
    the renderer uses (raw, text-escaped, attribute-escaped). A message joins the group only if
    filling the shared body with *its* values gives back its own HTML and text, byte for byte;
    one that differs (another language, a merge value that also occurs as ordinary text) starts
    another group, and beyond ``max_templates`` goes alone. So substitution is never wrong, only
    sometimes less batched.

    ``compatible`` keys what must be equal within a request (sender, headers present …);
    ``distinct`` keys what must differ (Mailgun keys recipient variables by address);
    ``max_values_bytes`` bounds one recipient's substitutions (SendGrid: 10,000 bytes).
    """
    groups: list[tuple[Hashable, _Template, str, SharedBody, set[str]]] = []
    templates: dict[Hashable, int] = {}
    singles: list[SharedBody] = []

    def fits(values: dict[str, str]) -> bool:
        if max_values_bytes is None:
            return True
        size = sum(len(tag(k).encode()) + len(v.encode()) for k, v in values.items())
        return size <= max_values_bytes

    for msg in messages:
        ckey = compatible(msg)
        mark = distinct(msg) if distinct else ""
        placed = False
        for gkey, template, ns, body, seen in groups:
            if gkey != ckey or (distinct and mark in seen):
                continue
            values = template.values_for(msg, ns)
            if values is not None and fits(values):
                body.messages.append(msg)
                body.values.append(values)
                seen.add(mark)
                placed = True
                break
        if placed:
            continue
        if templates.get(ckey, 0) < max_templates:
            built = _build_tagged(msg, tag)
            if built is not None:
                template, ns, values = built
                if fits(values):
                    templates[ckey] = templates.get(ckey, 0) + 1
                    body = SharedBody(
                        [msg],
                        _fill(template.html_parts, template.html_slots, _Tags(tag)),
                        _fill(template.text_parts, template.text_slots, _Tags(tag)),
                        [values],
                    )
                    groups.append((ckey, template, ns, body, {mark}))
                    continue
        singles.append(SharedBody([msg], msg.html, msg.text, [{}]))

    out: list[SharedBody] = []
    for _, _, _, body, _ in groups:
        if len(body.messages) == 1:
            msg = body.messages[0]
            out.append(SharedBody([msg], msg.html, msg.text, [{}]))
        else:
            out.append(body)
    return out + singles


class _Tags(dict[str, str]):
    """A mapping that answers each slot key with its provider tag."""

    def __init__(self, tag: Callable[[str], str]) -> None:
        super().__init__()
        self._tag = tag

    def __missing__(self, key: str) -> str:
        return self._tag(key)


def _build_tagged(
    msg: OutgoingMessage, tag: Callable[[str], str]
) -> tuple[_Template, str, dict[str, str]] | None:
    """A template from ``msg`` whose tags occur in the tagged body only where we put them."""
    for ns in ("cm_", "cmq_", "cmz_"):
        template = _Template.build(msg, ns)
        values = template.values_for(msg, ns)
        if values is None:
            return None
        tagged = (
            _fill(template.html_parts, template.html_slots, _Tags(tag))
            + "\0"
            + _fill(template.text_parts, template.text_slots, _Tags(tag))
        )
        slots = template.html_slots + template.text_slots
        if all(tagged.count(tag(k)) == slots.count(k) for k in set(slots)):
            return template, ns, values
    return None
