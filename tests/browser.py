"""Shared helpers for the real-browser tests: the system Chromium driven by Playwright.

The tests never skip for want of a browser: without Chromium they fail and say how to install
it (CI's ``.ci/run`` does ``apt-get install chromium``). ``playwright install`` is never used.

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 375, "height": 800})
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from cohesion_mail.errors import ConfigError
from cohesion_mail.screenshots import chromium_path, launch_chromium

PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1300, "height": 900}


@contextmanager
def chromium() -> Iterator[Browser]:
    """One headless system Chromium; fails the test (never skips) if there is none."""
    missing = ""
    try:
        chromium_path()
    except ConfigError as exc:
        missing = str(exc)
    if missing:
        pytest.fail(
            f"{missing}\nThe browser tests need Chromium: apt-get install chromium "
            "(or set COHESION_MAIL_CHROMIUM to a Chromium/Chrome binary).",
            pytrace=False,
        )
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, url: str, viewport: dict[str, int]) -> Page:
    """A fresh page at ``url`` with ``viewport``; the caller closes it."""
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    page.goto(url, wait_until="load")
    return page


def boxes(page: Page, selector: str) -> list[dict[str, Any]]:
    """Bounding boxes (and parent width) of every element matching ``selector``."""
    return page.evaluate(
        """sel => [...document.querySelectorAll(sel)].map(e => {
            const r = e.getBoundingClientRect();
            const p = e.parentElement.getBoundingClientRect();
            return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width,
                    height: r.height, parentWidth: p.width, parentLeft: p.left,
                    src: e.getAttribute('src') || '', group: e.parentElement.dataset.group || ''};
        })""",
        selector,
    )


def png(width: int, height: int, rgb: tuple[int, int, int] = (29, 79, 145)) -> bytes:
    """A solid-colour PNG of ``width`` × ``height`` (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height
