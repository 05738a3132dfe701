"""Worker threads, one transport (one connection) each, sharing a rate limit.

Threads, not processes: a worker spends most of its time waiting on its socket, which releases
the GIL, and the per-message CPU work (personalise + serialise) is small. Workers never touch
the database: they report what happened on a queue and the main thread writes the ledger, so
SQLite sees one writer and commits are batched.

A worker takes a *job*: a group of claimed rows (already ``sending`` in the ledger) with their
composed messages. It slices it by the transport's ``max_batch`` and reports once per job:

* ``Reported``: the transport answered; one ``Attempt`` per row.
* ``Unsent``: rows that never reached the transport (a stop was requested, or the transport
  raised ``TransportError``: it could not connect or lost the server before accepting them).
* ``Broken``: the transport or our own code raised something unexpected; the slice in hand
  may or may not have been accepted, so those rows are reported as doubtful.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import TransportError
from ..message import OutgoingMessage
from ..store.ledger import Delivery
from ..transports.base import RecipientResult, Status, Transport


@dataclass(frozen=True)
class Attempt:
    """One row's answer from one transport call."""

    delivery: Delivery
    status: Status
    detail: str = ""
    message_id: str = ""
    provider_message_id: str = ""


@dataclass
class Reported:
    attempts: list[Attempt]
    doubtful: list[int] = field(default_factory=list)  # the transport gave no answer for these


@dataclass
class Unsent:
    ids: list[int]
    error: TransportError | None = None


@dataclass
class Broken:
    error: BaseException
    doubtful: list[int] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)


Report = Reported | Unsent | Broken


class TokenBucket:
    """A global messages-per-second limit shared by every worker (no burst above one message).

    Each caller reserves the next free slot under a lock and then sleeps outside it, so
    workers never wait on each other's sleeps; ``stop`` interrupts the wait.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, n: int, stop: threading.Event) -> bool:
        """Block until ``n`` messages may go; False if ``stop`` was set meanwhile."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + n * self.interval
        delay = start - now
        if delay > 0:
            return not stop.wait(delay)
        return not stop.is_set()


Job = list[tuple[Delivery, OutgoingMessage]]


class Pool:
    """``len(transports)`` worker threads fed with groups of composed messages.

    Messages are composed by the main thread before they are submitted, so that work overlaps
    the workers' waits on their sockets instead of adding to them.
    """

    def __init__(self, transports: Sequence[Transport], *, rate: float = 0.0) -> None:
        self.bucket = TokenBucket(rate) if rate > 0 else None
        self.stop = threading.Event()
        self.work: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.reports: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self.transports = list(transports)
        # Daemon threads: a second Ctrl-C must be able to end the process at once (the rows
        # in flight stay "sending" and become in_doubt on the next run; nothing is lost).
        self.threads = [
            threading.Thread(target=self._run, args=(t,), name=f"send-{i}", daemon=True)
            for i, t in enumerate(self.transports)
        ]
        for thread in self.threads:
            thread.start()

    @property
    def max_batch(self) -> int:
        return max(1, self.transports[0].max_batch)

    def submit(self, job: Job) -> None:
        self.work.put(job)

    def close(self, timeout: float = 30.0) -> None:
        """Let the workers finish and close every transport."""
        for _ in self.threads:
            self.work.put(None)
        for thread in self.threads:
            thread.join(timeout)
        for transport in self.transports:
            with contextlib.suppress(Exception):  # best effort: the results are recorded
                transport.close()

    # -- worker side --------------------------------------------------------------------

    def _run(self, transport: Transport) -> None:
        while True:
            job = self.work.get()
            if job is None:
                return
            try:
                self._send_job(transport, job)
            except BaseException as exc:  # our own bug: never leave the main thread waiting
                self.reports.put(Broken(exc, doubtful=[d.id for d, _ in job]))

    def _send_job(self, transport: Transport, job: Job) -> None:
        """Send ``job`` slice by slice; report once at its end (or when stopping early).

        One report per job, not per message: every report wakes the main thread, and on one
        core those hand-offs of the GIL cost more than the reporting itself.
        """
        size = self.max_batch
        done = Reported([], [])
        for start in range(0, len(job), size):
            rest = [d.id for d, _ in job[start:]]
            early: Report | None = None
            chunk = job[start : start + size]
            if self.stop.is_set() or (
                self.bucket and not self.bucket.wait(len(chunk), self.stop)
            ):
                early = Unsent(rest)
            else:
                try:
                    results = transport.send([m for _, m in chunk])
                except TransportError as exc:
                    # Could not connect, or the server went away before accepting these:
                    # certainly not delivered, so they go back to the queue.
                    early = Unsent(rest, error=exc)
                except BaseException as exc:
                    early = Broken(exc, doubtful=[d.id for d, _ in chunk],
                                   unsent=rest[len(chunk) :])
                else:
                    answered, doubtful = _match(chunk, results)
                    done.attempts += answered
                    done.doubtful += doubtful
            if early is not None:
                if done.attempts or done.doubtful:
                    self.reports.put(done)
                self.reports.put(early)
                return
        self.reports.put(done)


def _match(
    chunk: list[tuple[Delivery, OutgoingMessage]], results: Sequence[RecipientResult]
) -> tuple[list[Attempt], list[int]]:
    """Pair results with messages by delivery id (the contract says one each, in order).

    A message the transport did not answer for may or may not have gone: it is doubtful,
    never retried blindly.
    """
    by_id = {r.delivery_id: r for r in results}
    out: list[Attempt] = []
    doubtful: list[int] = []
    for d, msg in chunk:
        r = by_id.get(d.id)
        if r is None:
            doubtful.append(d.id)
            continue
        out.append(Attempt(d, Status(r.status), r.detail, msg.message_id, r.provider_message_id))
    return out, doubtful
