"""SMTP submission: ``smtp://user:password@host:587`` (STARTTLS) or ``smtps://…:465`` (TLS).

Parameters (all optional):

* ``tls=auto`` (default) upgrades with STARTTLS when the server offers it; ``tls=required``
  stops the run if it does not; ``tls=none`` never encrypts. ``smtps://`` is TLS from the
  first byte (RFC 8314 §3.3) and ignores ``tls``.
* ``verify=false`` accepts any certificate: only for a test server with a self-signed one.
  ``cafile=/path/ca.pem`` trusts that CA instead, keeping verification on.
* ``timeout=SECONDS`` bounds every socket operation (connect, each reply, each write).
* ``helo=NAME`` is the name we greet with (default: this machine's FQDN).

One transport holds one connection and reuses it for every message (open one per worker
thread). A connection dropped before the end of a message's data is reopened and that message
retried once; a drop after it (when the server may already have the message, RFC 1047) is
reported as deferred instead of retried here. Per-recipient answers become results (2xx sent,
4xx deferred, 5xx rejected, with the server's words). Whole-run problems raise, and only
before anything in the current ``send`` call was handed to the server: a bad login
(``AuthenticationError``), an unreachable server or a refused sender (``TransportError``).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from pathlib import Path

from ..errors import AuthenticationError, TransportError
from ..message import OutgoingMessage, envelope_address, message_bytes, uses_smtputf8
from .base import RecipientResult, Status, Transport
from .dsn import Dsn

TLS_MODES = ("auto", "required", "none")
PARAMS = frozenset({"tls", "verify", "cafile", "timeout", "helo"})
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}
RESUME_HINT = "the run stopped; run `cohesion-mail send` again to resume where it stopped"
_QUEUE_ID = (
    re.compile(r"queued as ([A-Za-z0-9._-]+)", re.IGNORECASE),  # Postfix
    re.compile(r"\bid=([A-Za-z0-9._-]+)"),  # Exim
)
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


def _command(
    conn: smtplib.SMTP, verb: str, arg: str, options: list[str] | None = None
) -> tuple[int, bytes]:
    """MAIL/RCPT with an address ``envelope_address`` already made bare: smtplib's own
    ``mail()``/``rcpt()`` re-parse it with ``email.utils.parseaddr`` (~20 µs a call, twice per
    message, holding the GIL that the other connections' threads wait for)."""
    conn.putcmd(verb, f"{arg} {' '.join(options)}" if options else arg)
    return conn.getreply()


def _envelope(
    conn: smtplib.SMTP, mail: str, options: list[str], rcpt: str
) -> tuple[tuple[int, bytes], tuple[int, bytes], tuple[int, bytes]]:
    """MAIL, RCPT and DATA, and their three replies.

    Where the server offers PIPELINING (RFC 2920) the three commands go in one write and the
    replies are read after: one round trip instead of three per message. Otherwise one at a
    time, stopping at the first refusal (the later replies then read as 503, never sent).
    """
    not_sent = (503, b"not sent: an earlier command was refused")
    if conn.has_extn("pipelining"):
        line = f"MAIL {mail} {' '.join(options)}" if options else f"MAIL {mail}"
        conn.send(f"{line}\r\nRCPT {rcpt}\r\nDATA\r\n".encode(conn.command_encoding))
        return conn.getreply(), conn.getreply(), conn.getreply()
    first = _command(conn, "mail", mail, options)
    if first[0] != 250:
        return first, not_sent, not_sent
    second = _command(conn, "rcpt", rcpt)
    if second[0] not in (250, 251):
        return first, second, not_sent
    return first, second, conn.docmd("DATA")


def _dot_stuffed(raw: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency: double a dot that starts a line.

    The regex scans every position of a ~50 KB body (about 1 ms, holding the GIL); most
    messages have no line starting with a dot, which a memchr-speed ``in`` test finds first.
    """
    if raw.startswith(b".") or b"\n." in raw:
        return _LEADING_DOT.sub(b"..", raw)
    return raw


class _StopRun(Exception):
    """Internal: a whole-run problem met after some messages of this call were already sent."""


@functools.cache
def _fqdn() -> str:
    return socket.getfqdn()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _words(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}".strip()


def queue_id(resp: bytes | str) -> str:
    """The server's id for the accepted message, when its reply names one."""
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp
    for pattern in _QUEUE_ID:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return ""


class SmtpTransport(Transport):
    """Deliver over one reused SMTP connection, one recipient per message."""

    scheme = "smtp"
    max_batch = 1

    def __init__(
        self,
        host: str,
        port: int,
        *,
        user: str = "",
        password: str = "",
        implicit_tls: bool = False,
        tls: str = "auto",
        verify: bool = True,
        cafile: str | None = None,
        timeout: float = 30.0,
        helo: str | None = None,
    ) -> None:
        if tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {TLS_MODES}")
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.implicit_tls = implicit_tls
        self.tls = tls
        self.verify = verify
        self.cafile = cafile
        self.timeout = timeout
        self.helo = helo
        self.scheme = "smtps" if implicit_tls else "smtp"
        self._conn: smtplib.SMTP | None = None

    @classmethod
    def from_dsn(cls, dsn: Dsn, *, campaign_dir: Path, timeout: float = 30) -> SmtpTransport:
        dsn.check_params(PARAMS)
        if not dsn.host:
            raise dsn.error(
                "no host", hint="write smtp://user@smtp.example.org:587 (password in the env var)"
            )
        tls = dsn.params.get("tls", "auto").lower() or "auto"
        if tls not in TLS_MODES:
            raise dsn.error(f"tls={tls!r} is not one of {', '.join(TLS_MODES)}")
        if dsn.password and not dsn.user:
            raise dsn.error("a password without a user name")
        cafile = dsn.params.get("cafile") or None
        if cafile and not Path(cafile).is_file():
            raise dsn.error(f"cafile {cafile} does not exist")
        return cls(
            dsn.host,
            dsn.port or DEFAULT_PORTS[dsn.scheme],
            user=dsn.user,
            password=dsn.password,
            implicit_tls=dsn.scheme == "smtps",
            tls=tls,
            verify=dsn.flag("verify", True),
            cafile=cafile,
            timeout=dsn.number("timeout", timeout),
            helo=dsn.params.get("helo") or None,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def describe(self) -> str:
        who = f"{self.user}@" if self.user else ""
        if self.implicit_tls:
            how = "TLS"
        else:
            how = {"auto": "STARTTLS when offered", "required": "STARTTLS", "none": "no TLS"}[
                self.tls
            ]
        if (self.implicit_tls or self.tls != "none") and not self.verify:
            how += ", certificate not verified"
        return f"{self.scheme}://{who}{self.where} ({how})"

    # -- connection ----------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cafile)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _tls_error(self, exc: ssl.SSLError) -> TransportError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return TransportError(
                f"the TLS certificate of {self.where} cannot be verified: "
                f"{exc.verify_message or exc.reason}",
                hint="add ?cafile=/path/to/ca.pem to trust its CA; ?verify=false only for a "
                "test server with a self-signed certificate",
            )
        hint = None
        if self.implicit_tls:
            hint = (
                "smtps:// is TLS from the first byte (usually port 465); for port 587 use smtp://"
            )
        return TransportError(f"TLS with {self.where} failed: {exc.reason or exc}", hint=hint)

    def _connection(self) -> smtplib.SMTP:
        """The open connection, or a new one: greeted, encrypted as asked, logged in."""
        if self._conn is not None:
            return self._conn
        ctx = self._ssl_context() if self.implicit_tls or self.tls != "none" else None
        helo = self.helo or _fqdn()
        try:
            if self.implicit_tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, local_hostname=helo, timeout=self.timeout, context=ctx
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, local_hostname=helo, timeout=self.timeout)
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from exc
        except smtplib.SMTPConnectError as exc:
            raise TransportError(
                f"{self.where} refused the session: {_words(exc.smtp_code, exc.smtp_error)}",
                hint=RESUME_HINT,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            reason = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
                reason = f"no answer within {self.timeout:g}s"
            raise TransportError(f"cannot reach {self.where}: {reason}", hint=RESUME_HINT) from exc
        try:
            self._setup(conn, ctx)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _setup(self, conn: smtplib.SMTP, ctx: ssl.SSLContext | None) -> None:
        try:
            conn.ehlo_or_helo_if_needed()
            encrypted = self.implicit_tls
            if not self.implicit_tls and self.tls != "none":
                if conn.has_extn("starttls"):
                    conn.starttls(context=ctx)
                    conn.ehlo()
                    encrypted = True
                elif self.tls == "required":
                    raise TransportError(
                        f"{self.where} does not offer STARTTLS and the transport says tls=required",
                        hint="use smtps:// if the server speaks TLS from the start (port 465)",
                    )
            if self.user:
                if not encrypted and self.tls != "none" and not _is_loopback(self.host):
                    raise TransportError(
                        f"{self.where} offers no encryption; refusing to send the password for "
                        f"{self.user!r} in clear text",
                        hint="use smtps://, a server with STARTTLS, or add ?tls=none to accept it",
                    )
                conn.login(self.user, self._password)
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthenticationError(
                f"{self.where} failed to authenticate user {self.user!r}: "
                f"{_words(exc.smtp_code, exc.smtp_error)}",
                hint="check the user name and password in COHESION_MAIL_TRANSPORT; "
                "nothing was sent",
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            after = " (servers often offer it only after STARTTLS)" if self.tls == "none" else ""
            raise TransportError(
                f"{self.where} does not offer AUTH{after}",
                hint="drop user:password from the DSN if the server needs no login, "
                "or use its submission port (587 or 465)",
            ) from exc
        except ssl.SSLError as exc:
            raise self._tls_error(exc) from exc
        except smtplib.SMTPResponseException as exc:
            raise TransportError(
                f"{self.where} refused the session: {_words(exc.smtp_code, exc.smtp_error)}",
                hint=RESUME_HINT,
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(
                f"lost the connection to {self.where} while opening the session: {exc}",
                hint=RESUME_HINT,
            ) from exc

    def _drop(self) -> None:
        """Forget the connection without a polite QUIT (it is broken or the server said 421)."""
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            finally:
                self._drop()

    # -- sending -------------------------------------------------------------------------

    def send(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        results: list[RecipientResult] = []
        for i, msg in enumerate(messages):
            try:
                results.append(self._send_one(msg))
            except TransportError as exc:
                if not results:
                    raise
                # Keep what was already sent; the next call meets the problem and raises.
                self._drop()
                results.extend(
                    RecipientResult(m.delivery_id, m.to_email, Status.DEFERRED, detail=exc.message)
                    for m in messages[i:]
                )
                break
        return results

    def _result(self, msg: OutgoingMessage, status: Status, detail: str) -> RecipientResult:
        return RecipientResult(msg.delivery_id, msg.to_email, status, detail=detail)

    def _answer(self, msg: OutgoingMessage, code: int, resp: bytes, step: str) -> RecipientResult:
        """A non-2xx answer as a result: 4xx deferred, 5xx rejected, with the server's words."""
        words = f"{self.where} answered {step}: {_words(code, resp)}"
        if code == 421:  # RFC 5321 §3.8: the server is closing the channel
            self._drop()
        else:
            self._rset()
        if 500 <= code < 600:
            return self._result(msg, Status.REJECTED, words)
        return self._result(msg, Status.DEFERRED, words)

    def _rset(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _send_one(self, msg: OutgoingMessage) -> RecipientResult:
        sender = envelope_address(msg.from_address)
        rcpt = envelope_address(msg.to_email)
        utf8 = uses_smtputf8(msg)
        data = _dot_stuffed(message_bytes(msg)) + b".\r\n"
        last: Exception | None = None
        for _attempt in range(2):
            conn = self._connection()
            if utf8 and not conn.has_extn("smtputf8"):
                return self._result(
                    msg,
                    Status.FAILED,
                    f"{self.where} does not offer SMTPUTF8, needed for the non-ASCII address "
                    f"{rcpt if not rcpt.isascii() else sender}; not sent",
                )
            handed_over = False
            try:
                opts = []
                if utf8:
                    opts.append("SMTPUTF8")
                    if conn.has_extn("8bitmime"):
                        opts.append("BODY=8BITMIME")
                if conn.has_extn("size"):
                    opts.append(f"SIZE={len(data)}")
                if utf8:
                    conn.command_encoding = "utf-8"  # as smtplib's mail() does for SMTPUTF8
                (code, resp), (rcode, rresp), (dcode, dresp) = _envelope(
                    conn, f"FROM:<{sender}>", opts, f"TO:<{rcpt}>"
                )
                if dcode == 354 and (code != 250 or rcode not in (250, 251)):
                    # A pipelined DATA the server should have refused: end it empty (RFC 2920).
                    conn.send(b".\r\n")
                    conn.getreply()
                if code != 250:
                    return self._sender_refused(msg, sender, code, resp)
                if rcode not in (250, 251):
                    return self._answer(msg, rcode, rresp, f"RCPT TO:<{rcpt}>")
                if dcode != 354:
                    return self._answer(msg, dcode, dresp, "DATA")
                conn.send(data)
                handed_over = True
                code, resp = conn.getreply()
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()
                if handed_over:
                    return self._result(
                        msg,
                        Status.DEFERRED,
                        f"connection to {self.where} lost after the message was sent, before the "
                        f"server confirmed it; it may have been delivered ({exc or 'closed'})",
                    )
                last = exc
                continue
            if code != 250:
                return self._answer(msg, code, resp, "after the message data")
            return RecipientResult(
                msg.delivery_id,
                msg.to_email,
                Status.SENT,
                provider_message_id=queue_id(resp) or msg.message_id,
                detail=_words(code, resp),
            )
        return self._result(
            msg, Status.DEFERRED, f"connection to {self.where} lost twice: {last or 'closed'}"
        )

    def _sender_refused(
        self, msg: OutgoingMessage, sender: str, code: int, resp: bytes
    ) -> RecipientResult:
        """MAIL FROM refused: per message when temporary or too big; else the whole run."""
        if code == 530:
            self._drop()
            raise AuthenticationError(
                f"{self.where} requires authentication: {_words(code, resp)}",
                hint="put the login in the DSN: smtp://USER:PASSWORD@host:port "
                "(in COHESION_MAIL_TRANSPORT); nothing was sent",
            )
        if code == 552 or not 500 <= code < 600:  # 552: message too large (RFC 1870)
            return self._answer(msg, code, resp, f"MAIL FROM:<{sender}>")
        self._rset()
        raise TransportError(
            f"{self.where} refused the sender {sender}: {_words(code, resp)}",
            hint="check [sender] from_address in cohesion-mail.toml: the server may only accept "
            f"addresses this login may send as; {RESUME_HINT}",
        )
