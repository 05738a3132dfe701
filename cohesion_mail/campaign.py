"""Send one campaign: build once, queue the audience in the ledger, deliver, record, resume.

    plan()             what a send would do: the issue, how many recipients, through what
    send_campaign()    the send itself (or a dry run), returning a ``SendSummary``
    campaign_status()  deliveries per state, failed and in-doubt recipients

The pipeline is ``subscriber CSV → store (upsert) → ledger rows (queued) → claimed groups →
composed messages → worker threads → transport → ledger (sent / failed / deferred)``. The
exactly-once rules live in ``store.ledger``; threads, rate limit and retries in ``sending``.
Nothing here prints or prompts: the CLI shows the plan, the progress and the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import Settings
from .errors import AuthenticationError, ConfigError, TransportError
from .render.personalise import CompiledIssue
from .render.variants import Variants, build_variants
from .sending.audience import (
    AudienceFile,
    load_audience,
    new_addresses,
    proof_addresses,
    queue_audience,
    subscribers_path,
)
from .sending.compose import Composer, EditionComposer
from .sending.dryrun import dry_run as _dry_run
from .sending.lock import CampaignLock
from .sending.loop import SendLoop
from .sending.pool import Pool
from .sending.status import CampaignStatus, campaign_status
from .store.db import Store
from .store.ledger import Delivery, Ledger, find_campaign, save_issue
from .store.subscribers import Rejected
from .tracking.tokens import Links, Signer, load_secret
from .transports import open_transport

#: Rows claimed per ledger transaction: the commit (an fsync) is shared by this many messages.
GROUP = 32

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
    audience: AudienceFile | None = None  # the CSV as loaded; send_campaign reuses it
    variants: Variants | None = None  # every language edition, compiled once; reused by send

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
    planned: int = 0  # messages this run set out to send (or built, for a dry run)
    sent: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (email, reason), first 100
    deferred: int = 0  # left deferred: retried on the next run
    remaining: int = 0  # still queued (stopped, or --limit)
    in_doubt: int = 0  # in the ledger now; not re-sent without --resend-in-doubt
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
        """Messages per second over the whole run (setup included)."""
        done = self.planned if self.dry_run else self.sent + self.failed
        return done / self.elapsed if self.elapsed > 0 else 0.0


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
    """Build the issue and count whom a send would reach. Writes nothing."""
    campaign_dir = Path(campaign_dir)
    variants = build_variants(campaign_dir, settings)
    issue = variants.main_issue
    dsn = settings.transport_dsn(transport)
    described = open_transport(dsn, campaign_dir=campaign_dir).describe()
    if to:
        return SendPlan(campaign_dir, issue, described, True, len(proof_addresses(to)),
                        variants=variants)
    path = subscribers_path(settings, subscribers)
    loaded = load_audience(store, path)
    p = SendPlan(
        campaign_dir, issue, described, False, 0,
        suppressed=loaded.suppressed,
        rejected=loaded.rejected,
        rejected_count=loaded.rejected_count,
        warnings=loaded.warnings,
        subscribers=path,
        audience=loaded,
        variants=variants,
    )
    pending = 0
    cid = find_campaign(store, issue.slug)
    p.new = new_addresses(store, cid)
    if cid is not None:
        ledger = Ledger(store, cid)
        counts = ledger.counts()
        p.already_sent = counts["sent"]
        p.in_doubt = counts["in_doubt"] + counts["sending"]
        p.failed_before = counts["failed"]
        states = ["queued", "deferred"]
        states += ["in_doubt", "sending"] if resend_in_doubt else []
        states += ["failed"] if retry_failed else []
        pending = ledger.pending_count(states)
        if resend_in_doubt:
            p.in_doubt = 0  # they are among the recipients now
        if retry_failed:
            p.failed_before = 0
    p.recipients = p.new + pending if limit is None else min(limit, p.new + pending)
    return p


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
    """Send ``campaign_dir`` to its audience (or to ``to``, as proofs); resumable at any point.

    ``check(issue)`` runs after the build, before anything is queued: the hook for the
    preflight checks (issue 5), which raise ``CheckFailed`` to refuse. ``prepared`` reuses the
    issue a ``plan`` call built. When the transport stops the run (server down, login
    refused), the ``TransportError``/``AuthenticationError`` raised carries the partial
    ``summary`` and says how to resume; every unsent row is still queued.
    """
    started = time.monotonic()
    campaign_dir = Path(campaign_dir)
    if connections < 1:
        raise ConfigError(f"--connections must be at least 1, got {connections}")
    if rate < 0:
        raise ConfigError(f"--rate must be 0 (no limit) or more, got {rate}")
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit must be 0 or more, got {limit}")
    variants = (prepared.variants if prepared is not None and prepared.variants is not None
                else build_variants(campaign_dir, settings))
    issue = variants.main_issue
    if check is not None:
        check(issue)
    dsn = settings.transport_dsn(transport)
    click = bool(getattr(issue, "click_tracking", settings.send.click_tracking))
    if dry_run:
        described = open_transport(dsn, campaign_dir=campaign_dir).describe()
        loaded = None if to else _audience(store, settings, subscribers, prepared)
        found = _dry_run(issue, settings, store, loaded, to=to, limit=limit,
                         click_tracking=click)
        summary = SendSummary(
            issue.slug, described, find_campaign(store, issue.slug), dry_run=True,
            proof=bool(to), planned=found.built, skipped_already_sent=found.already_sent,
            elapsed=time.monotonic() - started, bytes_total=found.bytes_total,
            bytes_max=found.bytes_max,
        )
        if loaded is not None:
            summary.skipped_suppressed = loaded.suppressed
            summary.rejected, summary.rejected_count = loaded.rejected, loaded.rejected_count
            summary.warnings = loaded.warnings
        return summary

    with CampaignLock(store.path, issue.slug):
        cid = store.campaign_id(issue.slug, issue.subject)
        for edition in variants:
            save_issue(store, cid, language=edition, subject=variants[edition].subject,
                       compiled=variants[edition].to_json(),
                       directory=str(campaign_dir.resolve()), click_tracking=click)
        secret, notice = load_secret(store.path)
        links = Links(settings.base_url, Signer(secret))
        composer = EditionComposer(
            {
                edition: Composer(variants[edition], settings, links, cid, click_tracking=click,
                                  open_tracking=settings.send.open_tracking)
                for edition in variants
            },
            variants.main,
        )
        transports = [open_transport(dsn, campaign_dir=campaign_dir) for _ in range(connections)]
        scheme = transports[0].scheme or dsn.split(":", 1)[0]
        summary = SendSummary(issue.slug, transports[0].describe(), cid, proof=bool(to))
        summary.notices += [notice] if notice else []

        ledger = Ledger(store, cid)
        summary.recovered_in_doubt = ledger.recover()
        ledger.requeue(
            ["deferred"] + ["in_doubt"] * resend_in_doubt + ["failed"] * retry_failed
        )
        claim: Callable[[int], list[Delivery]]
        if to:
            ids = ledger.add_proofs(
                [(a, "", variants.main) for a in proof_addresses(to)], scheme
            )
            claim = _claim_ids(ledger, ids)
            summary.planned = len(ids)
        else:
            loaded = _audience(store, settings, subscribers, prepared)
            queue_audience(store, ledger, loaded, scheme, variants.language_for)
            ledger.drop_suppressed()  # queued by an earlier run, unsubscribed since
            summary.skipped_suppressed = loaded.suppressed
            summary.rejected, summary.rejected_count = loaded.rejected, loaded.rejected_count
            summary.warnings = loaded.warnings
            before = ledger.counts()
            summary.skipped_already_sent = before["sent"]
            summary.skipped_failed_before = before["failed"]
            summary.planned = before["queued"] if limit is None else min(limit, before["queued"])
            claim = _claim_next(ledger)

        # A group is what one claim takes (one durable commit); under --rate, smaller groups
        # keep the rows in flight, and so a crash's in-doubt count, to a fraction of a second.
        group = GROUP if not rate else max(1, min(GROUP, int(rate / (4 * connections))))
        group = max(group, min(transports[0].max_batch, 500))
        stats = SendLoop(
            ledger,
            Pool(transports, rate=rate),
            claim,
            composer.for_delivery,
            group=group,
            window=2 * connections * group,
            limit=None if to else limit,
            transport_name=scheme,
            progress=(lambda done: progress(done, summary.planned)) if progress else None,
        ).run()

        summary.sent, summary.failed, summary.failures = stats.sent, stats.failed, stats.failures
        summary.interrupted = stats.interrupted
        after = ledger.counts(proofs=bool(to))
        summary.deferred, summary.remaining = after["deferred"], after["queued"]
        summary.in_doubt = after["in_doubt"]
        summary.elapsed = time.monotonic() - started
        if stats.crash is not None:
            raise stats.crash
        if stats.error is not None:
            raise _stopped(stats.error, summary, campaign_dir)
        return summary


def _audience(
    store: Store, settings: Settings, subscribers: Path | None, prepared: SendPlan | None
) -> AudienceFile:
    """The subscriber file as ``plan`` loaded it, or loaded now (it changed, or no plan)."""
    path = subscribers_path(settings, subscribers)
    if (prepared is not None and prepared.audience is not None
            and prepared.audience.path == path and prepared.audience.current(store)):
        return prepared.audience
    return load_audience(store, path)


def _stopped(error: TransportError, summary: SendSummary, campaign_dir: Path) -> TransportError:
    """The transport's error again, with how far the run got and how to resume."""
    cls = AuthenticationError if isinstance(error, AuthenticationError) else TransportError
    summary.stopped_by = error.message
    resume = f"run `cohesion-mail send {campaign_dir}` again to resume (nobody is sent twice)"
    # The transport's own hint may already say "run send again"; say it once, with the folder.
    hint = f"{error.hint}; then {resume}" if error.hint and "resume" not in error.hint else resume
    stopped = cls(
        f"{error.message}\nThe send stopped: {summary.sent} sent, {summary.failed} failed, "
        f"{summary.remaining} still queued.",
        hint=hint,
    )
    stopped.summary = summary  # type: ignore[attr-defined]
    stopped.__cause__ = error
    return stopped


def _claim_next(ledger: Ledger) -> Callable[[int], list[Delivery]]:
    """Claim queued rows in id order, paging on from the last id (no rescans)."""
    after = 0

    def claim(n: int) -> list[Delivery]:
        nonlocal after
        rows = ledger.claim_next(n, after)
        if rows:
            after = rows[-1].id
        return rows

    return claim


def _claim_ids(ledger: Ledger, ids: list[int]) -> Callable[[int], list[Delivery]]:
    todo = list(ids)

    def claim(n: int) -> list[Delivery]:
        batch, todo[:n] = todo[:n], []
        return ledger.claim_ids(batch) if batch else []

    return claim


__all__ = [
    "CampaignStatus",
    "SendPlan",
    "SendSummary",
    "campaign_status",
    "plan",
    "proof_addresses",
    "send_campaign",
    "subscribers_path",
]
