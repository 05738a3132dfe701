"""Shared fixtures: a real SMTP server (aiosmtpd) on 127.0.0.1, a TLS certificate, a free port.

``smtp_server`` is a plain server that accepts everything and records it. ``smtp_server_factory``
starts variants: ``auth=("user", "pw")``, ``starttls=True`` (``require_starttls=True``),
``implicit_tls=True``, ``smtputf8=False``, and ``faults=Faults(seed=…, …)`` for a server that
answers 421/451/550 at random and drops connections (``lost_reply`` also keeps a message and
then drops before the 250). Every server is stopped after the test. ``message_factory`` makes
real messages with ``build_message`` from a small compiled issue (``sample_issue``).

    server = smtp_server_factory(starttls=True, auth=("ann", "secret"))
    transport = open_transport(server.dsn(), campaign_dir=tmp_path)
    ...
    server.received[0].message["Subject"]
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import random
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from cohesion_mail.config import ListInfo, Sender, Settings
from cohesion_mail.message import OutgoingMessage, Recipient, build_message
from cohesion_mail.render.personalise import CompiledIssue, sentinel
from cohesion_mail.tracking.tokens import Links, Signer

HOST = "127.0.0.1"


def pytest_configure(config: pytest.Config) -> None:
    # Our AUTH tests without TLS run on loopback on purpose; aiosmtpd warns about it.
    config.addinivalue_line("filterwarnings", "ignore:Requiring AUTH while not requiring TLS")


# -- a small compiled issue and messages built from it -----------------------------------------

_NONCE = "t3stn0nce0"


def _f(name: str) -> str:
    return sentinel(_NONCE, name)


@pytest.fixture
def sample_issue() -> CompiledIssue:
    """A tiny compiled issue with a greeting, one trackable link and the three link fields."""
    html = (
        "<!doctype html><html><body>"
        f"<p>Dear {_f('first_name')},</p>"
        '<p><a href="https://example.org/story?id=1&amp;x=2">Read the story</a></p>'
        f'<p><a href="{_f("web_version_url")}">View in browser</a> · '
        f'<a href="{_f("unsubscribe_url")}">Unsubscribe</a></p>'
        f'<img src="{_f("open_pixel_url")}" width="1" height="1" alt="">'
        "</body></html>"
    )
    text = (
        f"Dear {_f('first_name')},\n\nRead the story: https://example.org/story?id=1&x=2\n\n"
        f"View in browser: {_f('web_version_url')}\nUnsubscribe: {_f('unsubscribe_url')}\n"
    )
    return CompiledIssue(
        slug="2020-02-cohes3ion",
        subject="Cohesion news for *|first_name|*",
        preheader="",
        language="en",
        html=html,
        text=text,
        nonce=_NONCE,
    )


@pytest.fixture
def sample_settings(tmp_path: Path) -> Settings:
    """Settings with a sender, a list (with a mailto unsubscribe) and an https base URL."""
    return Settings(
        root=tmp_path,
        sender=Sender("Cohesion News", "news@cohesion.example.org", "editor@cohesion.example.org"),
        list=ListInfo(
            name="Cohesion Newsletter",
            id="cohesion-news.example.org",
            unsubscribe_mailto="unsubscribe@cohesion.example.org",
        ),
        base_url="https://news.example.org",
    )


@pytest.fixture
def links() -> Links:
    """Link maker with a fixed test secret."""
    return Links("https://news.example.org", Signer(b"test-secret"))


@pytest.fixture
def message_factory(
    sample_issue: CompiledIssue, sample_settings: Settings, links: Links
) -> Callable[..., OutgoingMessage]:
    """``make(delivery_id, email, name, **options)`` → a message built by ``build_message``."""

    def make(
        delivery_id: int = 1,
        email: str = "ann@example.com",
        name: str = "Ann Example",
        *,
        campaign_id: int = 7,
        values: dict[str, str] | None = None,
        language: str = "",
        is_proof: bool = False,
        click_tracking: bool = True,
        open_tracking: bool = True,
    ) -> OutgoingMessage:
        merge = {"first_name": name.split(" ")[0] if name else "reader"}
        merge.update(values or {})
        recipient = Recipient(
            delivery_id, campaign_id, email, name, merge, language=language, is_proof=is_proof
        )
        return build_message(
            sample_issue,
            sample_settings,
            recipient,
            links,
            click_tracking=click_tracking,
            open_tracking=open_tracking,
        )

    return make


# -- TLS ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsCert:
    """A self-signed certificate for ``localhost`` and ``127.0.0.1`` (also its own CA)."""

    certfile: Path
    keyfile: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certfile, self.keyfile)
        return ctx


def _make_cert(folder: Path) -> TlsCert:
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        import datetime as dt
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if not shutil.which("openssl"):
            pytest.skip("needs the cryptography package or the openssl command")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj",
             "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        return TlsCert(cert, key)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return TlsCert(cert, key)


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert:
    """A self-signed certificate, made once per test run."""
    return _make_cert(tmp_path_factory.mktemp("tls"))


# -- the server --------------------------------------------------------------------------------


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    smtp_utf8: bool
    peer: tuple[str, int]  # the client's address: the same port means the same connection

    @property
    def message(self) -> EmailMessage:
        if self.smtp_utf8:  # the bytes parser would read UTF-8 headers as ASCII
            msg = email.message_from_string(self.data.decode("utf-8"), policy=email.policy.SMTPUTF8)
        else:
            msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


def drop_connection(server: SMTP) -> str:
    """Cut the client off mid-session (in a handler hook); returns a reply nobody will read."""
    transport = cast(asyncio.Transport, server.transport)
    transport.abort()  # unlike close(), nothing more is written
    return "421 4.4.2 (dropped)"


class RecordingHandler:
    """Accepts every message and keeps it; answers with a Postfix-style queue id."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    def record(self, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        with self.lock:
            self.received.append(
                Received(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=data,
                    mail_options=list(envelope.mail_options),
                    smtp_utf8=envelope.smtp_utf8,
                    peer=tuple(session.peer or ("", 0)),  # type: ignore[arg-type]
                )
            )
            return f"Q{len(self.received):06d}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return f"250 2.0.0 Ok: queued as {self.record(session, envelope)}"


