"""DSNs, the outbox, and SMTP against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from conftest import (
    Faults,
    FaultyHandler,
    RecordingHandler,
    SmtpServer,
    TlsCert,
    drop_connection,
)

from cohesion_mail.errors import AuthenticationError, ConfigError, TransportError
from cohesion_mail.message import OutgoingMessage
from cohesion_mail.transports import TRANSPORTS, describe_dsn, open_transport, parse_dsn, redact
from cohesion_mail.transports.base import Status
from cohesion_mail.transports.outbox import OutboxTransport
from cohesion_mail.transports.smtp import SmtpTransport

Make = Callable[..., OutgoingMessage]
StartServer = Callable[..., SmtpServer]


# -- DSNs ---------------------------------------------------------------------------------------


def test_parse_dsn_decodes_login_and_params() -> None:
    dsn = parse_dsn("smtp://ann%40example.org:p%40ss%2Fw:rd@SMTP.Example.org:2525?tls=required")
    assert (dsn.scheme, dsn.user, dsn.password) == ("smtp", "ann@example.org", "p@ss/w:rd")
    assert (dsn.host, dsn.port, dsn.params) == ("smtp.example.org", 2525, {"tls": "required"})
    assert "p@ss" not in repr(dsn)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("smtp://ann:s3cret@host:587", "smtp://ann:***@host:587"),
        ("smtp://ann@host", "smtp://ann@host"),
        ("smtps://ann:pa/ss@host:465", "smtps://ann:***@host:465"),
        ("postmark://SERVER-TOKEN@default", "postmark://***@default"),
        ("mailgun://key-123@mg.example.org?region=eu", "mailgun://***@mg.example.org?region=eu"),
        ("sendgrid://default?api_key=SG.abc", "sendgrid://default?api_key=***"),
        ("outbox:///tmp/out", "outbox:///tmp/out"),
    ],
)
def test_redact_hides_every_secret(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown
    assert describe_dsn(dsn) == shown


@pytest.mark.parametrize(
    ("dsn", "words"),
    [
        ("smtp://ann:s3cret@host:notaport", "host or port"),
        ("smtp://ann:pa?ss@host:25", "host or port"),
        ("smtp://ann:s3cret@host:25#x", "'#'"),
        ("smtp://host?tls=a&tls=b", "given twice"),
        ("host:25", "not a DSN"),
        ("1x://host", "not a valid scheme"),
    ],
)
def test_bad_dsn_is_a_config_error_without_the_password(dsn: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dsn(dsn)
    assert words in str(info.value)
    assert "s3cret" not in str(info.value) and "pa?ss" not in str(info.value)


def test_unknown_scheme_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        open_transport("carrier-pigeon://ann:s3cret@loft", campaign_dir=tmp_path)
    text = str(info.value)
    assert "carrier-pigeon" in text and "s3cret" not in text
    assert all(f"{scheme}://" in text for scheme in ("outbox", "smtp", "smtps", "postmark"))
    assert {"postmark", "sendgrid", "mailgun"} <= set(TRANSPORTS)


@pytest.mark.parametrize(
    ("dsn", "words"),
    [
        ("smtp://ann:s3cret@host?tsl=required", "unknown parameter(s) tsl"),
        ("smtp://host?tls=maybe", "tls='maybe'"),
        ("smtp://host?verify=perhaps", "verify='perhaps'"),
        ("smtp://host?timeout=-1", "timeout='-1'"),
        ("smtp://:s3cret@host", "password without a user"),
        ("smtp://", "no host"),
        ("smtp://host?cafile=/no/such/ca.pem", "does not exist"),
        ("outbox://?x=1", "unknown parameter(s) x"),
    ],
)
def test_bad_transport_params(tmp_path: Path, dsn: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_transport(dsn, campaign_dir=tmp_path)
    assert words in str(info.value) and "s3cret" not in str(info.value)


def test_smtp_defaults_and_description(tmp_path: Path) -> None:
    smtp = open_transport("smtp://ann:s3cret@mail.example.org", campaign_dir=tmp_path)
    smtps = open_transport("smtps://mail.example.org?verify=false", campaign_dir=tmp_path)
    assert isinstance(smtp, SmtpTransport) and isinstance(smtps, SmtpTransport)
    assert (smtp.port, smtps.port, smtp.timeout) == (587, 465, 30)
    assert smtp.describe() == "smtp://ann@mail.example.org:587 (STARTTLS when offered)"
    assert smtps.describe() == "smtps://mail.example.org:465 (TLS, certificate not verified)"
    fast = open_transport("smtp://h?timeout=2.5", campaign_dir=tmp_path, timeout=9)
    assert isinstance(fast, SmtpTransport) and fast.timeout == 2.5


# -- outbox -------------------------------------------------------------------------------------


def read_eml(path: Path) -> email.message.EmailMessage:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    return msg


def test_outbox_writes_one_parseable_eml_per_message(tmp_path: Path, message_factory: Make) -> None:
    campaign = tmp_path / "campaign"
    messages = [message_factory(1), message_factory(2, "bob+news@example.com", "Bob")]
    with open_transport("outbox://", campaign_dir=campaign) as outbox:
        results = outbox.send(messages)
    assert [r.status for r in results] == [Status.SENT, Status.SENT]
    files = sorted(p.name for p in (campaign / "outbox").iterdir())
    assert files == ["1-ann@example.com.eml", "2-bob+news@example.com.eml"]
    parsed = read_eml(campaign / "outbox" / "2-bob+news@example.com.eml")
    assert parsed["To"] == "Bob <bob+news@example.com>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert results[1].provider_message_id == messages[1].message_id
    assert "2-bob+news@example.com.eml" in results[1].detail


def test_outbox_rewrites_a_retried_delivery_and_keeps_proofs_apart(
    tmp_path: Path, message_factory: Make
) -> None:
    outbox = open_transport(f"outbox://{tmp_path}/out", campaign_dir=tmp_path)
    outbox.send([message_factory(1)])
    outbox.send([message_factory(1), message_factory(3, "../../etc/passwd", is_proof=True)])
    assert sorted(os.listdir(tmp_path / "out")) == ["1-ann@example.com.eml", "proofs"]
    assert os.listdir(tmp_path / "out" / "proofs") == ["3-etc_passwd.eml"]
    assert read_eml(tmp_path / "out" / "proofs" / "3-etc_passwd.eml")["X-Cohesion-Proof"] == "yes"


def test_outbox_relative_dir_is_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outbox = open_transport("outbox://mail/my%20out", campaign_dir=tmp_path / "c")
    assert isinstance(outbox, OutboxTransport)
    assert outbox.directory == tmp_path / "mail" / "my out"
    assert outbox.describe() == f"outbox {tmp_path / 'mail' / 'my out'}"
    absolute = open_transport("outbox:///srv/out", campaign_dir=tmp_path)
    assert isinstance(absolute, OutboxTransport) and absolute.directory == Path("/srv/out")


def test_outbox_write_error_fails_that_message_only(tmp_path: Path, message_factory: Make) -> None:
    outbox = open_transport("outbox://", campaign_dir=tmp_path)
    (tmp_path / "outbox" / "1-ann@example.com.eml").mkdir(parents=True)  # blocks the rename
    results = outbox.send([message_factory(1), message_factory(2, "bob@example.com")])
    assert [r.status for r in results] == [Status.FAILED, Status.SENT]
    assert "cannot write to the outbox" in results[0].detail
    assert not [p for p in (tmp_path / "outbox").iterdir() if p.name.endswith(".tmp")]


def test_outbox_folder_that_cannot_exist_stops_the_run(
    tmp_path: Path, message_factory: Make
) -> None:
    (tmp_path / "blocker").write_text("a file, not a folder")
    outbox = open_transport(f"outbox://{tmp_path}/blocker/out", campaign_dir=tmp_path)
    with pytest.raises(TransportError, match="cannot create the outbox folder"):
        outbox.send([message_factory(1)])


# -- SMTP: delivery -----------------------------------------------------------------------------


def send_all(dsn: str, messages: list[OutgoingMessage], tmp_path: Path) -> list:
    with open_transport(dsn, campaign_dir=tmp_path) as transport:
        return [r for m in messages for r in transport.send([m])]


def test_smtp_messages_arrive_intact_over_one_connection(
    smtp_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    messages = [message_factory(i, f"reader{i}@example.com", f"Reader {i}") for i in (1, 2, 3)]
    results = send_all(smtp_server.dsn(), messages, tmp_path)
    assert [r.status for r in results] == [Status.SENT] * 3
    assert [r.provider_message_id for r in results] == ["Q000001", "Q000002", "Q000003"]
    assert results[0].detail == "250 2.0.0 Ok: queued as Q000001"
    got = smtp_server.received
    assert [m.rcpt_tos for m in got] == [[f"reader{i}@example.com"] for i in (1, 2, 3)]
    assert {m.mail_from for m in got} == {"news@cohesion.example.org"}
    assert len({m.peer for m in got}) == 1  # one connection, reused
    for sent, received in zip(messages, got, strict=True):
        parsed = received.message
        for name, value in sent.headers.items():
            assert parsed[name] == value
        assert parsed["To"] == f"{sent.to_name} <{sent.to_email}>"
        text, html = (p.get_content().replace("\r\n", "\n") for p in parsed.iter_parts())
        assert (text, html) == (
            sent.text if sent.text.endswith("\n") else sent.text + "\n",
            sent.html + "\n",
        )
    unsubscribe = {m.message["List-Unsubscribe"] for m in got}
    assert len(unsubscribe) == 3  # per-recipient links


def test_smtp_leading_dots_and_non_ascii_survive(
    smtp_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    msg = message_factory(1, "zoe@example.com", "Zoë Ñúñez")
    msg.text = ".\n..two dots\n.\nGrüße\n"
    msg.subject = "Kohäsion: Ausgabe Februar"
    send_all(smtp_server.dsn(), [msg], tmp_path)
    parsed = smtp_server.received[0].message
    assert parsed["Subject"] == "Kohäsion: Ausgabe Februar"
    body = parsed.get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == msg.text


def test_starttls_with_self_signed_certificate(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path, tls_cert: TlsCert
) -> None:
    server = smtp_server_factory(starttls=True, require_starttls=True, auth=("ann", "pw"))
    assert send_all(server.dsn(verify="false"), [message_factory(1)], tmp_path)[0].status == "sent"
    with_ca = server.dsn(verify="true", cafile=str(tls_cert.certfile))
    assert send_all(with_ca, [message_factory(2)], tmp_path)[0].status == "sent"
    with pytest.raises(TransportError) as info:
        send_all(server.dsn(verify="true"), [message_factory(3)], tmp_path)
    assert f"certificate of 127.0.0.1:{server.port}" in str(info.value)
    assert "verify=false" in str(info.value)
    assert len(server.received) == 2


def test_implicit_tls(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    server = smtp_server_factory(implicit_tls=True)
    assert server.dsn().startswith("smtps://")
    assert send_all(server.dsn(), [message_factory(1)], tmp_path)[0].status == "sent"
    assert len(server.received) == 1


def test_tls_required_without_starttls_stops_clearly(
    smtp_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    with pytest.raises(TransportError) as info:
        send_all(smtp_server.dsn(tls="required"), [message_factory(1)], tmp_path)
    assert f"127.0.0.1:{smtp_server.port} does not offer STARTTLS" in str(info.value)
    assert smtp_server.received == []


def test_wrong_password_is_an_authentication_error(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    server = smtp_server_factory(auth=("ann", "right"))
    with pytest.raises(AuthenticationError) as info:
        send_all(server.dsn(password="wr0ng-s3cret"), [message_factory(1)], tmp_path)
    text = str(info.value)
    assert f"127.0.0.1:{server.port} failed to authenticate user 'ann'" in text
    assert "wr0ng-s3cret" not in text and "535" in text
    assert server.received == []


def test_missing_login_is_an_authentication_error(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    server = smtp_server_factory(auth=("ann", "right"))
    with pytest.raises(AuthenticationError, match="requires authentication"):
        send_all(f"smtp://127.0.0.1:{server.port}?tls=none", [message_factory(1)], tmp_path)


def test_server_down_stops_the_run_with_host_and_port(
    unused_port: int, message_factory: Make, tmp_path: Path
) -> None:
    with pytest.raises(TransportError) as info:
        send_all(f"smtp://127.0.0.1:{unused_port}", [message_factory(1)], tmp_path)
    text = str(info.value)
    assert f"cannot reach 127.0.0.1:{unused_port}" in text
    assert "cohesion-mail send" in text and "resume" in text


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield int(s.getsockname()[1])


def test_server_that_never_answers_times_out(
    silent_listener: int, message_factory: Make, tmp_path: Path
) -> None:
    with pytest.raises(TransportError) as info:
        send_all(f"smtp://127.0.0.1:{silent_listener}?timeout=0.3", [message_factory(1)], tmp_path)
    assert f"cannot reach 127.0.0.1:{silent_listener}: no answer within 0.3s" in str(info.value)


# -- SMTP: per-recipient answers ------------------------------------------------------------------


class ScriptedHandler(RecordingHandler):
    """Answers RCPT by the local part: ``later@`` 451, ``gone@`` 550, ``drop-once@`` drops the
    first connection, ``lost@`` keeps the message but drops before the 250, ``close@`` 421."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.split("@")[0]
        if local == "later":
            return "451 4.7.1 Greylisted, try again in 5 minutes"
        if local == "gone":
            return "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown"
        if local == "close":
            return "421 4.7.0 Too many messages on this connection"
        if local == "drop-once" and not self.dropped:
            self.dropped = True
            return drop_connection(server)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if envelope.rcpt_tos[0].startswith("lost@"):
            self.record(session, envelope)
            return drop_connection(server)
        return await super().handle_DATA(server, session, envelope)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("forbidden@"):
            return "553 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@pytest.fixture
