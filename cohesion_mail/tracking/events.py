"""Recording what recipients do: opens, clicks, web-version views, unsubscribes, re-subscribes.

Every write is one ``Store.atomic()`` transaction, so the tracking service's threads (and a
``send`` running beside it) never see half a change. We store the user agent the request carried
and a ``machine`` flag, never an IP address.

Machine opens and clicks are recorded too, flagged ``machine=1``, so a report can show human
engagement apart from what proxies and security scanners fetch on their own.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from ..store.db import Store, now

# An open or click this soon after the message left us was fetched by software that processes
# mail on arrival (Apple Mail Privacy Protection, gateway scanners), not by a reader.
FAST_SECONDS = 5.0


@dataclass(frozen=True)
class Agent:
    """What a user agent tells us: ``machine`` (not a person) and a short ``label`` for reports."""

    machine: bool
    label: str = ""


# The one list of user agents we recognise, first match wins. (pattern, machine, label)
_AGENTS: tuple[tuple[re.Pattern[str], bool, str], ...] = (
    # Gmail fetches images through its proxy only when the reader opens the message
    # ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"):
    # a human open whose real client is hidden.
    (re.compile(r"GoogleImageProxy"), False, "proxy:gmail"),
    # Yahoo Mail and AOL proxy images the same way, on open.
    (re.compile(r"YahooMailProxy"), False, "proxy:yahoo"),
    # Apple Mail Privacy Protection (iOS 15, macOS 12 and later) downloads every remote image
    # when the message arrives, from Apple's proxy, with the bare user agent "Mozilla/5.0" that
    # no real browser or mail client sends.
    (re.compile(r"^Mozilla/5\.0$"), True, "apple-mpp"),
    # Security gateways fetch every URL in a message before the reader sees it.
    (re.compile(r"Barracuda", re.IGNORECASE), True, "scanner:barracuda"),
    (re.compile(r"Mimecast", re.IGNORECASE), True, "scanner:mimecast"),
    (re.compile(r"Proofpoint", re.IGNORECASE), True, "scanner:proofpoint"),
    # Microsoft Defender for Office 365 (Safe Links / ATP detonation) and Office's own link
    # checks ("Microsoft Office Existence Discovery", "ms-office"). Outlook desktop also says
    # "Microsoft Office/16.0 (… Microsoft Outlook …)" when a reader opens a message: not flagged.
    (re.compile(r"SafeLinks|Microsoft ATP|BingPreview", re.IGNORECASE), True, "scanner:microsoft"),
    (re.compile(r"^Microsoft Office(?!.*Outlook)|\bms-office\b", re.IGNORECASE), True,
     "scanner:microsoft"),
    # Crawlers, link expanders and scripts: no person reads mail with curl.
    (
        re.compile(
            r"bot\b|crawler|spider|curl/|wget/|python-requests|python-urllib|aiohttp|httpx|"
            r"Go-http-client|okhttp|Java/|libwww-perl|HeadlessChrome|PhantomJS",
            re.IGNORECASE,
        ),
        True,
        "bot",
    ),
)


def classify(user_agent: str) -> Agent:
    """Who fetched a pixel or followed a link, judged from the User-Agent header alone."""
    ua = user_agent.strip()
    if not ua:
        return Agent(True, "no-user-agent")
    for pattern, machine, label in _AGENTS:
        if pattern.search(ua):
            return Agent(machine, label)
    return Agent(False)


@dataclass(frozen=True)
class Delivery:
    """The ledger row a token points at: everything an endpoint may use about its recipient."""

    id: int
    campaign_id: int
    email: str
    name: str
    language: str
    is_proof: bool
    sent_at: str | None


def find_delivery(store: Store, campaign_id: int, delivery_id: int) -> Delivery | None:
    """The delivery ``delivery_id`` if it belongs to ``campaign_id`` (else ``None``).

    A token signed for one campaign's delivery can never act on another campaign's row.
    """
    rows = store.query(
        "SELECT id, campaign_id, email, name, language, is_proof, sent_at "
        "FROM deliveries WHERE id = ? AND campaign_id = ?",
        (delivery_id, campaign_id),
    )
    if not rows:
        return None
    r = rows[0]
    return Delivery(
        r["id"], r["campaign_id"], r["email"], r["name"], r["language"], bool(r["is_proof"]),
        r["sent_at"],
    )


def _insert(
    conn: sqlite3.Connection, delivery: Delivery, kind: str, *, url: str = "",
    machine: bool = False, user_agent: str = "", detail: str = "",
) -> int:
    cur = conn.execute(
        "INSERT INTO events (campaign_id, delivery_id, email, kind, url, machine, user_agent, "
        "detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (delivery.campaign_id, delivery.id, delivery.email, kind, url, int(machine),
         user_agent[:500], detail, now()),
    )
    return int(cur.lastrowid or 0)


def _judge(delivery: Delivery, user_agent: str, at: datetime) -> Agent:
    """``classify`` plus timing: a fetch within ``FAST_SECONDS`` of sending is a machine."""
    agent = classify(user_agent)
    if agent.machine or not delivery.sent_at:
        return agent
    try:
        sent = datetime.fromisoformat(delivery.sent_at)
    except ValueError:
        return agent
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    elapsed = (at - sent).total_seconds()
    if 0 <= elapsed < FAST_SECONDS:
        label = f"{agent.label}, " if agent.label else ""
        return Agent(True, f"{label}fast:{elapsed:.1f}s")
    return agent


def record_open(store: Store, delivery: Delivery, user_agent: str) -> int:
    """Record one pixel fetch (every fetch, so totals count re-opens); the event id."""
    agent = _judge(delivery, user_agent, datetime.now(UTC))
    with store.atomic() as conn:
        return _insert(conn, delivery, "open", machine=agent.machine, user_agent=user_agent,
                       detail=agent.label)


def record_click(store: Store, delivery: Delivery, url: str, user_agent: str) -> int:
    """Record one followed link to ``url``; the event id."""
    agent = _judge(delivery, user_agent, datetime.now(UTC))
    with store.atomic() as conn:
        return _insert(conn, delivery, "click", url=url, machine=agent.machine,
                       user_agent=user_agent, detail=agent.label)


def record_webview(store: Store, delivery: Delivery, user_agent: str) -> int:
    """Record one web-version view; the event id."""
    agent = classify(user_agent)
    with store.atomic() as conn:
        return _insert(conn, delivery, "webview", machine=agent.machine, user_agent=user_agent,
                       detail=agent.label)


def unsubscribe(store: Store, delivery: Delivery, *, user_agent: str = "", how: str = "") -> bool:
    """Suppress the delivery's address for every later send; ``True`` if this call changed it.

    One transaction: the status change and its single ``unsubscribe`` event. A repeated POST (a
    mail client retrying RFC 8058's one-click request, a double-clicked button) finds the address
    already unsubscribed and records nothing. Bounced and complained addresses stay as they are.
    An address that is not on the list (a proof recipient) is added as unsubscribed, so a later
    import cannot subscribe it behind the reader's back.
    """
    stamp = now()
    email = delivery.email.lower()  # stored addresses are Python-lower-cased (not SQLite lower())
    with store.atomic() as conn:
        cur = conn.execute(
            "UPDATE subscribers SET status = 'unsubscribed', status_reason = ?, "
            "status_changed_at = ?, updated_at = ? "
            "WHERE email = ? AND status = 'subscribed'",
            (f"unsubscribe link, campaign {delivery.campaign_id}", stamp, stamp, email),
        )
        changed = cur.rowcount > 0
        if not changed:
            cur = conn.execute(
                "INSERT INTO subscribers (email, name, status, status_reason, status_changed_at, "
                "created_at, updated_at) SELECT ?, ?, 'unsubscribed', ?, ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM subscribers WHERE email = ?)",
                (email, delivery.name,
                 f"unsubscribe link, campaign {delivery.campaign_id} (not on the list)",
                 stamp, stamp, stamp, email),
            )
            changed = cur.rowcount > 0
        if changed:
            _insert(conn, delivery, "unsubscribe", user_agent=user_agent, detail=how)
    return changed


def resubscribe(store: Store, delivery: Delivery, *, user_agent: str = "") -> bool:
    """Undo an unsubscribe; ``True`` if this call changed the status.

    Only ``unsubscribed`` goes back to ``subscribed``: a bounce or a spam complaint is never
    lifted by a link (the address cannot, or asked us not to, receive mail).
    """
    stamp = now()
    with store.atomic() as conn:
        cur = conn.execute(
            "UPDATE subscribers SET status = 'subscribed', status_reason = ?, "
            "status_changed_at = ?, updated_at = ? "
            "WHERE email = ? AND status = 'unsubscribed'",
            (f"re-subscribe link, campaign {delivery.campaign_id}", stamp, stamp,
             delivery.email.lower()),
        )
        changed = cur.rowcount > 0
        if changed:
            _insert(conn, delivery, "resubscribe", user_agent=user_agent)
    return changed
