"""Campaign figures from the send ledger and the tracking events.

``campaign_report`` returns plain dataclasses; ``as_dict`` gives the stable JSON shape and
``report_html`` (in ``report_html.py``) draws the self-contained HTML page. The terminal tables
are the CLI's business.

Counting rules, so the numbers mean the same thing everywhere:

* rates are over **sent** deliveries (``None`` while nothing is sent);
* *unique* counts distinct deliveries, *total* counts events (a re-open counts again);
* *human* leaves out opens and clicks flagged ``machine`` (Apple Mail Privacy Protection,
  security scanners, bots — see ``tracking.events``); proxied Gmail/Yahoo opens are human;
* proof deliveries are left out unless asked for, and their number is reported either way;
* ``by_language`` splits deliveries by ``deliveries.language`` — the language edition each
  recipient was sent (issue 7), normalised (``es-ES`` → ``es``); ``""`` when none was stored.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import StoreError
from .i18n import normalise_language
from .store.db import DELIVERY_STATES, Store, now

# Up to this many hours between the first and last event the timeline has hourly buckets;
# beyond it, daily ones (a chart of 700 hourly bars says less than one of 30 days).
HOURLY_LIMIT = 7 * 24


@dataclass(frozen=True)
class Engagement:
    """Opens or clicks: events and distinct deliveries, all and human only."""

    total: int = 0
    unique: int = 0
    human_total: int = 0
    human_unique: int = 0
    machine_total: int = 0
    unique_rate: float | None = None
    human_unique_rate: float | None = None


@dataclass(frozen=True)
class LinkClicks:
    url: str
    total: int
    unique: int
    human_total: int
    human_unique: int


@dataclass(frozen=True)
class Bucket:
    """Events in one hour (or day) starting at ``start`` (ISO 8601, UTC)."""

    start: str
    opens: int = 0
    human_opens: int = 0
    clicks: int = 0
    human_clicks: int = 0


@dataclass(frozen=True)
class LanguageFigures:
    """Sends, opens, clicks and unsubscribes of the recipients of one language edition."""

    language: str  # ISO 639-1 code; "" when the delivery has none
    recipients: int = 0
    sent: int = 0
    opens_unique: int = 0
    opens_human_unique: int = 0
    clicks_unique: int = 0
    clicks_human_unique: int = 0
    unsubscribes: int = 0
    open_rate: float | None = None
    human_open_rate: float | None = None
    click_rate: float | None = None
    human_click_rate: float | None = None


@dataclass(frozen=True)
class CampaignReport:
    slug: str
    subject: str
    generated_at: str
    include_proofs: bool
    proofs: int  # proof deliveries in the ledger, counted in the figures only if include_proofs
    recipients: int  # delivery rows counted
    sent: int
    failed: int
    in_doubt: int
    deferred: int
    pending: int  # queued or sending
    delivered: int  # distinct deliveries a provider webhook reported delivered
    opens: Engagement
    clicks: Engagement
    links: list[LinkClicks]
    webviews: int
    unsubscribes: int
    resubscribes: int
    bounces: int
    complaints: int
    rates: dict[str, float | None]
    first_sent_at: str | None
    last_sent_at: str | None
    bucket: str  # "hour" or "day"
    timeline: list[Bucket] = field(default_factory=list)
    by_language: list[LanguageFigures] = field(default_factory=list)


def _rate(count: int, sent: int) -> float | None:
    return round(count / sent, 4) if sent else None


def slug_for(campaign_dir: Path) -> str:
    """The campaign slug is the folder's name (``campaigns/2020-02-cohes3ion``)."""
    return Path(campaign_dir).resolve().name


def load_report(
    campaign_dir: Path, state_path: Path, *, include_proofs: bool = False
) -> CampaignReport:
    """The report for the campaign in ``campaign_dir`` from the state store at ``state_path``."""
    if not Path(state_path).is_file():
        raise StoreError(
            f"{state_path}: no state store here, so nothing has been sent from it",
            hint="pass --state PATH (or set COHESION_MAIL_STATE) to the store send used",
        )
    with Store(state_path) as store:
        return campaign_report(store, slug_for(campaign_dir), include_proofs=include_proofs)


