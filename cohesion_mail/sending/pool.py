"""Worker threads, one transport (one connection) each, sharing a rate limit.

Threads, not processes: a worker spends most of its time waiting on its socket, which releases
the GIL, and the per-message CPU work (personalise + serialise) is small. Workers never touch
the database: they report what happened on a queue and the main thread writes the ledger, so
SQLite sees one writer and commits are batched.

A worker takes a *group* of claimed rows (already ``sending`` in the ledger), slices it by the
transport's ``max_batch``, and reports after every slice:

* ``Reported``: the transport answered; one ``Attempt`` per row.
* ``Unsent``: rows that never reached the transport (a stop was requested, or the transport
  raised ``TransportError``: it could not connect or lost the server before accepting them).
* ``Broken``: the transport or our own code raised something unexpected; the slice in hand
  may or may not have been accepted, so those rows are reported as doubtful.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import CohesionMailError, TransportError
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


class Pool:
    """``len(transports)`` worker threads fed with groups of claimed deliveries."""

    def __init__(
        self,
        transports: Sequence[Transport],
        compose: Callable[[Delivery], OutgoingMessage],
        *,
        rate: float = 0.0,
    ) -> None:
        self.compose = compose
        self.bucket = TokenBucket(rate) if rate > 0 else None
        self.stop = threading.Event()
        self.work: queue.SimpleQueue[list[Delivery] | None] = queue.SimpleQueue()
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

    def submit(self, group: list[Delivery]) -> None:
        self.work.put(group)

    def close(self, timeout: float = 30.0) -> None:
        """Let the workers finish and close every transport."""
        for _ in self.threads:
            self.work.put(None)
        for thread in self.threads:
            thread.join(timeout)
        for transport in self.transports:
            try:
                transport.close()
            except Exception:  # noqa: BLE001 - closing is best effort; results are recorded
                pass

    # -- worker side --------------------------------------------------------------------

    def _run(self, transport: Transport) -> None:
        while True:
            group = self.work.get()
            if group is None:
                return
            try:
                self._send_group(transport, group)
            except BaseException as exc:  # our own bug: never leave the main thread waiting
                self.reports.put(Broken(exc, unsent=[d.id for d in group]))

    def _send_group(self, transport: Transport, group: list[Delivery]) -> None:
        size = max(1, transport.max_batch)
        for start in range(0, len(group), size):
            rest = group[start:]
            if self.stop.is_set():
                self.reports.put(Unsent([d.id for d in rest]))
                return
            chunk = group[start : start + size]
            ready: list[tuple[Delivery, OutgoingMessage]] = []
            attempts: list[Attempt] = []
            for d in chunk:
                try:
                    ready.append((d, self.compose(d)))
                except CohesionMailError as exc:  # e.g. a merge field without a value
                    attempts.append(Attempt(d, Status.FAILED, str(exc)))
            if ready and self.bucket and not self.bucket.wait(len(ready), self.stop):
                self.reports.put(Unsent([d.id for d in rest]))
                if attempts:
                    self.reports.put(Reported(attempts))
                return
            if ready:
                try:
                    results = transport.send([m for _, m in ready])
                except TransportError as exc:
                    # Could not connect, or the server went away before accepting these:
                    # certainly not delivered, so they go back to the queue.
                    self.reports.put(Unsent([d.id for d in rest], error=exc))
                    return
                except BaseException as exc:
                    self.reports.put(
                        Broken(
                            exc,
                            doubtful=[d.id for d, _ in ready],
                            unsent=[d.id for d in group[start + size :]]
                            + [a.delivery.id for a in attempts],
                        )
                    )
                    return
                answered, doubtful = _match(ready, results)
                self.reports.put(Reported(attempts + answered, doubtful))
            else:
                self.reports.put(Reported(attempts))


def _match(
    ready: list[tuple[Delivery, OutgoingMessage]], results: Sequence[RecipientResult]
) -> tuple[list[Attempt], list[int]]:
    """Pair results with messages by delivery id (the contract says one each, in order).

    A message the transport did not answer for may or may not have gone: it is doubtful,
    never retried blindly.
    """
    by_id = {r.delivery_id: r for r in results}
    out: list[Attempt] = []
    doubtful: list[int] = []
    for d, msg in ready:
        r = by_id.get(d.id)
        if r is None:
            doubtful.append(d.id)
            continue
        out.append(Attempt(d, Status(r.status), r.detail, msg.message_id, r.provider_message_id))
    return out, doubtful
