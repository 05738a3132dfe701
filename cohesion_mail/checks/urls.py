"""What is wrong with one link, if anything.

Errors: placeholders (``#``, empty, ``javascript:``, the RFC 2606 example domains and the
reserved ``.test``/``.example``/``.invalid``/``.localhost`` names), links to the sender's own
machine or network (``localhost``, ``127.0.0.1``, ``192.168.…``) that no reader can open, and
malformed URLs (no scheme, no host, spaces). Warnings: plain ``http://`` (browsers flag it and
some corporate filters rewrite it) and in-page ``#anchor`` links, which Gmail and Outlook.com do
not follow.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..render.fields import CONTENT_MERGE
from .findings import Level

# RFC 2606 / RFC 6761: names reserved for examples and tests; nothing real lives there.
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
RESERVED_TLDS = ("example", "test", "invalid", "localhost")
_HOST = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Verdict:
    level: Level
    rule: str
    message: str
    fix: str


def _placeholder(message: str, fix: str = "") -> Verdict:
    return Verdict(
        "error", "link-placeholder", message, fix or "put the real https:// address of the page"
    )


def _malformed(message: str, fix: str) -> Verdict:
    return Verdict("error", "link-malformed", message, fix)


def judge_url(url: str) -> Verdict | None:
    """``None`` for a good link, else what is wrong with it and how to fix it."""
    raw = url
    url = url.strip()
    if not url:
        return _placeholder("empty link")
    if url == "#":
        return _placeholder("placeholder link '#' (goes nowhere)")
    if url.startswith("#"):
        return Verdict(
            "warning",
            "link-anchor",
            f"in-page anchor {url!r}: Gmail and Outlook.com do not follow anchors",
            "link to a web page instead, or drop the link",
        )
    if CONTENT_MERGE.fullmatch(url):
        return None  # a link field the send fills in; unknown names are their own finding
    if url != raw or any(c.isspace() for c in url):
        return _malformed(
            f"{raw!r} contains spaces", "remove the spaces (write %20 if the address has one)"
        )
    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme in ("javascript", "vbscript", "data"):
        return _placeholder(
            f"{scheme}: link ({url[:40]!r}): mail clients remove it, so it goes nowhere"
        )
    if scheme == "mailto":
        address = url[7:].partition("?")[0]
        if not _EMAIL.match(address):
            return _malformed(f"{url!r} is not an email address", "write mailto:name@domain")
        return _judge_host(address.rpartition("@")[2], url)
    if scheme == "tel":
        return None
    if scheme not in ("http", "https"):
        if not scheme or scheme.startswith("www") or "." in scheme:
            return _malformed(
                f"{url!r} has no https:// in front: mail clients treat it as a link to nowhere",
                f"write https://{url.removeprefix('//')}",
            )
        return _malformed(f"{url!r} is not a web link ({scheme}:)", "use an https:// address")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return _malformed(f"{url!r} is not a valid URL ({exc})", "check the address in a browser")
    if not parts.netloc or not host:
        return _malformed(f"{url!r} has no host name", "write it as https://www.domain.eu/page")
    verdict = _judge_host(host, url)
    if verdict:
        return verdict
    if scheme == "http":
        return Verdict(
            "warning",
            "link-insecure",
            f"{url!r} is not https: browsers mark it 'not secure'",
            "use https:// if the site has it (most do)",
        )
    return None


def _judge_host(host: str, url: str) -> Verdict | None:
    host = host.strip("[]").rstrip(".")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback or ip.is_unspecified or ip.is_private or ip.is_link_local:
            return _placeholder(
                f"{url!r} points at a local address ({host}) that readers cannot open",
                "use the public https:// address of the page",
            )
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return _placeholder(
            f"{url!r} points at your own computer (localhost)",
            "use the public https:// address of the page",
        )
    if any(host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS):
        return _placeholder(f"{url!r} is an example address ({host})")
    tld = host.rpartition(".")[2]
    if tld in RESERVED_TLDS:
        return _placeholder(f"{url!r} uses the reserved .{tld} domain")
    if not _HOST.match(host):
        return _malformed(f"{url!r}: {host!r} is not a valid host name", "check the address")
    if "." not in host:
        return _malformed(
            f"{url!r}: the host {host!r} has no domain ending (.eu, .org …)",
            "write the full address, e.g. https://www.interregeurope.eu/",
        )
    return None
