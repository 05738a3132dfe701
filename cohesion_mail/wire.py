"""Fast wire form of personalised messages: the issue's body is quoted-printable-encoded once.

``message.message_bytes`` encodes each message's whole HTML and text with ``binascii.b2a_qp``,
about 1.4 ms for the 54 KB seed issue, which is more than one SMTP exchange with a local
server: at 100,000 recipients it would be most of the run. But almost all of those bytes are
the same for every recipient. ``WireIssue`` cuts the compiled issue at its merge-field and
link slots once, encodes each static segment once, and per message encodes only the values:
each segment ends with a soft line break (``=`` CRLF, RFC 2045 §6.7 rule 5), so segments
encoded apart join into valid quoted-printable that decodes to exactly what ``personalise``
returns. The header block is ``message_bytes``'s, in its order and with its encoders; the
lines that repeat between messages (From, List-Id, …) are encoded once. ``tests/test_send.py``
checks that the email package parses both forms to the same headers and parts.

The slots are found through ``CompiledIssue.personalise`` itself: it is called once with
marker values and a marker ``click``, and the markers show where each value lands and how it
was escaped (a value in an attribute has its ``"`` escaped, one in element text does not).
"""

from __future__ import annotations

import binascii
import html
import re
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from .errors import MergeFieldError
from .message import (
    OutgoingMessage,
    extra_headers,
    fold_header,
    format_address,
    header_line,
    uses_smtputf8,
)
from .render.personalise import CompiledIssue

_TEXT, _ATTR, _LINK, _RAW = 0, 1, 2, 3
# Headers whose value is new in every message: not worth keeping.
_PER_RECIPIENT = frozenset({"List-Unsubscribe"})
_MAX = 76  # RFC 2045 §6.7 rule 5: encoded lines are at most 76 characters
# Text that is already its own quoted-printable form: printable ASCII without "=", neither
# starting nor ending with a space, and not starting with a dot (see ``_qp``).
_PLAIN = re.compile(r"[!-\-/-<>-~](?:[ !-<>-~]*[!-<>-~])?")


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _qp(text: str) -> bytes:
    """``text`` (LF line ends) as quoted-printable with CRLF, ending in a line break or a soft
    break, so that whatever follows starts a new encoded line.

    No line starts with a dot (it is written ``=2E``): SMTP would otherwise have to dot-stuff
    the message (RFC 5321 §4.5.2), and a transport can skip that scan when no line needs it.
    """
    if not text:
        return b""
    if len(text) < _MAX and _PLAIN.fullmatch(text):  # most values: a name, a signed URL
        return text.encode("ascii") + b"=\r\n"
    # Encode with LF line ends and convert after: b2a_qp picks its soft-break style from the
    # first line end it sees, and a segment may have none.
    data = binascii.b2a_qp(text.encode("utf-8", "replace"), istext=True).replace(b"\n", b"\r\n")
    hard_end = data.endswith(b"\r\n")
    body = data[:-2] if hard_end else data + b"="
    lines = body.split(b"\r\n")
    # b2a_qp itself writes 77 characters when a line ends in an encoded space or tab.
    if body.startswith(b".") or b"\r\n." in body or max(map(len, lines)) > _MAX:
        body = b"\r\n".join(part for line in lines for part in _fit(line))
    return body + b"\r\n"


def _fit(line: bytes) -> list[bytes]:
    """One encoded line as lines of at most 76 characters, none starting with a dot."""
    out: list[bytes] = []
    while True:
        if line.startswith(b"."):
            line = b"=2E" + line[1:]
        if len(line) <= _MAX:
            out.append(line)
            return out
        at = _MAX - 1
        while (escape := line.rfind(b"=", at - 2, at)) >= 0:  # never cut inside "=XX"
            at = escape
        out.append(line[:at] + b"=")
        line = line[at:]


