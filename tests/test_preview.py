"""The preview server over real HTTP: state, email, text, images, events, rebuilds and errors."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from helpers_render import PNG, ROOT, copy_seed, write_campaign
from typer.testing import CliRunner

from cohesion_mail.cli import app
from cohesion_mail.config import ListInfo, Sender, Settings
from cohesion_mail.errors import ConfigError, SubscriberError
from cohesion_mail.preview import PreviewServer, build_state, find_subscriber

GREETING = """\
subject: "News for *|first_name|*"
preheader: "What happened in *|region|*"
issue:
  date: 2020-03-01
merge_fields:
  region: your region
sections:
  - type: article
    title: Dear *|first_name|* from *|region|*
    body: Partners met in Essen.
    image:
      src: photo.png
      alt: Partners in Essen
      width: 300
"""
SUBSCRIBERS = """\
email,name,first_name,organisation,region
ane.etxeberria@example.org,Ane Etxeberria,Ane,BEAZ Bizkaia,Bizkaia
"""


def settings_for(root: Path) -> Settings:
    return Settings(
        root=root,
        base_url="https://news.example.org",
        sender=Sender("Cohesion News", "news@cohesion.example.org", "editor@cohesion.example.org"),
        list=ListInfo(
            name="Cohesion Newsletter", id="n.example.org", postal_address="1 Rue X, Lille"
        ),
    )


def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, errors included."""
    try:
        with urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode("utf-8")
    except HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode("utf-8")


def api(server: PreviewServer) -> dict[str, Any]:
    return json.loads(get(server.url + "api/state")[2])


