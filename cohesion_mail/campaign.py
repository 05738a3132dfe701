"""Send one campaign: build once, queue the audience in the ledger, deliver, record, resume.

    plan()          what a send would do: the issue, how many recipients, through what
    send_campaign() the send itself (or a dry run), returning a ``SendSummary``

The pipeline is ``subscribers CSV → store (upsert) → ledger rows (queued) → claimed groups →
worker threads (personalise → MIME → transport) → ledger (sent / failed / deferred)``. The
exactly-once rules live in ``store.ledger``; the threads, rate limit and retries in
``sending``. Nothing here prints or prompts: the CLI shows ``plan`` and the summary.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError

from .config import ENV_SECRET, Settings
from .errors import AuthenticationError, ConfigError, TransportError
from .message import message_bytes
from .render.personalise import CompiledIssue
from .render.pipeline import build_issue
from .sending.compose import Composer
from .sending.lock import CampaignLock
from .sending.loop import SendLoop
from .sending.pool import Pool
from .store.db import Store
from .store.ledger import Delivery, Ledger, find_campaign, save_issue
from .store.subscribers import (
    Rejected,
    SubscriberRow,
    audience,
    import_csv,
    normalise_address,
    read_csv,
)
from .tracking.tokens import Links, Signer, load_secret
from .transports import describe_dsn, open_transport

#: Rows claimed per ledger transaction: commits amortised over this many messages.
GROUP = 32
#: How many queued rows one ``enqueue`` transaction inserts.
ENQUEUE_CHUNK = 1000
REJECTED_SAMPLE = 50

Progress = Callable[[int, int], None]
"""``progress(done, total)``: recipients finished (sent or failed) so far, out of ``total``."""


@dataclass
class SendPlan:
    """What ``send_campaign`` is about to do, for the confirmation prompt."""

    campaign_dir: Path
    issue: CompiledIssue
    transport: str  # described, never a secret
    proof: bool
    recipients: int  # messages this run will send (after --limit)
    new: int = 0  # addresses not yet in the ledger
    already_sent: int = 0
    suppressed: int = 0
    in_doubt: int = 0  # not re-sent without --resend-in-doubt
    failed_before: int = 0  # not retried without --retry-failed
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0
    warnings: list[str] = field(default_factory=list)
    subscribers: Path | None = None

    @property
    def slug(self) -> str:
        return self.issue.slug


@dataclass
class SendSummary:
    """What a run did, and where the campaign stands now."""

    slug: str
    transport: str
    campaign_id: int | None = None
    dry_run: bool = False
    proof: bool = False
    planned: int = 0
    sent: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (email, reason), first 100
    deferred: int = 0  # left deferred: retried on the next run
    remaining: int = 0  # still queued (stopped, or --limit)
    in_doubt: int = 0  # in the ledger now, not re-sent without --resend-in-doubt
    recovered_in_doubt: int = 0  # found left "sending" by a killed run at this start
    skipped_suppressed: int = 0
    skipped_already_sent: int = 0
    skipped_failed_before: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rejected_count: int = 0
    warnings: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    interrupted: bool = False
    stopped_by: str = ""  # the transport error that stopped the run, if one did
    elapsed: float = 0.0
    bytes_total: int = 0  # dry run: size of every message built
    bytes_max: int = 0

    @property
    def rate(self) -> float:
        done = self.planned if self.dry_run else self.sent + self.failed
        return done / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("rejected", "failures")}
        data["failures"] = [{"email": e, "reason": r} for e, r in self.failures]
        data["rejected"] = [{"line": r.line, "reason": r.reason} for r in self.rejected]
        data["rate"] = round(self.rate, 1)
        return data


# -- planning ---------------------------------------------------------------------------


def subscribers_path(settings: Settings, subscribers: Path | None) -> Path:
    """``--subscribers`` or ``[send] subscribers`` (relative to the project root)."""
    if subscribers is not None:
        return Path(subscribers)
    return settings.root / settings.send.subscribers


def plan(
    campaign_dir: Path,
    settings: Settings,
    *,
    store: Store,
    subscribers: Path | None = None,
    transport: str | None = None,
    to: Sequence[str] | None = None,
    limit: int | None = None,
    resend_in_doubt: bool = False,
    retry_failed: bool = False,
) -> SendPlan:
    """Build the issue and count who a send would reach; writes nothing."""
    issue = build_issue(Path(campaign_dir), settings)
    dsn = settings.transport_dsn(transport)
    described = open_transport(dsn, campaign_dir=Path(campaign_dir)).describe()
    if to:
        addresses = proof_addresses(to)
        return SendPlan(Path(campaign_dir), issue, described, True, len(addresses))
    path = subscribers_path(settings, subscribers)
    result = read_csv(path)
    to_send, skipped = audience(store, result.rows)
    cid = find_campaign(store, issue.slug)
    p = SendPlan(
        Path(campaign_dir),
        issue,
        described,
        False,
        0,
        suppressed=len(skipped),
        rejected=result.rejected[:REJECTED_SAMPLE],
        rejected_count=len(result.rejected),
        warnings=result.warnings,
        subscribers=path,
    )
    if cid is None:
        p.new = len(to_send)
        p.recipients = p.new if limit is None else min(limit, p.new)
        return p
    ledger = Ledger(store, cid)
    known = ledger.states([r.email for r in to_send])
    p.new = sum(1 for r in to_send if r.email.lower() not in known)
    counts = ledger.counts()
    p.already_sent = counts["sent"]
    p.in_doubt = counts["in_doubt"] + counts["sending"]
    p.failed_before = counts["failed"]
    resend = ("queued", "deferred")
    resend += ("in_doubt", "sending") if resend_in_doubt else ()
    resend += ("failed",) if retry_failed else ()
    pending = ledger.pending_count(resend)
    p.recipients = p.new + pending if limit is None else min(limit, p.new + pending)
    return p


def proof_addresses(to: Sequence[str]) -> list[str]:
    """Validated, de-duplicated ``--to`` addresses; ``ConfigError`` naming a bad one."""
    out: list[str] = []
    for raw in to:
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                address, _ = normalise_address(item)
            except EmailNotValidError as exc:
                raise ConfigError(f"--to {item!r}: not a valid email address: {exc}") from exc
            if address.lower() not in (a.lower() for a in out):
                out.append(address)
    if not out:
        raise ConfigError("--to: no address given", hint="e.g. --to you@example.org")
    return out


# -- sending ----------------------------------------------------------------------------


def send_campaign(
    campaign_dir: Path,
    settings: Settings,
    *,
    store: Store,
    subscribers: Path | None = None,
    transport: str | None = None,
    to: Sequence[str] | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    connections: int = 1,
    rate: float = 0.0,
    resend_in_doubt: bool = False,
    retry_failed: bool = False,
    progress: Progress | None = None,
    check: Callable[[CompiledIssue], None] | None = None,
    prepared: SendPlan | None = None,
) -> SendSummary:
    """Send ``campaign_dir`` to its audience (or ``to``, as proofs); resumable at any point.

    ``check(issue)`` runs after the build and before anything is queued: the hook for the
    preflight checks (issue 5), which raise ``CheckFailed`` to refuse. ``prepared`` reuses the
    issue ``plan`` already built. Raises ``TransportError``/``AuthenticationError`` (with a
    ``summary`` attribute) when the transport stops the run; every row is then resumable.
    """
    started = time.monotonic()
    campaign_dir = Path(campaign_dir)
    if connections < 1:
        raise ConfigError(f"--connections must be at least 1, got {connections}")
    if rate < 0:
        raise ConfigError(f"--rate must be 0 (no limit) or more, got {rate}")
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit must be 0 or more, got {limit}")
    issue = prepared.issue if prepared is not None else build_issue(campaign_dir, settings)
    if check is not None:
        check(issue)
    dsn = settings.transport_dsn(transport)
    if dry_run:
        return _dry_run(campaign_dir, issue, settings, store, subscribers, to, limit, dsn, started)

    with CampaignLock(store.path, issue.slug):
        cid = store.campaign_id(issue.slug, issue.subject)
        click = bool(getattr(issue, "click_tracking", settings.send.click_tracking))
        save_issue(store, cid, language=issue.language, subject=issue.subject,
                   compiled=issue.to_json(), directory=str(campaign_dir.resolve()),
                   click_tracking=click)
        secret, notice = load_secret(store.path)
        composer = Composer(issue, settings, Links(settings.base_url, Signer(secret)), cid,
                            click_tracking=click, open_tracking=settings.send.open_tracking)
        transports = [open_transport(dsn, campaign_dir=campaign_dir) for _ in range(connections)]
        summary = SendSummary(issue.slug, transports[0].describe(), cid, proof=bool(to))
        if notice:
            summary.notices.append(notice)
        ledger = Ledger(store, cid)
        summary.recovered_in_doubt = ledger.recover()
        requeue = ["deferred"]
        requeue += ["in_doubt"] if resend_in_doubt else []
        requeue += ["failed"] if retry_failed else []
        ledger.requeue(requeue)

        claim: Callable[[int], list[Delivery]]
        if to:
            ids = ledger.add_proofs([(a, "", "") for a in proof_addresses(to)], dsn_scheme(dsn))
            claim = _claim_ids(ledger, ids)
            summary.planned = len(ids)
        else:
            _enqueue_audience(ledger, store, subscribers_path(settings, subscribers),
                              dsn_scheme(dsn), summary)
            summary.skipped_suppressed += ledger.drop_suppressed()
            before = ledger.counts()
            summary.skipped_already_sent = before["sent"]
            summary.skipped_failed_before = before["failed"]
            queued = before["queued"]
            summary.planned = queued if limit is None else min(limit, queued)
            claim = _claim_next(ledger)

        group = GROUP if not rate else max(1, min(GROUP, int(rate / (4 * connections)) or 1))
        group = max(group, min(transports[0].max_batch, 500))
        loop = SendLoop(
            ledger,
            Pool(transports, composer.for_delivery, rate=rate),
            claim,
            group=group,
            window=2 * connections * group,
            limit=None if to else limit,
            transport_name=dsn_scheme(dsn),
            progress=(lambda done: progress(done, summary.planned)) if progress else None,
        )
        stats = loop.run()

        summary.sent, summary.failed, summary.failures = stats.sent, stats.failed, stats.failures
        summary.interrupted = stats.interrupted
        after = ledger.counts(proofs=bool(to))
        summary.deferred = after["deferred"]
        summary.remaining = after["queued"]
        summary.in_doubt = after["in_doubt"]
        summary.elapsed = time.monotonic() - started
        if stats.crash is not None:
            raise stats.crash
        if stats.error is not None:
            raise _stopped(stats.error, summary, campaign_dir)
        return summary


def dsn_scheme(dsn: str) -> str:
    """The transport name stored on delivery rows: the scheme only, never credentials."""
    return dsn.split("://", 1)[0].lower() if "://" in dsn else dsn.lower()


def _stopped(error: TransportError, summary: SendSummary, campaign_dir: Path) -> TransportError:
    """The transport's error, re-raised with how far the run got and how to resume."""
    cls = AuthenticationError if isinstance(error, AuthenticationError) else TransportError
    summary.stopped_by = error.message
    message = (
        f"{error.message}\nThe send stopped after {summary.sent} sent and {summary.failed} "
        f"failed; {summary.remaining} recipients are still queued."
    )
    hint = (error.hint + "; then " if error.hint else "") + (
        f"run `cohesion-mail send {campaign_dir}` again to resume (nobody is sent twice)"
    )
    stopped = cls(message, hint=hint)
    stopped.summary = summary  # type: ignore[attr-defined]
    stopped.__cause__ = error
    return stopped


