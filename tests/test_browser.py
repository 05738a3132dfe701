"""Real-browser tests: the system Chromium (headless, via Playwright) against the preview server.

The seed issue at 375 px: no horizontal scroll, readable text, columns stacked; at desktop
width its columns sit side by side. The seed has no images, and its only multi-column section
is the footer's links, so a second issue (``rich``) adds a wide local photo, a spotlight with
its logo beside the text and a dated events list. Then the preview page itself: side by side,
the live-reload round trip, the error page and its recovery, and the screenshots.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import DESKTOP, PHONE, chromium, open_page, png, png_size
from helpers_render import ROOT, SEED, copy_seed, write_campaign
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from cohesion_mail.cli import app
from cohesion_mail.config import ListInfo, Sender, Settings
from cohesion_mail.preview import PreviewServer

RICH = """\
subject: "Spotlight on Bizkaia"
preheader: "A learning journey, a partner and three dates"
issue:
  number: 2
  date: 2020-03-01
sections:
  - type: article
    title: Partners in Essen
    body: The second learning journey took partners to the Ruhr.
    image:
      src: wide.png
      alt: Partners at the Zollverein colliery
      width: 600
  - type: spotlight
    title: Spotlight on a partner
    name: BEAZ Bizkaia
    intro: The project lead and host of the first learning journey.
    body: Their strategy focuses on innovation and industrialisation.
    logo:
      src: logo.png
      alt: BEAZ logo
      width: 160
    links:
      - url: https://www.interregeurope.eu/cohes3ion
        label: Read more about BEAZ Bizkaia
  - type: events
    title: Coming up
    items:
      - title: Learning journey in Calabria
        date: 28 April 2020
        place: Catanzaro
      - title: Learning journey in the North West
        date: 24 June 2020
        place: Sligo
footer:
  social:
    - prompt: "Follow us on Twitter:"
      label: "@cohes3ion"
      url: https://twitter.com/cohes3ion
    - prompt: "Follow us on LinkedIn:"
      label: Cohes3ion
      url: https://www.linkedin.com/company/cohes3ion
