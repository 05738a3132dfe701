"""The tracking service over real HTTP: waitress on 127.0.0.1, requests as the client.

Ledger rows are made with SQL (``tracking_support``); only the last test runs the real send.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from tracking_support import (
    REPO,
    SLUG,
    Service,
    add_campaign,
    add_delivery,
    ago,
    events_of,
    seed_issue,
    service,
    status_of,
)

from cohesion_mail.campaign import send_campaign
from cohesion_mail.render.personalise import CompiledIssue
from cohesion_mail.report import campaign_report
from cohesion_mail.tracking.events import FAST_SECONDS

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Version/17.5 Safari/605.1.15")
_n = itertools.count()


@pytest.fixture(scope="module")
def issue(tmp_path_factory: pytest.TempPathFactory) -> CompiledIssue:
    """The seed campaign with a greeting, compiled by build_issue."""
    return seed_issue(tmp_path_factory.mktemp("seed"))


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One running service for the module; each test makes its own deliveries."""
    with service(tmp_path_factory.mktemp("state")) as s:
        yield s


@pytest.fixture(scope="module")
def cid(svc: Service, issue: CompiledIssue) -> int:
    return add_campaign(svc.store, SLUG, issue)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers["User-Agent"] = BROWSER
        yield s


def deliver(svc: Service, cid: int, **kw: Any) -> tuple[int, str]:
    """A new delivery to ``Reader<n>@Example.org``; its id and stored (lower-case) address."""
    i = next(_n)
    address = f"Reader{i}@Example.org"
    return add_delivery(svc.store, cid, address, f"Reader{i} Person{i}", **kw), address.lower()


# -- unsubscribe -------------------------------------------------------------------------------


def test_get_shows_a_button_and_changes_nothing(svc: Service, cid: int, http: requests.Session):
    did, address = deliver(svc, cid)
    url = svc.links.unsubscribe(cid, did)
    for _ in range(2):
        page = http.get(url)
        assert page.status_code == 200
        assert '<form method="post"' in page.text and "<button" in page.text
        assert http.head(url).status_code == 200
    assert status_of(svc.store, address) == "subscribed"
    assert events_of(svc.store, did, "unsubscribe") == []


def test_one_click_post_unsubscribes_once(svc: Service, cid: int, http: requests.Session):
    did, address = deliver(svc, cid)
    url = svc.links.unsubscribe(cid, did)
    # What a mail client sends (RFC 8058 §3.1): form-encoded body, no cookies.
    answers = [http.post(url, data=ONE_CLICK, allow_redirects=False) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("Location" not in a.headers for a in answers)
    assert status_of(svc.store, address) == "unsubscribed"
    recorded = events_of(svc.store, did, "unsubscribe")
    assert len(recorded) == 1 and recorded[0]["detail"] == "one-click"


def test_one_click_as_multipart_and_as_raw_body(svc: Service, cid: int, http: requests.Session):
    multipart, raw = deliver(svc, cid), deliver(svc, cid)
    a = http.post(svc.links.unsubscribe(cid, multipart[0]),
                  files={"List-Unsubscribe": (None, "One-Click")})
    b = http.post(svc.links.unsubscribe(cid, raw[0]), data=b"List-Unsubscribe=One-Click",
                  headers={"Content-Type": "text/plain"})
    assert (a.status_code, b.status_code) == (200, 200)
    assert status_of(svc.store, multipart[1]) == status_of(svc.store, raw[1]) == "unsubscribed"


def test_post_without_the_one_click_body_is_refused(svc: Service, cid: int,
                                                    http: requests.Session):
    did, address = deliver(svc, cid)
    answer = http.post(svc.links.unsubscribe(cid, did), data={"List-Unsubscribe": "yes"})
    assert answer.status_code == 400
    assert status_of(svc.store, address) == "subscribed"


def _form(page: str) -> tuple[str, dict[str, str]]:
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])  # type: ignore[index]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
    return action, fields


def test_page_button_then_resubscribe(svc: Service, cid: int, http: requests.Session):
    did, address = deliver(svc, cid)
    confirm = http.get(svc.links.unsubscribe(cid, did))
    action, fields = _form(confirm.text)
    done = http.post(svc.url + action, data=fields)
    assert done.status_code == 200 and "Re-subscribe" in done.text
    assert status_of(svc.store, address) == "unsubscribed"
    again, _ = _form(done.text)
    assert again.endswith("/resubscribe")
    back = http.post(svc.url + again)
    assert back.status_code == 200
    assert status_of(svc.store, address) == "subscribed"
    assert [e["detail"] for e in events_of(svc.store, did, "unsubscribe")] == ["page"]
    assert len(events_of(svc.store, did, "resubscribe")) == 1
    # Unsubscribing again after coming back is a new, recorded unsubscribe.
    http.post(svc.links.unsubscribe(cid, did), data=ONE_CLICK)
    assert len(events_of(svc.store, did, "unsubscribe")) == 2