def _claim_next(ledger: Ledger) -> Callable[[int], list[Delivery]]:
    after = 0

    def claim(n: int) -> list[Delivery]:
        nonlocal after
        rows = ledger.claim_next(n, after)
        if rows:
            after = rows[-1].id
        return rows

    return claim


def _claim_ids(ledger: Ledger, ids: list[int]) -> Callable[[int], list[Delivery]]:
    todo = iter(ids)

    def claim(n: int) -> list[Delivery]:
        batch = [i for _, i in zip(range(n), todo, strict=False)]
        return ledger.claim_ids(batch) if batch else []

    return claim


def _enqueue_audience(
    ledger: Ledger, store: Store, path: Path, transport: str, summary: SendSummary
) -> None:
    """Upsert the CSV into the store (so the tracking service knows every recipient), then
    queue each non-suppressed address once."""
    result = import_csv(store, path)
    summary.rejected = result.rejected[:REJECTED_SAMPLE]
    summary.rejected_count = len(result.rejected)
    summary.warnings = result.warnings
    to_send, skipped = audience(store, result.rows)
    summary.skipped_suppressed = len(skipped)
    for chunk in _chunked(to_send, ENQUEUE_CHUNK):
        ledger.enqueue(((r.email, r.name, r.language) for r in chunk), transport)