class _Split:
    """A document as encoded static segments and the slots between them."""

    def __init__(self, parts: list[bytes], slots: list[tuple[int, int, str]]) -> None:
        self.parts = parts  # static segments, already encoded; slots fill the gaps
        self.slots = slots  # (index in parts, kind, field name or link URL)


class WireIssue:
    """One compiled issue, prepared for fast per-recipient serialisation."""

    def __init__(self, issue: CompiledIssue, *, click_tracking: bool) -> None:
        self.issue = issue
        self.click_tracking = click_tracking
        nonce = secrets.token_hex(5)
        names = sorted(issue.fields | set(issue.merge_defaults))
        markers = {name: f'wzq{nonce}f{i}"q' for i, name in enumerate(names)}
        urls: list[str] = []

        def click(url: str) -> str:
            urls.append(url)
            return f"wzq{nonce}l{len(urls) - 1}q"

        html_doc, text_doc = issue.personalise(markers, click=click if click_tracking else None)
        pattern = re.compile(f'wzq{nonce}(?:f(\\d+)(")|f(\\d+)(&quot;)|l(\\d+))q')

        def split(doc: str) -> _Split:
            doc = _normalise(doc)
            if not doc.endswith("\n"):
                doc += "\n"  # as message._body does
            parts: list[bytes] = []
            slots: list[tuple[int, int, str]] = []
            pos = 0
            for m in pattern.finditer(doc):
                parts.append(_qp(doc[pos : m.start()]))
                if m.group(1) is not None:
                    slots.append((len(parts), _TEXT, names[int(m.group(1))]))
                elif m.group(3) is not None:
                    slots.append((len(parts), _ATTR, names[int(m.group(3))]))
                else:
                    slots.append((len(parts), _LINK, urls[int(m.group(5))]))
                parts.append(b"")
                pos = m.end()
            parts.append(_qp(doc[pos:]))
            return _Split(parts, slots)

        self._html = split(html_doc)
        self._text = split(text_doc)
        # One boundary per issue: it cannot occur in a quoted-printable body, where every "="
        # is written "=3D".
        boundary = "=_cm" + secrets.token_hex(12)
        self._mime = (
            f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"'
            "\r\n\r\n"
        )
        delim = f"--{boundary}\r\n".encode("ascii")
        self._text_head = (
            delim + b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._html_head = (
            b"\r\n" + delim + b'Content-Type: text/html; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        self._end = f"\r\n--{boundary}--\r\n".encode("ascii")
        self._lines: dict[tuple[str, str], str] = {}
        self._senders: dict[tuple[str, str, str], str] = {}

    def bodies(
        self, values: Mapping[str, str], click: Callable[[str], str] | None
    ) -> tuple[bytes, bytes]:
        """``(text, html)`` bodies, quoted-printable, for the values ``personalise`` would get."""
        defaults = self.issue.merge_defaults
        done: dict[tuple[int, str], bytes] = {}

        def encoded(kind: int, key: str) -> bytes:
            got = done.get((kind, key))
            if got is None:
                if kind == _LINK:
                    assert click is not None, "prepared with click_tracking=True"
                    value = html.escape(click(key), quote=True)
                else:
                    given = values.get(key)
                    value = defaults[key] if given is None else given
                    if "\r" in value:
                        value = _normalise(value)
                    if kind == _ATTR:
                        value = html.escape(value, quote=True)
                    elif kind == _TEXT:
                        value = html.escape(value, quote=False)
                got = done[(kind, key)] = _qp(value)
            return got

        out_html = self._html.parts.copy()
        for i, kind, key in self._html.slots:
            out_html[i] = encoded(kind, key)
        out_text = self._text.parts.copy()
        for i, _, key in self._text.slots:
            out_text[i] = encoded(_RAW, key)  # the text part takes values as they are
        return b"".join(out_text), b"".join(out_html)

    def _header(self, name: str, value: str) -> str:
        """``message.header_line`` for a value that repeats between messages, encoded once."""
        key = (name, value)
        line = self._lines.get(key)
        if line is None:
            if len(self._lines) >= 4096:
                self._lines.clear()
            line = self._lines[key] = header_line(name, value, False)
        return line

    def _head(self, msg: OutgoingMessage) -> bytes:
        """The header block ``message_bytes`` writes for an ASCII-only ``msg``, in its order,
        with its encoders; only the values that differ per recipient are encoded each time."""
        given = {k.lower(): v for k, v in msg.headers.items()}
        header = self._header
        sender = self._senders.get((msg.from_name, msg.from_address, msg.reply_to))
        if sender is None:
            sender = fold_header("From", format_address(msg.from_name, msg.from_address))
            if msg.reply_to:
                sender += fold_header("Reply-To", format_address("", msg.reply_to))
            self._senders[(msg.from_name, msg.from_address, msg.reply_to)] = sender
        parts = [
            header("Date", given.get("date") or format_datetime(datetime.now(UTC))),
            sender,
        ]
        parts.append(fold_header("To", format_address(msg.to_name, msg.to_email)))
        parts.append(header("Subject", msg.subject))
        parts.append(header_line("Message-ID", given.get("message-id") or msg.message_id, False))
        for name, value in extra_headers(msg):
            if name in _PER_RECIPIENT:
                parts.append(header_line(name, value, False))
            else:
                parts.append(header(name, value))
        parts.append(self._mime)
        return "".join(parts).encode("ascii")

    def message(
        self, msg: OutgoingMessage, click: Callable[[str], str] | None
    ) -> bytes | None:
        """The wire form of ``msg``: its headers as ``message_bytes`` writes them, and the
        bodies for ``msg.merge`` (the values ``build_message`` filled it with).

        ``None`` for a message that needs SMTPUTF8 (a non-ASCII address): ``message_bytes``
        writes its UTF-8 headers.
        """
        if uses_smtputf8(msg):
            return None
        text, body_html = self.bodies(msg.merge, click)
        return b"".join((self._head(msg), self._text_head, text, self._html_head, body_html,
                         self._end))


class WireMessage(OutgoingMessage):
    """An ``OutgoingMessage`` whose MIME form is prebuilt in ``raw``.

    ``html`` and ``text`` are computed from the issue only when something reads them (an
    HTTP-API transport does; SMTP and the outbox send ``raw``), so the common path never
    pays for them.
    """

    raw: bytes

    def __init__(
        self, base: OutgoingMessage, raw: bytes, render: Callable[[], tuple[str, str]]
    ) -> None:
        state = dict(vars(base))
        state.pop("html", None)
        state.pop("text", None)
        vars(self).update(state)
        self.raw = raw
        self._render = render
        self._bodies: tuple[str, str] | None = None

    def _parts(self) -> tuple[str, str]:
        if self._bodies is None:
            self._bodies = self._render()
        return self._bodies

    @property
    def html(self) -> str:
        return self._parts()[0]

    @html.setter
    def html(self, value: str) -> None:
        self._bodies = (value, self._parts()[1])

    @property
    def text(self) -> str:
        return self._parts()[1]

    @text.setter
    def text(self, value: str) -> None:
        self._bodies = (self._parts()[0], value)


class StubIssue:
    """What ``build_message`` needs of an issue, minus the body: lets it assemble values,
    links and headers without personalising 50 KB that ``WireIssue`` encodes instead."""

    def __init__(self, issue: CompiledIssue) -> None:
        self.slug = issue.slug
        self.language = issue.language
        self.merge_defaults = issue.merge_defaults
        self._issue = issue

    def personalise(self, values: Mapping[str, str], click: Any = None) -> tuple[str, str]:
        missing = [
            name
            for name in self._issue.fields
            if name not in values and name not in self.merge_defaults
        ]
        if missing:
            raise MergeFieldError(
                f"{self.slug}: no value for merge field {missing[0]!r}",
                hint="pass it for every recipient, or declare a default under merge_fields:",
            )
        return "", ""

    def personalise_subject(self, values: Mapping[str, str]) -> str:
        return self._issue.personalise_subject(values)