"""

# Every MJML column's box, grouped by the section (parent) it belongs to.
COLUMN_GROUPS = """() => {
  const groups = new Map();
  for (const col of document.querySelectorAll('div[class*="mj-column-"]')) {
    const r = col.getBoundingClientRect();
    if (r.width === 0) continue;
    const key = col.parentElement;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
  }
  return [...groups.values()].filter(g => g.length > 1);
}"""


def settings_for(root: Path) -> Settings:
    return Settings(
        root=root,
        base_url="https://news.example.org",
        sender=Sender("COHES3ION Project", "newsletter@cohes3ion.eu"),
        list=ListInfo(
            name="COHES3ION Newsletter", postal_address="c/o BEAZ Bizkaia, Bilbao, Spain"
        ),
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole module."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def issues(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PreviewServer]]:
    """Read-only previews of the seed and of the ``rich`` issue."""
    root = tmp_path_factory.mktemp("issues")
    rich = write_campaign(root, RICH, slug="2020-03-rich")
    (rich / "wide.png").write_bytes(png(1200, 600))
    (rich / "logo.png").write_bytes(png(400, 160, (229, 0, 125)))
    with (
        PreviewServer(SEED, settings_for(ROOT), watch=False) as seed,
        PreviewServer(rich, settings_for(root), watch=False) as rich_server,
    ):
        assert seed.state.ok and rich_server.state.ok
        yield {"seed": seed, "rich": rich_server}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[PreviewServer]:
    """A watching preview of a copy of the seed, to edit."""
    with PreviewServer(copy_seed(tmp_path), settings_for(tmp_path)) as server:
        yield server


def email(browser: Browser, server: PreviewServer, viewport: dict[str, int]) -> Page:
    page = open_page(browser, server.url + "email.html", viewport)
    page.evaluate("document.fonts.ready")
    return page


def column_groups(page: Page) -> list[list[dict[str, Any]]]:
    groups: list[list[dict[str, Any]]] = page.evaluate(COLUMN_GROUPS)
    return groups


# -- the email at phone and desktop widths -----------------------------------------------------


@pytest.mark.parametrize("name", ["seed", "rich"])
def test_phone_width_has_no_horizontal_scroll(
    browser: Browser, issues: dict[str, PreviewServer], name: str
) -> None:
    page = email(browser, issues[name], PHONE)
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert client == 375 and scroll <= client, f"{name}: {scroll}px wide in a 375px viewport"
    page.close()


@pytest.mark.parametrize("name", ["seed", "rich"])
def test_body_text_is_at_least_14px_on_a_phone(
    browser: Browser, issues: dict[str, PreviewServer], name: str
) -> None:
    page = email(browser, issues[name], PHONE)
    sizes = page.evaluate("""() => [...document.querySelectorAll('p, li')]
        .filter(e => e.textContent.trim())
        .map(e => [e.textContent.trim().slice(0, 40), parseFloat(getComputedStyle(e).fontSize)])""")
    assert len(sizes) >= 3
    small = [(text, size) for text, size in sizes if size < 14]
    assert not small, f"{name}: paragraphs under 14px: {small}"
    page.close()


@pytest.mark.parametrize(("name", "groups"), [("seed", 1), ("rich", 4)])
def test_columns_stack_on_a_phone(
    browser: Browser, issues: dict[str, PreviewServer], name: str, groups: int
) -> None:
    page = email(browser, issues[name], PHONE)
    found = column_groups(page)
    assert len(found) >= groups, (
        f"{name}: expected {groups} multi-column sections, got {len(found)}"
    )
    for columns in found:
        for upper, lower in zip(columns, columns[1:], strict=False):
            assert lower["top"] >= upper["bottom"] - 1, (
                f"{name}: columns overlap vertically: {columns}"
            )
        assert all(c["right"] <= 375.5 for c in columns)
    page.close()


@pytest.mark.parametrize("name", ["seed", "rich"])
def test_columns_sit_side_by_side_at_desktop_width(
    browser: Browser, issues: dict[str, PreviewServer], name: str
) -> None:
    page = email(browser, issues[name], {"width": 700, "height": 900})
    found = column_groups(page)
    assert found
    for columns in found:
        tops = {round(c["top"]) for c in columns}
        assert len(tops) == 1, f"{name}: columns not on one row: {columns}"
        for left, right in zip(columns, columns[1:], strict=False):
            assert right["left"] >= left["right"] - 1
    page.close()


@pytest.mark.parametrize("viewport", [PHONE, {"width": 700, "height": 900}])
def test_every_image_fits_its_container(
    browser: Browser, issues: dict[str, PreviewServer], viewport: dict[str, int]
) -> None:
    page = email(browser, issues["rich"], viewport)
    images = page.evaluate("""() => [...document.images].filter(i => i.naturalWidth > 1).map(i => {
        const r = i.getBoundingClientRect(), p = i.parentElement.getBoundingClientRect();
        return {src: i.getAttribute('src'), width: r.width, right: r.right, parent: p.width,
                loaded: i.complete};
    })""")
    assert {Path(i["src"]).name for i in images} == {"wide.png", "logo.png"}
    for image in images:
        assert image["loaded"] and image["width"] > 0
        assert image["width"] <= image["parent"] + 0.5, image
        assert image["right"] <= viewport["width"] + 0.5, image
    page.close()


# -- the preview page ----------------------------------------------------------------------------


def preview_page(
    browser: Browser, server: PreviewServer, viewport: dict[str, int] = DESKTOP, hash_: str = ""
) -> Page:
    page = open_page(browser, server.url + hash_, viewport)
    expect(page.locator("body")).not_to_have_attribute("data-version", "-1")
    return page


def test_preview_page_shows_desktop_and_phone_side_by_side(
    browser: Browser, issues: dict[str, PreviewServer]
) -> None:
    page = preview_page(browser, issues["seed"])
    expect(page.locator("#subject")).to_have_text(issues["seed"].state.subject)
    expect(page.locator("#from-name")).to_have_text("COHES3ION Project")
    expect(page.locator("#to")).to_have_text("Alex Example <alex@example.org>")
    expect(
        page.frame_locator("#desktop-frame").get_by_text("Experts helping to transform the Ruhr")
    ).to_be_visible()
    expect(
        page.frame_locator("#phone-frame").get_by_text("Experts helping to transform the Ruhr")
    ).to_be_visible()
    desktop = page.locator("#desktop-frame").bounding_box()
    phone = page.locator("#phone-frame").bounding_box()
    assert desktop and phone
    assert desktop["width"] >= 600 and phone["width"] == 375
    assert phone["x"] >= desktop["x"] + desktop["width"], "phone should sit beside the desktop view"
    page.locator("button[data-view=phone]").click()
    expect(page.locator("#desktop-frame")).to_be_hidden()
    expect(page.locator("#phone-frame")).to_be_visible()
    page.locator("button[data-view=text]").click()
    expect(page.locator("#text")).to_contain_text("Date for your diary")
    page.close()


def test_narrow_window_switches_views(browser: Browser, issues: dict[str, PreviewServer]) -> None:
    page = preview_page(browser, issues["seed"], {"width": 420, "height": 800}, "#phone")
    expect(page.locator("#phone-frame")).to_be_visible()
    expect(page.locator("#desktop-frame")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    page.close()


def test_live_reload_round_trip(browser: Browser, live: PreviewServer) -> None:
    page = preview_page(browser, live)
    frame = page.frame_locator("#desktop-frame")
    expect(frame.get_by_text("Experts helping to transform the Ruhr")).to_be_visible()
    yaml_file = live.campaign_dir / "campaign.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    yaml_file.write_text(
        text.replace(
            "Experts helping to transform the Ruhr", "Experts reinventing the Ruhr"
        ).replace("COHES3ION news:", "COHES3ION spring news:"),
        encoding="utf-8",
    )
    expect(frame.get_by_text("Experts reinventing the Ruhr")).to_be_visible(timeout=20_000)
    expect(
        page.frame_locator("#phone-frame").get_by_text("Experts reinventing the Ruhr")
    ).to_be_visible()
    expect(page.locator("#subject")).to_contain_text("COHES3ION spring news:")
    page.close()


def test_error_page_appears_and_recovers(browser: Browser, live: PreviewServer) -> None:
    page = preview_page(browser, live)
    yaml_file = live.campaign_dir / "campaign.yaml"
    good = yaml_file.read_text(encoding="utf-8")
    yaml_file.write_text(
        good.replace("      label: Read more here", "      label: [Read more here"),
        encoding="utf-8",
    )
    error = page.locator("#error")
    expect(error).to_be_visible(timeout=20_000)
    expect(error).to_contain_text("YAML syntax error")
    expect(error).to_contain_text("campaign.yaml")
    expect(page.locator("#error-excerpts .ln.here")).to_have_count(1)
    expect(page.locator("#stage")).to_be_hidden()
    expect(page.locator("#status")).to_have_attribute("data-state", "error")
    yaml_file.write_text(good, encoding="utf-8")
    expect(error).to_be_hidden(timeout=20_000)
    expect(page.frame_locator("#desktop-frame").get_by_text("Read more here").first).to_be_visible()
    page.close()


def test_screenshots_for_partners(tmp_path: Path) -> None:
    # A subprocess: this module's browser already holds Playwright's event loop in this thread.
    out = tmp_path / "shots"
    config = str(ROOT / "cohesion-mail.toml")
    command = [
        sys.executable,
        "-m",
        "cohesion_mail",
        "preview",
        str(SEED),
        "--screenshot",
        str(out),
    ]
    result = subprocess.run(
        [*command, "--config", config], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    desktop, phone = (
        png_size((out / "desktop.png").read_bytes()),
        png_size((out / "phone.png").read_bytes()),
    )
    assert desktop[0] == 1200 and phone[0] == 375
    assert phone[1] > 2000 and desktop[1] > 1500  # the whole issue, not just the first screen
    assert "desktop.png" in result.stdout and "phone.png" in result.stdout


def test_screenshots_of_a_broken_issue_fail_with_the_error(tmp_path: Path) -> None:
    folder = copy_seed(tmp_path)
    (folder / "campaign.yaml").write_text("subject: [broken\n", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["preview", str(folder), "--screenshot", str(tmp_path / "shots")]
    )
    assert result.exit_code == 1
    assert "YAML syntax error" in result.output and not (tmp_path / "shots").exists()