@dataclass
class Faults:
    """Probabilities of each fault at RCPT and at the end of DATA, drawn from a seeded RNG.

    ``drop`` closes the connection without an answer (the message is not kept);
    ``lost_reply`` keeps the message and then drops the connection before the 250, the case
    where a client cannot know the message was delivered.
    """

    seed: int = 0
    closing: float = 0.0  # 421
    temporary: float = 0.0  # 451
    permanent: float = 0.0  # 550
    drop: float = 0.0
    lost_reply: float = 0.0  # DATA only


class FaultyHandler(RecordingHandler):
    """A ``RecordingHandler`` that misbehaves as ``Faults`` says; ``injected`` lists what it did."""

    def __init__(self, faults: Faults) -> None:
        super().__init__()
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.injected: list[tuple[str, str, str]] = []  # (stage, fault, recipient)

    def _roll(self, stage: str, rcpt: str) -> str:
        f = self.faults
        kinds = [("421", f.closing), ("451", f.temporary), ("550", f.permanent), ("drop", f.drop)]
        if stage == "data":
            kinds.append(("lost_reply", f.lost_reply))
        with self.lock:
            x = self.rng.random()
            for kind, p in kinds:
                if x < p:
                    self.injected.append((stage, kind, rcpt))
                    return kind
                x -= p
        return ""

    @staticmethod
    def _answer(server: SMTP, fault: str) -> str:
        if fault in ("drop", "lost_reply"):
            return drop_connection(server)
        return {
            "421": "421 4.3.2 Service shutting down, try again later",
            "451": "451 4.3.0 Temporary local problem, try again later",
            "550": "550 5.1.1 Recipient address rejected: User unknown",
        }[fault]

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self._roll("rcpt", address)
        if fault:
            return self._answer(server, fault)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpt = ",".join(envelope.rcpt_tos)
        fault = self._roll("data", rcpt)
        if fault == "lost_reply":
            self.record(session, envelope)
        if fault:
            return self._answer(server, fault)
        return await super().handle_DATA(server, session, envelope)


