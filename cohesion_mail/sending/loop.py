"""The main thread of a send: claim groups, feed the pool, write results, retry what was deferred.

Only this thread writes the ledger. It keeps a bounded window of claimed rows in flight (so a
``kill -9`` leaves at most that many ``in_doubt``), retries a deferred recipient with
exponential backoff (0.2 s · 2ⁿ, capped at 5 s, at most ``MAX_TRIES`` attempts per run) and
then marks it failed with the server's last words.

Stopping: the first Ctrl-C (SIGINT) stops handing out work, lets in-flight messages finish and
records them; a second one ends at once (rows in flight become ``in_doubt`` on the next run).
A ``TransportError`` from any worker stops the run the same way, its rows back in ``queued``.
"""

from __future__ import annotations

import heapq
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from ..errors import CohesionMailError, TransportError
from ..message import OutgoingMessage
from ..store.ledger import Delivery, Ledger, Outcome
from ..transports.base import Status
from .pool import Broken, Pool, Reported, Unsent

MAX_TRIES = 5
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0
FAILURE_SAMPLE = 100  # failed recipients listed in the summary (status lists them all)
FLUSH = 0.05  # seconds a result may wait to be written with others


def backoff(tries: int) -> float:
    """Seconds before try ``tries + 1`` of a deferred message."""
    return float(min(BACKOFF_BASE * 2 ** (tries - 1), BACKOFF_CAP))


@dataclass
class LoopStats:
    """What one run did (the ledger holds the rest)."""

    sent: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (email, reason), bounded
    interrupted: bool = False
    error: TransportError | None = None
    crash: BaseException | None = None

    @property
    def done(self) -> int:
        return self.sent + self.failed


def _rows(report: Reported | Unsent | Broken) -> int:
    if isinstance(report, Reported):
        return len(report.attempts) + len(report.doubtful)
    if isinstance(report, Unsent):
        return len(report.ids)
    return len(report.doubtful) + len(report.unsent)