def scripted_server(smtp_server_factory: StartServer) -> SmtpServer:
    """A server that answers each recipient as ``ScriptedHandler`` says."""
    return smtp_server_factory(handler=ScriptedHandler())


def test_4xx_defers_and_5xx_rejects_with_the_servers_words(
    scripted_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    emails = ["later@example.com", "gone@example.com", "ok@example.com"]
    results = send_all(
        scripted_server.dsn(), [message_factory(i, e) for i, e in enumerate(emails)], tmp_path
    )
    assert [r.status for r in results] == [Status.DEFERRED, Status.REJECTED, Status.SENT]
    assert "451 4.7.1 Greylisted, try again in 5 minutes" in results[0].detail
    assert "550 5.1.1 <gone@example.com>: Recipient address rejected" in results[1].detail
    assert f"127.0.0.1:{scripted_server.port}" in results[1].detail
    assert scripted_server.recipients() == ["ok@example.com"]
    assert len({m.peer for m in scripted_server.received}) == 1  # RSET, same connection


def test_421_defers_and_the_next_message_reconnects(
    scripted_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    results = send_all(
        scripted_server.dsn(),
        [
            message_factory(1, "a@example.com"),
            message_factory(2, "close@example.com"),
            message_factory(3, "b@example.com"),
        ],
        tmp_path,
    )
    assert [r.status for r in results] == [
        Status.DEFERRED if i == 1 else Status.SENT for i in range(3)
    ]
    assert "421 4.7.0" in results[1].detail
    assert len({m.peer for m in scripted_server.received}) == 2


def test_dropped_connection_is_reopened_and_the_message_retried_once(
    scripted_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    results = send_all(
        scripted_server.dsn(),
        [message_factory(1, "a@example.com"), message_factory(2, "drop-once@example.com")],
        tmp_path,
    )
    assert [r.status for r in results] == [Status.SENT, Status.SENT]
    assert scripted_server.recipients() == ["a@example.com", "drop-once@example.com"]
    assert len({m.peer for m in scripted_server.received}) == 2


def test_lost_reply_after_data_is_deferred_not_resent(
    scripted_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    results = send_all(
        scripted_server.dsn(),
        [message_factory(1, "lost@example.com"), message_factory(2, "b@example.com")],
        tmp_path,
    )
    assert [r.status for r in results] == [Status.DEFERRED, Status.SENT]
    assert "may have been delivered" in results[0].detail
    assert scripted_server.recipients() == ["lost@example.com", "b@example.com"]  # once each


def test_refused_sender_stops_the_run(
    scripted_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    msg = message_factory(1)
    msg.from_address = "forbidden@example.org"
    with pytest.raises(TransportError) as info:
        send_all(scripted_server.dsn(), [msg], tmp_path)
    assert "refused the sender forbidden@example.org: 553 5.7.1" in str(info.value)
    assert "from_address" in str(info.value)


class DieAfterFirstHandler(RecordingHandler):
    """Accepts one message, then the whole server goes away (listener closed, link dropped)."""

    server: SmtpServer | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        queue = self.record(session, envelope)
        await server.push(f"250 2.0.0 Ok: queued as {queue}")
        assert self.server is not None and self.server.controller.server is not None
        self.server.controller.server.close()
        return drop_connection(server)


def test_server_lost_mid_batch_keeps_earlier_results(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    handler = DieAfterFirstHandler()
    server = smtp_server_factory(handler=handler)
    handler.server = server
    transport = open_transport(server.dsn(), campaign_dir=tmp_path)
    batch = [message_factory(i, f"r{i}@example.com") for i in (1, 2, 3)]
    results = transport.send(batch)
    assert [r.status for r in results] == [Status.SENT, Status.DEFERRED, Status.DEFERRED]
    assert f"cannot reach 127.0.0.1:{server.port}" in results[1].detail
    with pytest.raises(TransportError):  # the next call stops the run
        transport.send(batch[1:])
    transport.close()


def test_faulty_server_every_recipient_sent_once_or_rejected(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    faults = Faults(seed=3, closing=0.1, temporary=0.15, permanent=0.05, drop=0.1)
    server = smtp_server_factory(faults=faults)
    pending = {f"r{i}@example.com": message_factory(i, f"r{i}@example.com") for i in range(60)}
    final: dict[str, Status] = {}
    with open_transport(server.dsn(), campaign_dir=tmp_path) as transport:
        for _round in range(30):
            for addr, msg in list(pending.items()):
                [result] = transport.send([msg])
                if result.status is not Status.DEFERRED:
                    final[addr] = result.status
                    del pending[addr]
            if not pending:
                break
    assert not pending
    sent = [a for a, s in final.items() if s is Status.SENT]
    assert sorted(server.recipients()) == sorted(sent)  # exactly once each
    assert all(s in (Status.SENT, Status.REJECTED) for s in final.values())
    assert isinstance(server.handler, FaultyHandler)
    assert {kind for _, kind, _ in server.handler.injected} == {"421", "451", "550", "drop"}


# -- SMTPUTF8 -------------------------------------------------------------------------------------


def test_smtputf8_address_sent_when_offered(
    smtp_server: SmtpServer, message_factory: Make, tmp_path: Path
) -> None:
    results = send_all(
        smtp_server.dsn(), [message_factory(1, "jöhn@exämple.com", "Jöhn")], tmp_path
    )
    assert results[0].status is Status.SENT
    [got] = smtp_server.received
    assert got.rcpt_tos == ["jöhn@xn--exmple-cua.com"]
    assert "SMTPUTF8" in got.mail_options and got.smtp_utf8
    assert got.message["To"].addresses[0].addr_spec == "jöhn@exämple.com"


def test_smtputf8_address_fails_clearly_when_not_offered(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    server = smtp_server_factory(smtputf8=False)
    messages = [message_factory(1, "jöhn@example.com"), message_factory(2, "ann@bücher.example")]
    results = send_all(server.dsn(), messages, tmp_path)
    assert [r.status for r in results] == [Status.FAILED, Status.SENT]
    assert "does not offer SMTPUTF8" in results[0].detail
    assert "jöhn@example.com" in results[0].detail
    assert server.recipients() == ["ann@xn--bcher-kva.example"]
    assert "SMTPUTF8" not in server.received[0].mail_options


# -- PIPELINING (RFC 2920) ------------------------------------------------------------------------


class PipeliningHandler(RecordingHandler):
    """Advertises PIPELINING (aiosmtpd itself does not) and notes, at each MAIL, whether the
    RCPT and DATA lines of the same group had already arrived with it."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.refuse = refuse
        self.grouped: list[bool] = []

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        buffered = bytes(getattr(server._reader, "_buffer", b""))  # noqa: SLF001
        self.grouped.append(b"RCPT TO:" in buffered and b"DATA" in buffered)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_pipelined_envelope_sends_each_message_once(
    smtp_server_factory: StartServer, message_factory: Make, tmp_path: Path
) -> None:
    handler = PipeliningHandler(refuse=("gone@example.com",))
    server = smtp_server_factory(handler=handler)
    messages = [
        message_factory(1, "a@example.com"),
        message_factory(2, "gone@example.com"),
        message_factory(3, "b@example.com"),
    ]
    results = send_all(server.dsn(), messages, tmp_path)
    assert [r.status for r in results] == [Status.SENT, Status.REJECTED, Status.SENT]
    assert "no such mailbox" in results[1].detail and "RCPT TO" in results[1].detail
    # The refused recipient's pipelined DATA left the connection usable: one connection, and
    # exactly the two accepted messages arrived, each intact.
    assert server.recipients() == ["a@example.com", "b@example.com"]
    assert len({m.peer for m in server.received}) == 1
    for received, msg in zip(server.received, (messages[0], messages[2]), strict=True):
        assert received.message["Message-ID"] == msg.message_id
    assert handler.grouped and all(handler.grouped)  # MAIL, RCPT and DATA in one write