def _in_language(svc: Service, did: int, language: str) -> None:
    """The edition language the send loop stores in deliveries.language."""
    with svc.store.atomic() as conn:
        conn.execute("UPDATE deliveries SET language = ? WHERE id = ?", (language, did))


def test_unsubscribe_pages_speak_the_readers_language(svc: Service, cid: int,
                                                      http: requests.Session):
    did, address = deliver(svc, cid)
    _in_language(svc, did, "es")
    confirm = http.get(svc.links.unsubscribe(cid, did))
    assert '<html lang="es" dir="ltr">' in confirm.text
    assert "<title>¿Darse de baja?" in confirm.text and ">Darse de baja</button>" in confirm.text
    masked = "r•••@example.org"
    assert f"a <strong>{masked}</strong>?" in confirm.text  # the address in the sentence
    action, fields = _form(confirm.text)
    done = http.post(svc.url + action, data=fields)
    assert "Se ha dado de baja" in done.text and "Volver a suscribirse" in done.text
    assert f"{masked} ya no recibirá {svc.settings.list.name}" in done.text
    again, _ = _form(done.text)
    back = http.post(svc.url + again)
    assert "Le damos de nuevo la bienvenida" in back.text and "Darse de baja de nuevo" in back.text
    assert '<html lang="es"' in back.text
    assert status_of(svc.store, address) == "subscribed"


@pytest.mark.parametrize("stored", ["sv", "", "xx", "fr"])
def test_pages_fall_back_to_a_catalogue_and_say_which(svc: Service, cid: int, stored: str,
                                                      http: requests.Session):
    """sv has a catalogue; no, unknown or uncatalogued languages get the main one (en)."""
    did, _ = deliver(svc, cid)
    _in_language(svc, did, stored)
    page = http.get(svc.links.unsubscribe(cid, did)).text
    if stored == "sv":
        assert '<html lang="sv"' in page and "Unsubscribe?" not in page
    else:
        assert '<html lang="en"' in page and "<title>Unsubscribe?" in page


def test_error_pages_follow_the_browser_language_else_the_main_one(svc: Service,
                                                                   http: requests.Session):
    spanish = http.get(svc.url + "/u/not-a-token", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert spanish.status_code == 404
    assert '<html lang="es"' in spanish.text and "Enlace no encontrado" in spanish.text
    plain = http.get(svc.url + "/u/not-a-token")
    assert plain.status_code == 404
    assert '<html lang="en"' in plain.text and "Link not found" in plain.text
    # One stylesheet for every language: the CSP hash holds for both.
    assert spanish.headers["Content-Security-Policy"] == plain.headers["Content-Security-Policy"]


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_links_never_lift_a_bounce_or_complaint(svc: Service, cid: int, status: str,
                                               http: requests.Session):
    did, address = deliver(svc, cid, status=status)
    url = svc.links.unsubscribe(cid, did)
    assert http.post(url, data=ONE_CLICK).status_code == 200
    assert http.post(url + "/resubscribe").status_code == 200
    assert status_of(svc.store, address) == status
    assert events_of(svc.store, did, "resubscribe") == []


def test_responses_do_not_reveal_the_subscription_state(svc: Service, cid: int,
                                                       http: requests.Session):
    """Same status and page for a subscribed, an unsubscribed and a bounced address."""
    pages: dict[str, list[tuple[int, str]]] = {}
    for status in ("subscribed", "unsubscribed", "bounced"):
        did, _ = deliver(svc, cid, status=status)
        url = svc.links.unsubscribe(cid, did)
        token = _token(url)
        answers = [http.get(url), http.post(url, data=ONE_CLICK), http.post(url + "/resubscribe")]
        # Addresses are Reader<n>@example.org: the masked form is the same for all three.
        pages[status] = [(a.status_code, a.text.replace(token, "TOKEN")) for a in answers]
    assert pages["subscribed"] == pages["unsubscribed"] == pages["bounced"]


def test_unsubscribe_of_an_address_not_on_the_list_suppresses_it(svc: Service, cid: int,
                                                                 http: requests.Session):
    did, address = deliver(svc, cid, subscriber=False, is_proof=True)
    assert http.post(svc.links.unsubscribe(cid, did), data=ONE_CLICK).status_code == 200
    assert status_of(svc.store, address) == "unsubscribed"


# -- refused tokens ----------------------------------------------------------------------------


def _token(url: str) -> str:
    return url.split("?")[0].rsplit("/", 1)[1].removesuffix(".gif")


def _flip(token: str) -> str:
    """One character of the signature changed. (Not the last: it carries only 2 bits of data
    and 4 padding bits that base64 decoding ignores, so some changes there decode the same.)"""
    return token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]


