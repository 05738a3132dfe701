"""Message building: list headers, personal links, MIME that parses back, no header injection."""

from __future__ import annotations

import email
import email.policy
import random
import re
from collections.abc import Callable
from dataclasses import replace
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest

from cohesion_mail.config import Settings
from cohesion_mail.message import (
    OutgoingMessage,
    Recipient,
    build_message,
    clean_header,
    format_address,
    message_bytes,
    needs_smtputf8,
    to_mime,
)
from cohesion_mail.render.personalise import CompiledIssue
from cohesion_mail.tracking.tokens import Links

Make = Callable[..., OutgoingMessage]


def parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_lines(data: bytes) -> list[str]:
    """The raw header lines (unfolded), as a receiving MTA sees them."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    return re.sub(r"\r\n(?=[ \t])", "", head).split("\r\n")


def parts(msg: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts, with line ends as Python writes them."""
    text_part, html_part = msg.iter_parts()
    return (
        text_part.get_content().replace("\r\n", "\n"),
        html_part.get_content().replace("\r\n", "\n"),
    )


def test_list_headers_have_exact_values(message_factory: Make, links: Links) -> None:
    msg = to_mime(message_factory(41, campaign_id=7))
    assert msg["List-Id"] == "Cohesion Newsletter <cohesion-news.example.org>"
    assert msg["List-Unsubscribe"] == (
        f"<{links.unsubscribe(7, 41)}>, "
        "<mailto:unsubscribe@cohesion.example.org?subject=unsubscribe>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Precedence"] == "bulk"
    assert msg["Feedback-ID"] == "2020-02-cohes3ion:7:newsletter:cohesion-news.example.org"
    assert msg["Content-Language"] == "en"
    assert msg["From"] == "Cohesion News <news@cohesion.example.org>"
    assert msg["Reply-To"] == "editor@cohesion.example.org"
    assert msg["To"] == "Ann Example <ann@example.com>"
    assert msg["Subject"] == "Cohesion news for Ann"
    assert re.fullmatch(r"<[^@<>]+@cohesion\.example\.org>", msg["Message-ID"])
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None
    assert msg["X-Cohesion-Proof"] is None


def test_mime_is_alternative_with_text_first(message_factory: Make, links: Links) -> None:
    msg = to_mime(message_factory(5))
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in msg.iter_parts())
    text, html = parts(msg)
    assert text.startswith("Dear Ann,\n")
    assert links.unsubscribe(7, 5) in text and links.unsubscribe(7, 5) in html
    assert links.web_version(7, 5) in html
    assert f'src="{links.open_pixel(7, 5)}"' in html


def test_links_are_personal_and_click_tracked(message_factory: Make, links: Links) -> None:
    one, two = message_factory(1), message_factory(2, "bob@example.com", "Bob")
    story = "https://example.org/story?id=1&x=2"
    for did, msg in ((1, one), (2, two)):
        assert links.click(7, did, story).replace("&", "&amp;") in msg.html
        assert story in msg.text  # the text part keeps the real URL
    assert one.merge["unsubscribe_url"] != two.merge["unsubscribe_url"]
    assert one.merge["open_pixel_url"] != two.merge["open_pixel_url"]
    assert one.message_id != two.message_id


def test_without_tracking_links_stay_and_pixel_is_empty(message_factory: Make) -> None:
    msg = message_factory(3, click_tracking=False, open_tracking=False)
    assert 'href="https://example.org/story?id=1&amp;x=2"' in msg.html
    assert "/c/" not in msg.html and "/o/" not in msg.html
    assert msg.merge["open_pixel_url"] == ""


def test_subscriber_data_cannot_replace_our_links(message_factory: Make) -> None:
    msg = message_factory(4, values={"unsubscribe_url": "https://evil.example/"})
    assert "evil.example" not in msg.html + msg.text + str(msg.headers)


def test_proof_is_marked(message_factory: Make) -> None:
    msg = to_mime(message_factory(9, is_proof=True))
    assert msg["Subject"] == "[PROOF] Cohesion news for Ann"
    assert msg["X-Cohesion-Proof"] == "yes"


def test_content_language_is_the_editions_not_the_readers(message_factory: Make) -> None:
    # An fr reader with no French edition is sent the main (en) one, and it says so.
    assert to_mime(message_factory(1, language="fr"))["Content-Language"] == "en"


def test_non_ascii_subject_and_names_are_rfc2047_and_round_trip(message_factory: Make) -> None:
    msg = message_factory(1, "zoe@example.com", "Zoë Ñúñez-Łukasz", values={"first_name": "Zoë"})
    msg.from_name = "Kohäsion – Nachrichten"
    data = message_bytes(msg)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?b?" in head
    parsed = parse(data)
    assert parsed["Subject"] == "Cohesion news for Zoë"
    assert parsed["To"].addresses[0].display_name == "Zoë Ñúñez-Łukasz"
    assert parsed["To"].addresses[0].addr_spec == "zoe@example.com"
    assert parsed["From"].addresses[0].display_name == "Kohäsion – Nachrichten"


@pytest.mark.parametrize("seed", range(5))
def test_random_names_and_subjects_round_trip(message_factory: Make, seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcXYZ 09 ,;:<>@()[]\\\"'.-_=?  éøßЖжλ中文🙂\t"
    for _ in range(40):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90)))
        subject = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 200)))
        msg = message_factory(1, "ann@example.com", name)
        msg.subject = subject
        data = message_bytes(msg)
        assert all(len(line) <= 998 for line in data.split(b"\r\n"))
        parsed = parse(data)
        assert parsed["Subject"] == clean_header(subject)
        assert parsed["To"].addresses[0].addr_spec == "ann@example.com"
        # The stdlib's address parser keeps the whitespace between adjacent encoded words
        # (RFC 2047 §6.2 says to drop it), so decode the display name with the RFC decoder.
        to = next(line for line in header_lines(data) if line.startswith("To: "))
        phrase = to[4:].rpartition(" <")[0]
        if "=?utf-8?" in phrase:
            assert str(make_header(decode_header(phrase))) == clean_header(name)
        else:
            assert parsed["To"].addresses[0].display_name == clean_header(name)


