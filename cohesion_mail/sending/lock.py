"""One ``send`` per campaign at a time: an advisory ``flock`` on ``<state dir>/send-<slug>.lock``.

``flock`` (not a pid file) because the kernel drops it when the process dies, even by
``kill -9``: a crashed run never leaves a stale lock that a user must delete by hand.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from types import TracebackType

from ..errors import StoreError


def lock_path(state_path: Path, slug: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", slug)
    return state_path.parent / f"send-{safe}.lock"


class CampaignLock:
    """Hold the send lock of one campaign. ``acquire()`` raises ``StoreError`` if it is taken."""

    def __init__(self, state_path: Path, slug: str) -> None:
        self.slug = slug
        self.path = lock_path(state_path, slug)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create the send lock: {exc.strerror or exc}",
                hint="the state folder must be writable (see --state / COHESION_MAIL_STATE)",
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        """The pid written by the process holding the lock, or '' if unknown."""
        try:
            return self.path.read_text(encoding="ascii").strip()
        except OSError:
            return ""

    def acquire(self) -> CampaignLock:
        if not self.try_acquire():
            pid = self.holder()
            who = f"process {pid}" if pid else "another process"
            raise StoreError(
                f"campaign {self.slug} is already being sent by {who} (lock {self.path})",
                hint="wait for that send to finish, or stop it (Ctrl-C) and run the same "
                "`cohesion-mail send` again: it resumes where the other one stopped",
            )
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CampaignLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
