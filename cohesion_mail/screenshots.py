"""Desktop and phone screenshots of an issue with headless Chromium, for partners to approve.

The system Chromium (Debian's ``/usr/bin/chromium``, or ``$COHESION_MAIL_CHROMIUM``) is driven
with Playwright for Python; ``playwright install`` is never needed. The flags below keep a
headless Chromium from reaching out for updates, sync and field trials: on a machine without
outside network it would otherwise stall at start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Settings
from .errors import ConfigError, ContentError
from .preview import SAMPLE, PreviewServer, Recipient

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

ENV_CHROMIUM = "COHESION_MAIL_CHROMIUM"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
# --headless and --user-data-dir=<temporary profile> are added by Playwright itself.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
INSTALL_HINT = (
    f"install it (Debian/Ubuntu: apt-get install chromium) or point {ENV_CHROMIUM} at a"
    " Chromium or Chrome binary"
)


@dataclass(frozen=True)
class Shot:
    """One screenshot to take: file name, viewport width, and the viewport height it starts at."""

    name: str
    width: int
    height: int


SHOTS = (Shot("desktop.png", 1200, 900), Shot("phone.png", 375, 812))


def chromium_path() -> str:
    """The Chromium to drive: ``$COHESION_MAIL_CHROMIUM``, else the first one found on the PATH."""
    env = os.environ.get(ENV_CHROMIUM)
    if env:
        if Path(env).is_file() and os.access(env, os.X_OK):
            return env
        raise ConfigError(f"{ENV_CHROMIUM}={env}: not an executable file", hint=INSTALL_HINT)
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise ConfigError("Chromium not found (looked for " + ", ".join(CHROMIUM_CANDIDATES) + ")",
                      hint=INSTALL_HINT)  # fmt: skip


def launch_chromium(playwright: Playwright) -> Browser:
    """A headless system Chromium with the offline-safe flags."""
    path = chromium_path()
    try:
        return playwright.chromium.launch(
            executable_path=path, headless=True, args=list(CHROMIUM_ARGS), timeout=60_000
        )
    except Exception as exc:  # playwright's Error: the binary would not start
        raise ConfigError(f"{path}: Chromium did not start: {exc}", hint=INSTALL_HINT) from exc


def capture(browser: Browser, url: str, out_dir: Path) -> list[Path]:
    """Full-page PNGs of ``url`` at each of ``SHOTS``' widths into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for shot in SHOTS:
        page = browser.new_page(viewport={"width": shot.width, "height": shot.height})
        try:
            # A remote image that never loads must not stop the shot: take what is there.
            with contextlib.suppress(Exception):
                page.goto(url, wait_until="load", timeout=30_000)
            target = out_dir / shot.name
            page.screenshot(path=str(target), full_page=True)
            written.append(target)
        finally:
            page.close()
    return written


def screenshot_campaign(
    campaign_dir: Path, settings: Settings, out_dir: Path, *, recipient: Recipient = SAMPLE
) -> list[Path]:
    """Build the issue, serve it on a private port just long enough, and write the PNGs."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ConfigError(
            "screenshots need Playwright for Python", hint="pip install playwright"
        ) from exc
    with PreviewServer(campaign_dir, settings, recipient=recipient, watch=False) as server:
        state = server.state
        if not state.ok:
            raise state.exception or ContentError(state.error)
        try:
            with sync_playwright() as pw:
                browser = launch_chromium(pw)
                try:
                    return capture(browser, server.url + "email.html", Path(out_dir))
                finally:
                    browser.close()
        except OSError as exc:
            raise ConfigError(f"{out_dir}: cannot write screenshots: {exc.strerror}") from exc