def campaign_report(
    store: Store, slug: str, *, include_proofs: bool = False, generated_at: str | None = None
) -> CampaignReport:
    """Everything the ledger and the events say about campaign ``slug``."""
    rows = store.query("SELECT id, subject FROM campaigns WHERE slug = ?", (slug,))
    if not rows:
        raise StoreError(
            f"{store.path}: no campaign {slug!r} has been sent from this state store",
            hint="check the folder name and --state; send it first with: cohesion-mail send "
            f"campaigns/{slug}",
        )
    cid, subject = int(rows[0]["id"]), rows[0]["subject"]
    proof_filter = (0, 1) if include_proofs else (0,)
    scope = f"d.campaign_id = ? AND d.is_proof IN ({', '.join('?' * len(proof_filter))})"
    params = (cid, *proof_filter)

    states = dict.fromkeys(DELIVERY_STATES, 0)
    for r in store.query(f"SELECT state, count(*) AS n FROM deliveries d WHERE {scope} "
                         "GROUP BY state", params):
        states[r["state"]] = int(r["n"])
    proofs = int(store.query("SELECT count(*) FROM deliveries WHERE campaign_id = ? "
                             "AND is_proof = 1", (cid,))[0][0])
    span = store.query(f"SELECT min(sent_at), max(sent_at) FROM deliveries d WHERE {scope} "
                       "AND sent_at IS NOT NULL", params)[0]
    sent = states["sent"]

    # Events of this campaign whose delivery is in scope (webhook events always have one).
    events = f"FROM events e JOIN deliveries d ON d.id = e.delivery_id WHERE {scope}"
    per_kind: dict[str, tuple[int, int, int, int]] = {}
    for r in store.query(
        "SELECT e.kind, count(*) AS total, count(DISTINCT e.delivery_id) AS uniq, "
        "sum(e.machine = 0) AS human, "
        "count(DISTINCT CASE WHEN e.machine = 0 THEN e.delivery_id END) AS human_uniq "
        f"{events} GROUP BY e.kind",
        params,
    ):
        per_kind[r["kind"]] = (int(r["total"]), int(r["uniq"]), int(r["human"] or 0),
                               int(r["human_uniq"]))

    def engagement(kind: str) -> Engagement:
        total, uniq, human, human_uniq = per_kind.get(kind, (0, 0, 0, 0))
        return Engagement(total, uniq, human, human_uniq, total - human,
                          _rate(uniq, sent), _rate(human_uniq, sent))

    def unique(kind: str) -> int:
        return per_kind.get(kind, (0, 0, 0, 0))[1]

    links = [
        LinkClicks(r["url"], int(r["total"]), int(r["uniq"]), int(r["human"] or 0),
                   int(r["human_uniq"]))
        for r in store.query(
            "SELECT e.url, count(*) AS total, count(DISTINCT e.delivery_id) AS uniq, "
            "sum(e.machine = 0) AS human, "
            "count(DISTINCT CASE WHEN e.machine = 0 THEN e.delivery_id END) AS human_uniq "
            f"{events} AND e.kind = 'click' GROUP BY e.url ORDER BY uniq DESC, total DESC, e.url",
            params,
        )
    ]
    opens, clicks = engagement("open"), engagement("click")
    delivered = unique("delivered")
    figures = {
        "delivered": delivered, "unsubscribe": unique("unsubscribe"), "bounce": unique("bounce"),
        "complaint": unique("complaint"),
    }
    rates = {
        "delivered": _rate(delivered, sent),
        "open": opens.unique_rate,
        "human_open": opens.human_unique_rate,
        "click": clicks.unique_rate,
        "human_click": clicks.human_unique_rate,
        "click_to_open": round(clicks.unique / opens.unique, 4) if opens.unique else None,
        "unsubscribe": _rate(figures["unsubscribe"], sent),
        "bounce": _rate(figures["bounce"], sent),
        "complaint": _rate(figures["complaint"], sent),
    }
    bucket, timeline = _timeline(store, events, params)
    return CampaignReport(
        slug=slug,
        subject=subject,
        generated_at=generated_at or now(),
        include_proofs=include_proofs,
        proofs=proofs,
        recipients=sum(states.values()),
        sent=sent,
        failed=states["failed"],
        in_doubt=states["in_doubt"],
        deferred=states["deferred"],
        pending=states["queued"] + states["sending"],
        delivered=delivered,
        opens=opens,
        clicks=clicks,
        links=links,
        webviews=unique("webview"),
        unsubscribes=figures["unsubscribe"],
        resubscribes=unique("resubscribe"),
        bounces=figures["bounce"],
        complaints=figures["complaint"],
        rates=rates,
        first_sent_at=span[0],
        last_sent_at=span[1],
        bucket=bucket,
        timeline=timeline,
        by_language=_by_language(store, scope, events, params),
    )


