"""The default transport: one ``.eml`` file per message in a folder, no credentials needed.

``outbox://`` writes to ``<campaign-dir>/outbox/``; ``outbox:///abs/dir`` to an absolute folder;
``outbox://rel/dir`` to a folder relative to the current directory (``%20`` for a space).
Proofs go to ``proofs/`` inside it. Any mail client opens the files (they are exactly the bytes
SMTP would send).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote

from ..errors import TransportError
from ..message import OutgoingMessage, message_bytes
from .base import RecipientResult, Status, Transport
from .dsn import Dsn

_UNSAFE = re.compile(r"[^\w.@+-]+")


def eml_name(msg: OutgoingMessage) -> str:
    """``<delivery id>-<address>.eml`` with anything a file system may refuse replaced by ``_``."""
    safe = _UNSAFE.sub("_", msg.to_email).strip("._")[:100] or "recipient"
    return f"{msg.delivery_id}-{safe}.eml"


class OutboxTransport(Transport):
    """Write each message atomically (temporary file, then ``os.replace``).

    A rerun overwrites a delivery's file rather than adding a second one, and a crash never
    leaves half a message behind under the final name.
    """

    scheme = "outbox"
    max_batch = 1

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.proofs = directory / "proofs"

    @classmethod
    def from_dsn(cls, dsn: Dsn, *, campaign_dir: Path, timeout: float = 30) -> OutboxTransport:
        dsn.check_params(frozenset())
        # urlsplit puts the first segment of "outbox://rel/dir" in the host: use the raw text.
        raw = unquote(dsn.raw.split("://", 1)[1].split("?", 1)[0])
        directory = Path(raw).expanduser() if raw else Path(campaign_dir) / "outbox"
        return cls(directory.absolute())

    def describe(self) -> str:
        return f"outbox {self.directory}"

    def _folders(self, messages: Sequence[OutgoingMessage]) -> None:
        """Create the folders first: a folder we cannot create stops the run before any write."""
        for folder in {self.proofs if m.is_proof else self.directory for m in messages}:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise TransportError(
                    f"cannot create the outbox folder {folder}: {exc.strerror}",
                    hint="pass a writable folder with --transport outbox:///path/to/dir",
                ) from exc

    def _write(self, msg: OutgoingMessage) -> Path:
        folder = self.proofs if msg.is_proof else self.directory
        path = folder / eml_name(msg)
        tmp = folder / f".{path.name}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(message_bytes(msg))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def send(self, messages: Sequence[OutgoingMessage]) -> list[RecipientResult]:
        self._folders(messages)
        results = []
        for msg in messages:
            try:
                path = self._write(msg)
            except OSError as exc:
                results.append(
                    RecipientResult(
                        msg.delivery_id,
                        msg.to_email,
                        Status.FAILED,
                        detail=f"cannot write to the outbox {self.directory}: {exc}",
                    )
                )
                continue
            results.append(
                RecipientResult(
                    msg.delivery_id,
                    msg.to_email,
                    Status.SENT,
                    provider_message_id=msg.message_id,
                    detail=f"written to {path}",
                )
            )
        return results