@pytest.mark.parametrize(
    "evil",
    [
        "Ann\r\nBcc: victim@example.net",
        "Ann\nBcc: victim@example.net",
        "Ann\rBcc: victim@example.net",
        "Ann\u2028Bcc: victim@example.net",
        "Ann\x85Bcc: victim@example.net",
        "Ann\r\n\r\n<h1>body</h1>",
    ],
)
def test_line_breaks_can_never_inject_a_header(message_factory: Make, evil: str) -> None:
    msg = message_factory(1, "ann@example.com", evil, values={"first_name": evil})
    msg.from_name = evil
    msg.headers["X-Custom"] = evil
    data = message_bytes(msg)
    lines = header_lines(data)
    assert not any(line.lower().startswith("bcc:") for line in lines)
    assert not any(line.startswith("<h1>") for line in lines)
    parsed = parse(data)
    assert parsed["Bcc"] is None
    assert parsed.defects == []
    assert parsed["Subject"] == "Cohesion news for " + clean_header(evil)
    assert parsed["To"].addresses[0].addr_spec == "ann@example.com"
    assert parsed.get_content_type() == "multipart/alternative"


def test_header_names_are_sanitised(message_factory: Make) -> None:
    msg = message_factory(1)
    msg.headers["X-Evil\r\nBcc"] = "victim@example.net"
    parsed = parse(message_bytes(msg))
    assert parsed["Bcc"] is None
    assert parsed["X-EvilBcc"] == "victim@example.net"


def test_long_headers_fold_and_unfold_to_the_same_value(message_factory: Make) -> None:
    msg = message_factory(1)
    data = message_bytes(msg)
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if b"/u/" not in line)
    assert parse(data)["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]


def test_non_ascii_bodies_and_long_lines_survive(message_factory: Make) -> None:
    msg = message_factory(1)
    msg.text = "Grüße aus Brüssel – €\n.leading dot\ntrailing space \n" + "x" * 2000 + "\n"
    msg.html = "<p>" + "Ωmega " * 500 + "</p>\r\n<p>end</p>"
    data = message_bytes(msg)
    assert data.isascii()
    assert all(len(line) <= 78 for line in data.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    text, html = parts(parse(data))
    assert text == msg.text
    assert html == msg.html.replace("\r\n", "\n") + "\n"


def test_ascii_body_is_sent_as_is(message_factory: Make) -> None:
    msg = message_factory(1)
    msg.text = "plain ascii\nsecond line"
    data = message_bytes(msg)
    assert b"Content-Transfer-Encoding: 7bit\r\n\r\nplain ascii\r\nsecond line\r\n" in data


def test_non_ascii_local_part_uses_smtputf8(message_factory: Make) -> None:
    msg = message_factory(1, "jöhn@exämple.com", "Jöhn")
    assert needs_smtputf8(msg.to_email)
    data = message_bytes(msg)
    assert "To: Jöhn <jöhn@exämple.com>".encode() in data
    parsed = to_mime(msg)
    assert parsed["To"].addresses[0].addr_spec == "jöhn@exämple.com"
    assert parsed["To"].addresses[0].display_name == "Jöhn"
    assert getattr(parsed.policy, "utf8", False)


def test_idn_domain_becomes_punycode_without_smtputf8(message_factory: Make) -> None:
    msg = message_factory(1, "ann@bücher.example", "Ann")
    assert not needs_smtputf8(msg.to_email)
    data = message_bytes(msg)
    assert b"To: Ann <ann@xn--bcher-kva.example>\r\n" in data
    assert data.split(b"\r\n\r\n", 1)[0].isascii()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Ann Example", "Ann Example <a@example.com>"),
        ("Example, Ann", '"Example, Ann" <a@example.com>'),
        ('Ann "The Editor" O\\Neil', '"Ann \\"The Editor\\" O\\\\Neil" <a@example.com>'),
        ("", "a@example.com"),
    ],
)
def test_format_address_quotes_specials(name: str, expected: str) -> None:
    assert format_address(name, "a@example.com") == expected
    parsed = parse(f"To: {expected}\r\n\r\n".encode())
    assert parsed["To"].addresses[0].display_name == name


def test_list_name_with_specials_is_quoted(sample_settings: Settings, links: Links) -> None:
    settings = replace(
        sample_settings, list=replace(sample_settings.list, name="Cohesion (EU), news")
    )
    issue = CompiledIssue("s", "Hi", "", "", "<p>x</p>", "x", "n0nce00000")
    recipient = Recipient(1, 1, "a@example.com")
    msg = build_message(issue, settings, recipient, links, click_tracking=True)
    assert msg.headers["List-Id"] == '"Cohesion (EU), news" <cohesion-news.example.org>'
    assert "Content-Language" not in msg.headers  # neither issue nor recipient has one
    assert to_mime(msg)["List-Id"] == msg.headers["List-Id"]


def test_spanish_edition_says_es_whatever_the_subscriber_wrote(
    sample_settings: Settings, links: Links
) -> None:
    issue = CompiledIssue("s", "Hola", "", "es", "<p>x</p>", "x", "n0nce00000")
    msg = build_message(issue, sample_settings, Recipient(1, 1, "a@example.com", language="es-ES"),
                        links, click_tracking=True)
    assert msg.headers["Content-Language"] == "es"
    assert to_mime(msg)["Content-Language"] == "es"