def _forgeries(svc: Service, cid: int, other_cid: int, did: int,
               target: str) -> dict[str, dict[str, str]]:
    """Per case, the token to present at each endpoint (u, o, c, w)."""
    good = _token(svc.links.unsubscribe(cid, did))
    sign = svc.links.signer.token
    everywhere = {
        "truncated": good[:-2],
        "flipped": _flip(good),
        "garbage": "not-a-token",
        "other campaign": sign("unsubscribe", other_cid, did),
        "no such delivery": sign("unsubscribe", cid, 10**9),
    }
    cases = {label: dict.fromkeys("uocw", token) for label, token in everywhere.items()}
    cases["other campaign"].update(o=sign("open", other_cid, did),
                                   c=sign("click", other_cid, did, target),
                                   w=sign("web", other_cid, did))
    # A genuine token for this very delivery, shown to an endpoint of another purpose.
    cases["other purpose"] = {"u": sign("open", cid, did), "o": sign("web", cid, did),
                              "c": sign("unsubscribe", cid, did), "w": sign("click", cid, did,
                                                                           target)}
    return cases


def test_forged_truncated_and_other_campaign_tokens_change_nothing(
    svc: Service, cid: int, issue: CompiledIssue, http: requests.Session
):
    other_cid = add_campaign(svc.store, "2020-03-other", issue)
    did, address = deliver(svc, cid)
    target = issue.links[0]
    bodies = set()
    for label, t in _forgeries(svc, cid, other_cid, did, target).items():
        answers = [
            http.get(f"{svc.url}/u/{t['u']}"),
            http.post(f"{svc.url}/u/{t['u']}", data=ONE_CLICK),
            http.post(f"{svc.url}/u/{t['u']}/resubscribe"),
            http.get(f"{svc.url}/o/{t['o']}.gif"),
            http.get(f"{svc.url}/c/{t['c']}?u={quote(target, safe='')}", allow_redirects=False),
            http.get(f"{svc.url}/w/{t['w']}"),
        ]
        assert [a.status_code for a in answers] == [404] * 6, label
        bodies.update(a.text for a in answers)
    assert len(bodies) == 1  # one generic page, whatever was wrong
    assert status_of(svc.store, address) == "subscribed"
    assert svc.store.query("SELECT count(*) FROM events WHERE delivery_id = ?", (did,))[0][0] == 0


# -- opens ---------------------------------------------------------------------------------------


def test_open_pixel_is_a_transparent_gif_that_is_never_cached(svc: Service, cid: int,
                                                             http: requests.Session):
    did, _ = deliver(svc, cid)
    answers = [http.get(svc.links.open_pixel(cid, did)) for _ in range(3)]
    pixel = answers[0]
    assert pixel.status_code == 200
    assert pixel.headers["Content-Type"] == "image/gif"
    assert pixel.content[:6] == b"GIF89a"
    assert struct.unpack("<HH", pixel.content[6:10]) == (1, 1)
    assert pixel.content[-1:] == b";"
    assert {"no-store", "no-cache"} <= set(re.split(r",\s*", pixel.headers["Cache-Control"]))
    opens = events_of(svc.store, did, "open")
    assert len(opens) == len(answers)
    assert {o["machine"] for o in opens} == {0}


@pytest.mark.parametrize(
    ("user_agent", "machine", "label"),
    [
        ("Mozilla/5.0", 1, "apple-mpp"),
        ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
         "GoogleImageProxy)", 0, "proxy:gmail"),
        ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", 0,
         "proxy:yahoo"),
        ("Mozilla/5.0 (compatible; Mimecast/1.0)", 1, "scanner:mimecast"),
        ("Barracuda Sentinel (EE)", 1, "scanner:barracuda"),
        ("Microsoft Office Existence Discovery", 1, "scanner:microsoft"),
        ("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)", 0, ""),
        ("curl/8.5.0", 1, "bot"),
        ("", 1, "no-user-agent"),
        (BROWSER, 0, ""),
    ],
)
def test_machine_opens_are_recorded_and_flagged(svc: Service, cid: int, user_agent: str,
                                                machine: int, label: str):
    did, _ = deliver(svc, cid)
    answer = requests.get(svc.links.open_pixel(cid, did), headers={"User-Agent": user_agent})
    assert answer.status_code == 200
    [event] = events_of(svc.store, did, "open")
    assert (event["machine"], event["detail"]) == (machine, label)


