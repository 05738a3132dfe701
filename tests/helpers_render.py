"""Small builders for the render tests: a campaign folder from YAML text, test settings."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

from cohesion_mail.config import ListInfo, Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "campaigns" / "2020-02-cohes3ion"
# A verbatim copy of ../shared/seed/cohes3ion-newsletter-2020.txt (the customer's original issue).
SEED_TEXT = ROOT / "tests" / "fixtures" / "seed" / "cohes3ion-newsletter-2020.txt"
PLACEHOLDER_FIXTURE = ROOT / "tests" / "fixtures" / "placeholder-links"
# A 1×1 transparent PNG, for local-image tests.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)

MINIMAL = """\
subject: "Hello"
preheader: "Short preview"
issue:
  number: 3
  date: 2020-02-01
sections:
  - type: article
    title: First story
    body: Some text.
"""


def make_settings(root: Path, **overrides: object) -> Settings:
    """Settings rooted at ``root`` (built-in templates unless ``root/templates`` overrides)."""
    kwargs: dict[str, object] = {
        "root": root,
        "base_url": "https://news.example.org",
        "list": ListInfo(name="Test List", id="test.example.org", postal_address="1 Test Street"),
    }
    kwargs.update(overrides)
    return Settings(**kwargs)  # type: ignore[arg-type]


def write_campaign(parent: Path, yaml_text: str, slug: str = "test-issue") -> Path:
    """A campaign folder ``parent/slug`` holding ``campaign.yaml`` with ``yaml_text``."""
    folder = parent / slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "campaign.yaml").write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return folder


def copy_seed(parent: Path) -> Path:
    """A copy of the seed campaign (tests must not write into the repository)."""
    target = parent / SEED.name
    shutil.copytree(SEED, target, ignore=shutil.ignore_patterns("build"))
    return target


def write_template(root: Path, name: str, text: str) -> None:
    """A project template override ``root/templates/<name>``."""
    path = root / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def enter_project(tmp_path: Path, monkeypatch: Any) -> Path:
    """Make ``tmp_path`` a project (the repository's cohesion-mail.toml) and the working dir."""
    (tmp_path / "cohesion-mail.toml").write_text(
        (ROOT / "cohesion-mail.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    for var in ("COHESION_MAIL_CONFIG", "COHESION_MAIL_BASE_URL", "COHESION_MAIL_STATE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