def eventually(condition: Callable[[], Any], timeout: float = 20) -> Any:
    """Poll until ``condition()`` is truthy (a file watcher reacts in its own time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture
def greeting(tmp_path: Path) -> Path:
    folder = write_campaign(tmp_path, GREETING, slug="2020-03-greeting")
    (folder / "photo.png").write_bytes(PNG)
    return folder


@pytest.fixture
def seed_preview(tmp_path: Path) -> Iterator[PreviewServer]:
    """A watching preview of a copy of the seed issue."""
    folder = copy_seed(tmp_path)
    with PreviewServer(folder, settings_for(tmp_path)) as server:
        yield server


def test_state_email_and_text_of_the_seed(seed_preview: PreviewServer) -> None:
    state = api(seed_preview)
    assert state["ok"] and state["version"] == 0
    assert state["subject"].startswith("COHES3ION news")
    assert state["from"] == {"name": "Cohesion News", "address": "news@cohesion.example.org"}
    assert state["to"] == {"name": "Alex Example", "email": "alex@example.org"}
    assert state["reply_to"] == "editor@cohesion.example.org"
    assert state["checks"]["errors"] == 0 and state["html_bytes"] > 10_000
    status, ctype, page = get(seed_preview.url + "email.html")
    assert status == 200 and ctype.startswith("text/html")
    assert '<base target="_blank">' in page and "Experts helping to transform the Ruhr" in page
    assert "/o/" not in page  # the open pixel is blanked: a preview counts no opens
    status, ctype, text = get(seed_preview.url + "email.txt")
    assert status == 200 and ctype.startswith("text/plain") and "Date for your diary" in text
    status, ctype, index = get(seed_preview.url)
    assert status == 200 and 'id="desktop-frame"' in index and 'id="phone-frame"' in index
    assert get(seed_preview.url + "assets/preview.js")[0] == 200
    assert get(seed_preview.url + "nope")[0] == 404


def test_local_images_are_served_from_the_campaign_folder(greeting: Path, tmp_path: Path) -> None:
    with PreviewServer(greeting, settings_for(tmp_path), watch=False) as server:
        page = get(server.url + "email.html")[2]
        assert 'src="/campaigns/2020-03-greeting/photo.png"' in page
        with urlopen(server.url + "campaigns/2020-03-greeting/photo.png", timeout=10) as r:
            assert r.headers["Content-Type"] == "image/png" and r.read() == PNG
        (tmp_path / "secret.txt").write_text("no", encoding="utf-8")
        assert get(server.url + "campaigns/2020-03-greeting/../secret.txt")[0] == 404
        assert get(server.url + "campaigns/2020-03-greeting/%2e%2e/secret.txt")[0] == 404


def test_personalised_for_a_subscriber_with_as(greeting: Path, tmp_path: Path) -> None:
    csv = tmp_path / "subscribers.csv"
    csv.write_text(SUBSCRIBERS, encoding="utf-8")
    ane = find_subscriber(csv, "Ane.Etxeberria@example.org")
    with PreviewServer(greeting, settings_for(tmp_path), recipient=ane, watch=False) as server:
        state = api(server)
        assert (
            state["subject"] == "News for Ane" and state["preheader"] == "What happened in Bizkaia"
        )
        assert state["to"] == {"name": "Ane Etxeberria", "email": "ane.etxeberria@example.org"}
        assert "Dear Ane from Bizkaia" in get(server.url + "email.html")[2]
    with PreviewServer(greeting, settings_for(tmp_path), watch=False) as server:
        assert api(server)["subject"] == "News for Alex"  # the sample recipient


def test_as_an_unknown_subscriber_is_an_error(tmp_path: Path) -> None:
    csv = tmp_path / "subscribers.csv"
    csv.write_text(SUBSCRIBERS, encoding="utf-8")
    with pytest.raises(SubscriberError, match="no subscriber 'bob@example.org'"):
        find_subscriber(csv, "bob@example.org")
    with pytest.raises(SubscriberError, match="no such subscribers file"):
        find_subscriber(tmp_path / "missing.csv", "bob@example.org")


def test_events_announce_each_rebuild(seed_preview: PreviewServer) -> None:
    host, port = seed_preview.url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/events")
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "text/event-stream"

    def next_event() -> dict[str, Any]:
        while True:
            line = response.readline().decode()
            if line.startswith("data: "):
                return json.loads(line[6:])

    assert next_event() == {"version": 0, "ok": True}
    seed_preview.rebuild()
    assert next_event() == {"version": 1, "ok": True}
    conn.close()


def test_saving_a_file_rebuilds(seed_preview: PreviewServer) -> None:
    yaml_file = seed_preview.campaign_dir / "campaign.yaml"
    text = yaml_file.read_text(encoding="utf-8")
    yaml_file.write_text(
        text.replace("COHES3ION news:", "COHES3ION spring news:"), encoding="utf-8"
    )
    state = eventually(
        lambda: (s := api(seed_preview))["subject"].startswith("COHES3ION spring") and s
    )
    assert state and state["version"] >= 1 and state["ok"]


def test_broken_file_shows_the_error_and_fixing_it_recovers(seed_preview: PreviewServer) -> None:
    yaml_file = seed_preview.campaign_dir / "campaign.yaml"
    good = yaml_file.read_text(encoding="utf-8")
    yaml_file.write_text(
        good.replace("    title: Experts helping", "    titel: Experts helping"), encoding="utf-8"
    )
    state = eventually(lambda: (s := api(seed_preview))["ok"] is False and s)
    assert state, "the preview never showed the error"
    (location,) = state["error"]["locations"]
    assert location["file"].endswith("campaign.yaml") and location["line"] == 23
    assert [ln["text"].strip() for ln in location["excerpt"] if ln["here"]] == [
        "titel: Experts helping to transform the Ruhr"
    ]
    assert "unknown key 'titel'" in state["error"]["message"]
    status, _, page = get(seed_preview.url + "email.html")
    assert status == 500 and "This issue does not build" in page and "titel" in page
    yaml_file.write_text(good, encoding="utf-8")
    assert eventually(lambda: api(seed_preview)["ok"]), "the preview never recovered"


def test_template_error_names_the_template(tmp_path: Path) -> None:
    folder = copy_seed(tmp_path)
    target = tmp_path / "templates" / "sections" / "text.mjml.j2"
    target.parent.mkdir(parents=True)
    source = (ROOT / "templates" / "sections" / "text.mjml.j2").read_text(encoding="utf-8")
    target.write_text(
        source.replace("{{ section.body }}", "{{ section.body | nosuchfilter }}"), encoding="utf-8"
    )
    state = build_state(folder, settings_for(tmp_path))
    assert not state.ok and "text.mjml.j2" in state.error
    details = state.error_details()
    assert details["locations"] and details["locations"][0]["file"].endswith("text.mjml.j2")


def test_port_in_use_names_host_and_port(seed_preview: PreviewServer, tmp_path: Path) -> None:
    port = int(seed_preview.url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
        PreviewServer(seed_preview.campaign_dir, settings_for(tmp_path), port=port, watch=False)


def test_cli_preview_help_and_unknown_subscriber(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["preview", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--port", "--host", "--as", "--subscribers", "--no-open", "--screenshot"):
        assert option in result.output
    folder = copy_seed(tmp_path)
    csv = tmp_path / "subscribers.csv"
    csv.write_text(SUBSCRIBERS, encoding="utf-8")
    result = runner.invoke(
        app, ["preview", str(folder), "--as", "bob@example.org", "--subscribers", str(csv)]
    )
    assert result.exit_code == 1 and "no subscriber 'bob@example.org'" in result.output


def test_cli_preview_serves_until_ctrl_c(tmp_path: Path) -> None:
    folder = copy_seed(tmp_path)
    env = {**os.environ, "COLUMNS": "200", "COHESION_MAIL_CONFIG": str(ROOT / "cohesion-mail.toml")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cohesion_mail", "preview", str(folder), "--no-open", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line + (proc.stderr.read() if proc.stderr else "")
        state = json.loads(get(url.group(0) + "api/state")[2])
        assert state["ok"] and state["from"]["name"] == "COHES3ION Project"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Preview stopped." in out and "Traceback" not in err


# -- languages (issue 7) -----------------------------------------------------------------------


def test_language_picker_switches_the_edition_and_live_reload_keeps_it(
    seed_preview: PreviewServer,
) -> None:
    state = api(seed_preview)
    assert state["language"] == "en"
    assert state["languages"] == [{"code": "en", "name": "English"},
                                  {"code": "es", "name": "español"}]
    assert 'id="language"' in get(seed_preview.url)[2]  # the picker on the page
    status, _, _ = get(seed_preview.url + "?lang=es")
    assert status == 200
    state = api(seed_preview)
    assert state["language"] == "es" and state["ok"] and state["version"] == 1
    assert state["subject"].startswith("Noticias de COHES3ION")
    page = get(seed_preview.url + "email.html")[2]
    assert '<html lang="es"' in page and "Ver en el navegador" in page
    # Saving the translation rebuilds in the language being shown.
    es_file = seed_preview.campaign_dir / "campaign.es.yaml"
    text = es_file.read_text(encoding="utf-8")
    es_file.write_text(text.replace("Noticias de COHES3ION", "Noticias frescas de COHES3ION", 1),
                       encoding="utf-8")
    state = eventually(
        lambda: (s := api(seed_preview))["subject"].startswith("Noticias frescas") and s
    )
    assert state and state["language"] == "es"
    get(seed_preview.url + "?lang=sv")  # no Swedish edition: the main one
    assert api(seed_preview)["language"] == "en"


def test_lang_option_and_the_subscribers_language(tmp_path: Path) -> None:
    folder = copy_seed(tmp_path)
    settings = settings_for(tmp_path)
    with PreviewServer(folder, settings, watch=False, language="ES-es") as server:
        state = api(server)
        assert state["language"] == "es" and state["to"]["name"] == "Alex Example"
    csv = tmp_path / "subscribers.csv"
    csv.write_text("email,name,language\nane@example.org,Ane,es-ES\n", encoding="utf-8")
    ane = find_subscriber(csv, "ane@example.org")
    assert build_state(folder, settings, ane).language == "es"  # --as picks the edition
    assert build_state(folder, settings, ane, language="en").language == "en"  # --lang wins