class SendLoop:
    """Drive ``pool`` with rows from ``claim`` until it is empty, the limit is reached or a stop.

    ``claim(n)`` returns up to ``n`` newly claimed rows (``[]`` when there are no more);
    ``group`` is how many rows one claim takes; ``window`` how many may be in flight.
    """

    def __init__(
        self,
        ledger: Ledger,
        pool: Pool,
        claim: Callable[[int], list[Delivery]],
        compose: Callable[[Delivery], OutgoingMessage],
        *,
        group: int,
        window: int,
        limit: int | None = None,
        transport_name: str = "",
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.pool = pool
        self.claim = claim
        self.compose = compose
        self.group = max(1, group)
        self.window = max(self.group, window)
        self.limit = limit
        self.transport_name = transport_name
        self.progress = progress
        self.stats = LoopStats()
        self.pending: set[int] = set()
        self.claimed = 0
        self.exhausted = False
        self.stopping = False
        self.tries: dict[int, int] = {}
        self.retry_heap: list[tuple[float, int]] = []
        self._interrupts = 0

    # -- public -----------------------------------------------------------------------

    def run(self) -> LoopStats:
        with _first_sigint_stops(self):
            try:
                self._loop()
            except KeyboardInterrupt:
                # A second Ctrl-C: leave now. The daemon workers die with the process and
                # their rows, still "sending", become in_doubt on the next run.
                self.pool.stop.set()
                raise
            except BaseException:
                self.pool.stop.set()
                self.pool.close(timeout=5)
                raise
        self.pool.close()
        return self.stats

    # -- the loop ---------------------------------------------------------------------

    def _loop(self) -> None:
        # Reports are buffered and written together: one commit for up to a group of
        # results (or FLUSH seconds' worth), not one per message.
        buffered: list[Reported | Unsent | Broken] = []
        rows = 0
        since = 0.0
        while True:
            if self._interrupts and not self.stopping:
                self._stop(interrupted=True)
            if not self.stopping:
                self._fill()
            if not self.pending and (
                self.stopping or (self.exhausted and not self.retry_heap)
            ):
                return
            now = time.monotonic()
            timeout = 0.2
            if self.retry_heap and not self.stopping:
                timeout = min(timeout, max(0.0, self.retry_heap[0][0] - now))
            if buffered:
                timeout = min(timeout, max(0.0, since + FLUSH - now))
            got: list[Reported | Unsent | Broken] = []
            try:
                got.append(self.pool.reports.get(timeout=timeout))
                while True:
                    got.append(self.pool.reports.get_nowait())
            except queue.Empty:
                pass
            if got and not buffered:
                since = time.monotonic()
            buffered += got
            rows += sum(map(_rows, got))
            if buffered and (
                rows >= min(self.group, len(self.pending))
                or time.monotonic() - since >= FLUSH
                or any(not isinstance(r, Reported) for r in buffered)
            ):
                self._apply(buffered)
                buffered, rows = [], 0

    def _stop(self, *, interrupted: bool = False) -> None:
        self.stopping = True
        self.stats.interrupted = self.stats.interrupted or interrupted
        self.pool.stop.set()

    def _fill(self) -> None:
        # Whole groups only, so rows in flight (and a crash's in-doubt count) never exceed
        # the window.
        while len(self.pending) + self.group <= self.window:
            now = time.monotonic()
            if self.retry_heap and self.retry_heap[0][0] <= now:
                ids: list[int] = []
                while self.retry_heap and self.retry_heap[0][0] <= now and len(ids) < self.group:
                    ids.append(heapq.heappop(self.retry_heap)[1])
                # A row not claimed back was suppressed meanwhile: it stays deferred and is
                # dropped from this run.
                rows = self.ledger.claim_ids(ids, ("deferred",))
            elif self.exhausted or len(self.retry_heap) >= self.window * 4:
                return  # many deferred: let the retries drain before taking more
            else:
                n = self.group
                if self.limit is not None:
                    n = min(n, self.limit - self.claimed)
                    if n <= 0:
                        self.exhausted = True
                        return
                rows = self.claim(n)
                if not rows:
                    self.exhausted = True
                    return
                self.claimed += len(rows)
            if rows:
                self._submit(rows)

    def _submit(self, rows: list[Delivery]) -> None:
        """Compose each message here, in the main thread, while the workers wait on their
        sockets; a recipient whose message cannot be built (a merge field without a value)
        fails on its own."""
        job: list[tuple[Delivery, OutgoingMessage]] = []
        failed: list[Outcome] = []
        for d in rows:
            try:
                job.append((d, self.compose(d)))
            except CohesionMailError as exc:
                failed.append(self._outcome(d, Status.FAILED, str(exc), "", ""))
        if failed:
            self.ledger.record(failed, self.transport_name)
        if job:
            self.pending.update(d.id for d, _ in job)
            self.pool.submit(job)

    def _apply(self, reports: list[Reported | Unsent | Broken]) -> None:
        outcomes: list[Outcome] = []
        release: list[int] = []
        doubtful: list[int] = []
        stop_error: TransportError | None = None
        for report in reports:
            if isinstance(report, Reported):
                for attempt in report.attempts:
                    outcomes.append(self._outcome(attempt.delivery, attempt.status,
                                                  attempt.detail, attempt.message_id,
                                                  attempt.provider_message_id))
                    self.pending.discard(attempt.delivery.id)
                doubtful += report.doubtful
            elif isinstance(report, Unsent):
                release += report.ids
                if report.error is not None and stop_error is None:
                    stop_error = report.error
            else:
                release += report.unsent
                doubtful += report.doubtful
                if self.stats.crash is None:
                    self.stats.crash = report.error
                self._stop()
        for did in (*release, *doubtful):
            self.pending.discard(did)
        self.ledger.record(outcomes, self.transport_name, release=release, in_doubt=doubtful)
        if stop_error is not None and self.stats.error is None:
            self.stats.error = stop_error
            self._stop()
        if self.progress is not None:
            self.progress(self.stats.done)

    def _outcome(
        self, d: Delivery, status: Status, detail: str, message_id: str, provider_id: str
    ) -> Outcome:
        if status is Status.SENT:
            self.stats.sent += 1
            self.tries.pop(d.id, None)
            return Outcome(d.id, "sent", detail, message_id, provider_id)
        if status is Status.DEFERRED:
            tries = self.tries.get(d.id, 0) + 1
            if tries < MAX_TRIES and not self.stopping:
                self.tries[d.id] = tries
                heapq.heappush(self.retry_heap, (time.monotonic() + backoff(tries), d.id))
                return Outcome(d.id, "deferred", detail, message_id)
            if tries < MAX_TRIES:  # stopping: leave it deferred, the next run retries it
                self.tries.pop(d.id, None)
                return Outcome(d.id, "deferred", detail, message_id)
            self.tries.pop(d.id, None)
            detail = f"still refused after {tries} attempts: {detail}"
        self.stats.failed += 1
        if len(self.stats.failures) < FAILURE_SAMPLE:
            self.stats.failures.append((d.email, detail))
        return Outcome(d.id, "failed", detail, message_id)


@contextmanager
def _first_sigint_stops(loop: SendLoop) -> Iterator[None]:
    """While the loop runs in the main thread, the first SIGINT (Ctrl-C) asks for a clean
    stop; a second one raises ``KeyboardInterrupt`` as usual."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        loop._interrupts += 1
        if loop._interrupts > 1:
            raise KeyboardInterrupt
        loop.pool.stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