def test_an_open_seconds_after_sending_is_a_machine(svc: Service, cid: int,
                                                   http: requests.Session):
    did, _ = deliver(svc, cid, sent_at=ago(0))
    http.get(svc.links.open_pixel(cid, did))
    [event] = events_of(svc.store, did, "open")
    assert event["machine"] == 1 and str(event["detail"]).startswith("fast:")
    assert FAST_SECONDS < 3600  # the default deliveries, sent an hour ago, count as human


# -- clicks --------------------------------------------------------------------------------------


def test_click_redirects_to_exactly_the_signed_url(svc: Service, cid: int,
                                                  http: requests.Session):
    did, _ = deliver(svc, cid)
    target = "https://www.interregeurope.eu/cohes3ion?utm_source=news&x=a%20b#top"
    answer = http.get(svc.links.click(cid, did, target), allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == target
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    [event] = events_of(svc.store, did, "click")
    assert (event["url"], event["machine"]) == (target, 0)


def test_click_from_a_scanner_is_flagged(svc: Service, cid: int):
    did, _ = deliver(svc, cid)
    answer = requests.get(svc.links.click(cid, did, "https://example.org/"),
                          headers={"User-Agent": "python-requests/2.32"}, allow_redirects=False)
    assert answer.status_code == 302
    assert [e["machine"] for e in events_of(svc.store, did, "click")] == [1]


def test_altered_targets_and_tokens_never_redirect(svc: Service, cid: int,
                                                  http: requests.Session):
    did, _ = deliver(svc, cid)
    good = "https://www.interregeurope.eu/cohes3ion"
    link = svc.links.click(cid, did, good)
    token = _token(link)
    evil = quote("https://evil.example/phish", safe="")
    cases = {
        f"{svc.url}/c/{token}?u={evil}": 404,  # another target
        f"{svc.url}/c/{token}?u={quote(good + '/', safe='')}": 404,  # one character more
        f"{svc.url}/c/{_flip(token)}?u={quote(good, safe='')}": 404,  # altered token
        f"{svc.url}/c/{token[:10]}?u={quote(good, safe='')}": 404,  # truncated token
        f"{svc.url}/c/{token}": 400,  # no target
        f"{link}&u={evil}": 400,  # two targets
    }
    js = "javascript:alert(1)"  # even correctly signed, only http(s) is ever a redirect
    cases[svc.links.click(cid, did, js)] = 400
    for url, code in cases.items():
        answer = http.get(url, allow_redirects=False)
        assert answer.status_code == code, url
        assert "Location" not in answer.headers
    assert events_of(svc.store, did, "click") == []


# -- web version -------------------------------------------------------------------------------


def test_web_version_shows_this_recipient_only(svc: Service, cid: int, http: requests.Session):
    mine, my_address = deliver(svc, cid, organisation="BEAZ Bizkaia")
    theirs, their_address = deliver(svc, cid, organisation="Regione Calabria")
    page = http.get(svc.links.web_version(cid, mine))
    assert page.status_code == 200
    first = my_address.split("@")[0].capitalize()
    assert f"Dear {first} ({my_address}, BEAZ Bizkaia)" in page.text
    assert svc.links.unsubscribe(cid, mine) in page.text
    for foreign in (their_address, "Regione Calabria", svc.links.unsubscribe(cid, theirs),
                    svc.links.web_version(cid, theirs)):
        assert foreign not in page.text
    # Its links are this delivery's tracked links; reading it is a view, not an open.
    tracked = [urlsplit(unescape(h)) for h in re.findall(r'href="([^"]*/c/[^"]+)"', page.text)]
    assert tracked
    for link in tracked:
        [target] = parse_qs(link.query)["u"]
        assert svc.links.signer.verify("click", _token(link.path), target).delivery_id == mine
    assert len(events_of(svc.store, mine, "webview")) == 1
    assert events_of(svc.store, mine, "open") == []
    csp = page.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "img-src https:" in csp
    assert "script-src" not in csp and "default-src 'none'" in csp


def test_web_version_without_click_tracking_keeps_plain_links(svc: Service,
                                                             issue: CompiledIssue,
                                                             http: requests.Session):
    plain = add_campaign(svc.store, "2020-04-untracked", issue, click_tracking=False)
    did, _ = deliver(svc, plain)
    page = http.get(svc.links.web_version(plain, did)).text
    assert "/c/" not in page and f'href="{issue.links[0]}"' in page


# -- headers and the rest ------------------------------------------------------------------------


def test_security_headers_on_every_answer(svc: Service, cid: int, http: requests.Session):
    did, _ = deliver(svc, cid)
    answers = [
        http.get(svc.url + "/healthz"),
        http.get(svc.links.unsubscribe(cid, did)),
        http.get(svc.links.open_pixel(cid, did)),
        http.get(svc.links.click(cid, did, "https://example.org/"), allow_redirects=False),
        http.get(svc.url + "/nowhere"),
    ]
    assert answers[0].status_code == 200 and answers[0].text == "ok\n"
    for a in answers:
        h = a.headers
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["X-Frame-Options"] == "DENY"
        assert "no-store" in h["Cache-Control"]
        assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    page_csp = answers[1].headers["Content-Security-Policy"]
    assert "default-src 'none'" in page_csp and "'unsafe-inline'" not in page_csp
    assert "form-action 'self'" in page_csp


def test_wrong_method_gets_the_generic_page(svc: Service, cid: int, http: requests.Session):
    did, address = deliver(svc, cid)
    answer = http.delete(svc.links.unsubscribe(cid, did))
    assert answer.status_code == 405 and "POST" in answer.headers["Allow"]
    assert status_of(svc.store, address) == "subscribed"


def test_campaign_images_are_served_and_nothing_else(svc: Service, http: requests.Session):
    folder = svc.settings.root / "campaigns" / "2020-05-images"
    folder.mkdir(parents=True)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    (folder / "logo.png").write_bytes(png)
    (folder / "campaign.yaml").write_text("subject: private\n")
    base = f"{svc.url}/campaigns/2020-05-images"
    image = http.get(f"{base}/logo.png")
    assert image.status_code == 200 and image.content == png
    assert "public" in image.headers["Cache-Control"]
    for path in ("campaign.yaml", "..%2F..%2Fstate.db", "missing.png"):
        assert http.get(f"{base}/{path}").status_code == 404


def test_wsgi_entry_point_builds_the_app_from_the_environment(tmp_path: Path):
    env = {**os.environ, "COHESION_MAIL_STATE": str(tmp_path / "state.db"),
           "COHESION_MAIL_CONFIG": str(REPO / "cohesion-mail.toml")}
    code = ("from cohesion_mail.tracking.wsgi import app\n"
            "print(app.test_client().get('/healthz').status_code)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert out.stdout.strip() == "200", out.stderr
    assert (tmp_path / "state.db").is_file()


# -- end to end: send, unsubscribe, send again ----------------------------------------------------


def _eml(folder: Path, address: str) -> EmailMessage:
    [path] = [p for p in folder.glob("*.eml") if address in p.name]
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_a_later_send_skips_the_unsubscribed_address(tmp_path: Path, http: requests.Session):
    """Send through the outbox, one-click unsubscribe from the message's own header, and the
    next campaign is not sent to that address; the report shows exactly that."""
    people = [("ane@example.org", "Ane Etxeberria"), ("giulia@example.org", "Giulia Romano"),
              ("sean@example.org", "Seán Murphy")]
    csv = tmp_path / "subscribers.csv"
    csv.write_text("email,name\n" + "".join(f"{a},{n}\n" for a, n in people), encoding="utf-8")
    for slug in (SLUG, "2020-03-cohes3ion"):
        shutil.copytree(REPO / "campaigns" / SLUG, tmp_path / "campaigns" / slug)
    with service(tmp_path) as s:
        settings = replace(s.settings, root=tmp_path)

        def send(slug: str) -> Path:
            outbox = tmp_path / "outbox" / slug
            send_campaign(tmp_path / "campaigns" / slug, settings, store=s.store,
                          subscribers=csv, transport=f"outbox://{outbox}")
            return outbox

        first = send(SLUG)
        assert len(list(first.glob("*.eml"))) == len(people)
        msg = _eml(first, "giulia")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = re.search(r"<(http[^>]+)>", msg["List-Unsubscribe"])[1]  # type: ignore[index]
        assert unsubscribe.startswith(s.url + "/u/")
        assert http.get(unsubscribe).status_code == 200  # a scanner following the link
        assert http.post(unsubscribe, data=ONE_CLICK).status_code == 200  # the mail client

        second = send("2020-03-cohes3ion")
        sent_to = sorted(p.name.split("-", 1)[1] for p in second.glob("*.eml"))
        assert sent_to == ["ane@example.org.eml", "sean@example.org.eml"]
        report = campaign_report(s.store, SLUG)
        assert (report.sent, report.unsubscribes) == (len(people), 1)