class _Controller(Controller):
    """A Controller that may listen on port 0 (the OS picks a free port)."""

    def _trigger_server(self) -> None:
        server = cast(asyncio.Server, self.server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class SmtpServer:
    """A running aiosmtpd server and what it received."""

    controller: Controller
    handler: RecordingHandler
    auth: tuple[str, str] | None = None
    starttls: bool = False
    implicit_tls: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    host: str = HOST

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def dsn(self, *, user: str | None = None, password: str | None = None, **params: str) -> str:
        """A DSN for this server: its login (unless overridden), TLS settings that work with it."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        if self.auth:
            user = self.auth[0] if user is None else user
            password = self.auth[1] if password is None else password
        login = ""
        if user:
            login = quote(user, safe="")
            if password is not None:
                login += ":" + quote(password, safe="")
            login += "@"
        if self.implicit_tls or self.starttls:
            params.setdefault("verify", "false")
        else:
            params.setdefault("tls", "none")
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"{scheme}://{login}{self.host}:{self.port}" + (f"?{query}" if query else "")

    def recipients(self) -> list[str]:
        """Every recipient of every received message, in order."""
        return [r for m in self.received for r in m.rcpt_tos]

    def stop(self) -> None:
        if self.controller._thread is not None:
            self.controller.stop()


def _authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (
            data.login.decode() == user and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535

    return check


def start_smtp_server(
    *,
    tls_cert: TlsCert | None = None,
    auth: tuple[str, str] | None = None,
    starttls: bool = False,
    require_starttls: bool = False,
    implicit_tls: bool = False,
    smtputf8: bool = True,
    faults: Faults | None = None,
    handler: RecordingHandler | None = None,
) -> SmtpServer:
    """Start an aiosmtpd server on 127.0.0.1 and a free port (see the module docstring)."""
    if (starttls or implicit_tls) and tls_cert is None:
        raise ValueError("TLS needs tls_cert")
    if handler is None:
        handler = FaultyHandler(faults) if faults else RecordingHandler()
    kwargs: dict[str, Any] = {
        "enable_SMTPUTF8": smtputf8,
        "auth_require_tls": bool(starttls or implicit_tls),
        "server_hostname": "localhost",
    }
    if starttls:
        assert tls_cert is not None
        kwargs["tls_context"] = tls_cert.server_context()
        kwargs["require_starttls"] = require_starttls
    if implicit_tls:
        assert tls_cert is not None
        kwargs["ssl_context"] = tls_cert.server_context()
    if auth:
        kwargs["authenticator"] = _authenticator(*auth)
        kwargs["auth_required"] = True
    controller = _Controller(handler, hostname=HOST, port=0, **kwargs)
    controller.start()
    return SmtpServer(controller, handler, auth, starttls, implicit_tls, kwargs)


@pytest.fixture
def smtp_server_factory(tls_cert: TlsCert) -> Iterator[Callable[..., SmtpServer]]:
    """Start servers with options (``auth``, ``starttls``, ``implicit_tls``, ``smtputf8``,
    ``faults``, ``handler``); all are stopped after the test."""
    servers: list[SmtpServer] = []

    def start(**options: Any) -> SmtpServer:
        server = start_smtp_server(tls_cert=tls_cert, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server(smtp_server_factory: Callable[..., SmtpServer]) -> SmtpServer:
    """A plain SMTP server on 127.0.0.1 that accepts and records every message."""
    return smtp_server_factory()


@pytest.fixture
def unused_port() -> int:
    """A port on 127.0.0.1 where nothing listens (a server that is down)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])