def _chunked(rows: Sequence[SubscriberRow], size: int) -> Iterator[Sequence[SubscriberRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# -- dry run ----------------------------------------------------------------------------


def _dry_run(
    campaign_dir: Path,
    issue: CompiledIssue,
    settings: Settings,
    store: Store,
    subscribers: Path | None,
    to: Sequence[str] | None,
    limit: int | None,
    dsn: str,
    started: float,
) -> SendSummary:
    """Build every message a send would (personalise + MIME) and measure; write nothing."""
    described = open_transport(dsn, campaign_dir=campaign_dir).describe()
    cid = find_campaign(store, issue.slug)
    summary = SendSummary(issue.slug, described, cid, dry_run=True, proof=bool(to))
    click = bool(getattr(issue, "click_tracking", settings.send.click_tracking))
    # A dry run must not create the secret file; a throwaway secret signs its links.
    secret = _existing_secret(store.path) or secrets.token_bytes(32)
    composer = Composer(issue, settings, Links(settings.base_url, Signer(secret)), cid or 0,
                        click_tracking=click, open_tracking=settings.send.open_tracking)

    def build(email: str, name: str, values: dict[str, str], language: str, proof: bool) -> None:
        msg = composer.message(0, email, name, values, language=language, is_proof=proof)
        size = len(message_bytes(msg))
        summary.planned += 1
        summary.bytes_total += size
        summary.bytes_max = max(summary.bytes_max, size)

    if to:
        for address in proof_addresses(to):
            build(address, "", {}, "", True)
    else:
        result = read_csv(subscribers_path(settings, subscribers))
        summary.rejected = result.rejected[:REJECTED_SAMPLE]
        summary.rejected_count = len(result.rejected)
        summary.warnings = result.warnings
        to_send, skipped = audience(store, result.rows)
        summary.skipped_suppressed = len(skipped)
        sent: set[str] = set()
        if cid is not None:
            ledger = Ledger(store, cid)
            sent = ledger.sent_addresses([r.email for r in to_send])
            summary.skipped_already_sent = len(sent)
        for row in to_send:
            if limit is not None and summary.planned >= limit:
                break
            if row.email.lower() in sent:
                continue
            build(row.email, row.name, row.merge_values(), row.language, False)
    summary.elapsed = time.monotonic() - started
    return summary


def _existing_secret(state_path: Path) -> bytes | None:
    env = os.environ.get(ENV_SECRET)
    if env:
        return env.encode("utf-8")
    path = state_path.parent / "secret"
    return path.read_bytes().strip() if path.is_file() else None


__all__ = [
    "SendPlan",
    "SendSummary",
    "plan",
    "proof_addresses",
    "send_campaign",
    "subscribers_path",
]
