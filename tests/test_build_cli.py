"""``cohesion-mail new`` and ``cohesion-mail build`` through CliRunner, and once as a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers_render import copy_seed, enter_project, write_campaign
from typer.testing import CliRunner

from cohesion_mail.cli import app
from cohesion_mail.content import load_campaign

runner = CliRunner()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder with the repository's cohesion-mail.toml, as the working dir."""
    return enter_project(tmp_path, monkeypatch)


def test_new_scaffolds_every_section_type_and_builds(project: Path) -> None:
    result = runner.invoke(app, ["new", "2020-03-news"])
    assert result.exit_code == 0, result.output
    path = project / "campaigns" / "2020-03-news" / "campaign.yaml"
    assert f"Created {Path('campaigns/2020-03-news/campaign.yaml')}" in result.output
    campaign = load_campaign(path.parent)
    kinds = {s.type for s in campaign.sections}
    assert kinds == {"article", "spotlight", "events", "text"}
    assert {getattr(s, "style", None) for s in campaign.sections} >= {"list", "diary"}

    built = runner.invoke(app, ["build", str(path.parent)])
    assert built.exit_code == 0, built.output
    text = (path.parent / "build" / "email.txt").read_text(encoding="utf-8")
    assert "Hello Alex, write the story" in text  # *|first_name|* filled for the sample


def test_new_never_overwrites(project: Path) -> None:
    assert runner.invoke(app, ["new", "x", "--dir", "issues"]).exit_code == 0
    target = project / "issues" / "x" / "campaign.yaml"
    target.write_text("edited", encoding="utf-8")
    result = runner.invoke(app, ["new", "x", "--dir", "issues"])
    assert result.exit_code == 1
    assert "already exists; not overwriting it" in result.stderr
    assert "Traceback" not in result.output
    assert target.read_text(encoding="utf-8") == "edited"


def test_new_rejects_a_bad_name(project: Path) -> None:
    result = runner.invoke(app, ["new", "My Issue!"])
    assert result.exit_code == 1
    assert "use lower-case letters" in result.stderr


def test_build_writes_html_and_text_and_reports(project: Path) -> None:
    seed = copy_seed(project / "campaigns")
    result = runner.invoke(app, ["build", str(seed)])
    assert result.exit_code == 0, result.output
    html_path, text_path = seed / "build" / "email.html", seed / "build" / "email.txt"
    out = result.stdout
    assert "Subject:   COHES3ION news: learning journeys" in out
    assert "Preheader: Partners in the Ruhr" in out
    assert str(html_path) in out and str(text_path) in out and " KB)" in out
    doc = html_path.read_text(encoding="utf-8")
    text = text_path.read_text(encoding="utf-8")
    assert not re.search(r"cmf[a-z0-9]{10}x[0-9a-f]+x", doc + text)  # no sentinel left
    assert 'href="https://news.cohes3ion.eu/u/' in doc  # signed sample unsubscribe link
    assert "https://news.cohes3ion.eu/o/" in doc
    assert "Vanguard Initiative Regional Conference" in text
    assert not (project / ".cohesion-mail").exists()  # no state or secret written


def test_build_out_option(project: Path) -> None:
    seed = copy_seed(project)
    result = runner.invoke(app, ["build", str(seed), "--out", "site"])
    assert result.exit_code == 0, result.output
    assert (project / "site" / "email.html").is_file()
    assert (project / "site" / "email.txt").is_file()
    assert not (seed / "build").exists()


def test_build_errors_are_one_message_and_exit_1(project: Path) -> None:
    folder = write_campaign(project, "subject: Hi\nissue: [oops\n", slug="broken")
    result = runner.invoke(app, ["build", str(folder)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "broken/campaign.yaml:3:1: YAML syntax error" in result.stderr
    assert "Traceback" not in result.output

    missing = runner.invoke(app, ["build", "campaigns/nope"])
    assert missing.exit_code == 1
    assert "no such campaign folder" in missing.stderr
    assert "Hint: create one with: cohesion-mail new <slug>" in missing.stderr


def test_build_help_lists_its_options() -> None:
    result = runner.invoke(app, ["build", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--config"):
        assert option in result.output


def test_python_m_cohesion_mail_build(project: Path) -> None:
    seed = copy_seed(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHESION_MAIL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "cohesion_mail", "build", str(seed), "--out", "out"],
        cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Subject:" in proc.stdout
    assert (project / "out" / "email.html").stat().st_size > 10_000