def _by_language(
    store: Store, scope: str, events: str, params: tuple[Any, ...]
) -> list[LanguageFigures]:
    """Per-language figures, most recipients first. Raw codes are normalised and merged
    (older ledgers may hold the subscriber's ``es-ES``), so a delivery counts once."""

    def code(raw: str | None) -> str:
        return normalise_language(raw) or (raw or "").strip().lower()

    counts: dict[str, dict[str, int]] = {}

    def add(raw: str | None, key: str, n: int) -> None:
        c = counts.setdefault(code(raw), {})
        c[key] = c.get(key, 0) + n

    for r in store.query(
        "SELECT d.language, count(*) AS n, sum(d.state = 'sent') AS sent "
        f"FROM deliveries d WHERE {scope} GROUP BY d.language",
        params,
    ):
        add(r["language"], "recipients", int(r["n"]))
        add(r["language"], "sent", int(r["sent"] or 0))
    for r in store.query(
        "SELECT d.language, e.kind, count(DISTINCT e.delivery_id) AS uniq, "
        "count(DISTINCT CASE WHEN e.machine = 0 THEN e.delivery_id END) AS human_uniq "
        f"{events} AND e.kind IN ('open', 'click', 'unsubscribe') GROUP BY d.language, e.kind",
        params,
    ):
        name = {"open": "opens", "click": "clicks", "unsubscribe": "unsubscribes"}[r["kind"]]
        if name == "unsubscribes":
            add(r["language"], name, int(r["uniq"]))
        else:
            add(r["language"], f"{name}_unique", int(r["uniq"]))
            add(r["language"], f"{name}_human_unique", int(r["human_uniq"]))
    out = []
    for language, c in counts.items():
        sent = c.get("sent", 0)
        out.append(LanguageFigures(
            language=language,
            recipients=c.get("recipients", 0),
            sent=sent,
            opens_unique=c.get("opens_unique", 0),
            opens_human_unique=c.get("opens_human_unique", 0),
            clicks_unique=c.get("clicks_unique", 0),
            clicks_human_unique=c.get("clicks_human_unique", 0),
            unsubscribes=c.get("unsubscribes", 0),
            open_rate=_rate(c.get("opens_unique", 0), sent),
            human_open_rate=_rate(c.get("opens_human_unique", 0), sent),
            click_rate=_rate(c.get("clicks_unique", 0), sent),
            human_click_rate=_rate(c.get("clicks_human_unique", 0), sent),
        ))
    return sorted(out, key=lambda f: (-f.recipients, f.language))


def _timeline(store: Store, events: str, params: tuple[Any, ...]) -> tuple[str, list[Bucket]]:
    """Opens and clicks per hour (or per day for long campaigns), empty buckets included."""
    rows = store.query(
        f"SELECT e.kind, e.machine, e.created_at {events} AND e.kind IN ('open', 'click')",
        params,
    )
    if not rows:
        return "hour", []
    stamps = [datetime.fromisoformat(r["created_at"]).astimezone(UTC) for r in rows]
    first, last = min(stamps), max(stamps)
    hourly = (last - first) <= timedelta(hours=HOURLY_LIMIT)
    step = timedelta(hours=1) if hourly else timedelta(days=1)

    def floor(t: datetime) -> datetime:
        t = t.replace(minute=0, second=0, microsecond=0)
        return t if hourly else t.replace(hour=0)

    counts: dict[datetime, list[int]] = {}
    t = floor(first)
    while t <= last:
        counts[t] = [0, 0, 0, 0]
        t += step
    for r, stamp in zip(rows, stamps, strict=True):
        c = counts[floor(stamp)]
        base = 0 if r["kind"] == "open" else 2
        c[base] += 1
        if not r["machine"]:
            c[base + 1] += 1
    return ("hour" if hourly else "day"), [
        Bucket(t.isoformat().replace("+00:00", "Z"), *c) for t, c in counts.items()
    ]


def as_dict(report: CampaignReport) -> dict[str, Any]:
    """The ``--json`` shape: every key always present, in a fixed order."""
    return asdict(report)
