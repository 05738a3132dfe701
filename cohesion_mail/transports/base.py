"""The transport interface: every way of delivering mail (outbox, SMTP, HTTP APIs) is one of these.

A transport takes a batch of fully personalised messages and answers, per recipient, one
normalised ``RecipientResult``; that is what the send ledger stores (model: anymail's
``AnymailRecipientStatus``). Whole-run problems are exceptions instead: ``AuthenticationError``
(bad credentials: stop, nothing marked sent) and ``TransportError`` (server unreachable: stop
cleanly, everything stays resumable). A transport that cannot honour a feature of a message
(say, a non-ASCII address on a server without SMTPUTF8) rejects that recipient with a reason;
it never drops the feature silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..message import OutgoingMessage


class Status(StrEnum):
    """What happened to one recipient in one attempt. Closed set; the ledger maps it to a state."""

    SENT = "sent"  # accepted by the server / provider / written to the outbox
    DEFERRED = "deferred"  # temporary (SMTP 4xx, 429, 5xx from an API, dropped connection): retry
    REJECTED = "rejected"  # permanent for this recipient (SMTP 5xx, API 4xx for this address)
    FAILED = "failed"  # could not be attempted for this recipient (e.g. unsupported address)


@dataclass(frozen=True)
class RecipientResult:
    """One recipient's outcome: the provider's message id and the server's own words."""

    delivery_id: int
    email: str
    status: Status
    provider_message_id: str = ""
    detail: str = ""

    @property
    def retryable(self) -> bool:
        return self.status is Status.DEFERRED


class Transport(ABC):
    """Send batches of messages. Use as a context manager so connections are always closed.

    ``max_batch`` says how many messages one ``send`` call can carry in one request (1 for
    SMTP and the outbox, 500 for Postmark's batch endpoint, …); the send loop slices by it.
    """

    scheme: str = ""
    max_batch: int = 1

    @abstractmethod
    def send(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        """Deliver ``messages``; return exactly one result per message, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Idempotent."""

    def describe(self) -> str:
        """Where mail goes, for prompts and summaries. Never includes a secret."""
        return self.scheme

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
