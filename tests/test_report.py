"""``report``: the figures match what was done through the real tracking service."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from tracking_support import REPO, SLUG, Service, add_campaign, add_delivery, seed_issue, service
from typer.testing import CliRunner

from cohesion_mail.cli import app
from cohesion_mail.report import as_dict, campaign_report
from cohesion_mail.store.db import now

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GMAIL = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
APPLE_MPP = "Mozilla/5.0"
SCANNER = "Mozilla/5.0 (compatible; Mimecast/1.0)"
MACHINES = {APPLE_MPP, SCANNER}


@dataclass
class Scenario:
    """What the test did, so expectations are computed, never typed in."""

    svc: Service
    cid: int
    states: dict[int, str] = field(default_factory=dict)  # delivery id → ledger state
    proofs: set[int] = field(default_factory=set)
    opens: list[tuple[int, bool]] = field(default_factory=list)  # (delivery, machine)
    clicks: list[tuple[int, str, bool]] = field(default_factory=list)
    unsubscribed: set[int] = field(default_factory=set)
    webviews: list[int] = field(default_factory=list)
    webhook: dict[str, set[int]] = field(default_factory=dict)  # kind → deliveries
    languages: dict[int, str] = field(default_factory=dict)  # delivery id → edition, normalised

    def open(self, did: int, ua: str) -> None:
        answer = requests.get(self.svc.links.open_pixel(self.cid, did), headers={"User-Agent": ua})
        assert answer.status_code == 200
        self.opens.append((did, ua in MACHINES))

    def click(self, did: int, url: str, ua: str = BROWSER) -> None:
        answer = requests.get(self.svc.links.click(self.cid, did, url),
                              headers={"User-Agent": ua}, allow_redirects=False)
        assert answer.status_code == 302
        self.clicks.append((did, url, ua in MACHINES))

    def unsubscribe(self, did: int) -> None:
        answer = requests.post(self.svc.links.unsubscribe(self.cid, did),
                               data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
        self.unsubscribed.add(did)

    def view(self, did: int) -> None:
        assert requests.get(self.svc.links.web_version(self.cid, did)).status_code == 200
        self.webviews.append(did)

    def provider_event(self, did: int, kind: str) -> None:
        """What a provider webhook records (that endpoint belongs to webhooks.py)."""
        with self.svc.store.atomic() as conn:
            conn.execute("INSERT INTO events (campaign_id, delivery_id, kind, created_at) "
                         "VALUES (?, ?, ?, ?)", (self.cid, did, kind, now()))
        self.webhook.setdefault(kind, set()).add(did)

    def counted(self, did: int, proofs: bool = False) -> bool:
        return proofs or did not in self.proofs


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    state = tmp_path_factory.mktemp("report")
    issue = seed_issue(state)
    with service(state) as svc:
        sc = Scenario(svc, add_campaign(svc.store, SLUG, issue))
        layout = ["sent"] * 7 + ["failed", "failed", "in_doubt", "deferred", "queued"]
        for i, st in enumerate(layout):
            did = add_delivery(svc.store, sc.cid, f"p{i}@example.org", f"P{i} Reader", state=st)
            sc.states[did] = st
        proof = add_delivery(svc.store, sc.cid, "officer@example.org", "Officer", is_proof=True)
        sc.states[proof] = "sent"
        sc.proofs.add(proof)
        # Editions as the ledger stores them; an older ledger's raw es-ES is merged into es.
        stored = ["es", "en", "es-ES", ""]
        with svc.store.atomic() as conn:
            for i, did in enumerate(sorted(sc.states)):
                conn.execute("UPDATE deliveries SET language = ? WHERE id = ?",
                             (stored[i % 4], did))
                sc.languages[did] = stored[i % 4][:2]
        d = sorted(did for did, st in sc.states.items() if st == "sent" and did != proof)
        a, b = issue.links[0], issue.links[1]
        sc.open(d[0], BROWSER), sc.open(d[0], BROWSER), sc.open(d[1], GMAIL)
        sc.open(d[2], BROWSER), sc.open(d[3], APPLE_MPP), sc.open(d[4], SCANNER)
        sc.open(proof, BROWSER)
        sc.click(d[0], a), sc.click(d[0], a), sc.click(d[1], b), sc.click(d[2], a)
        sc.click(d[4], a, SCANNER), sc.click(proof, b)
        sc.unsubscribe(d[2]), sc.unsubscribe(d[2]), sc.unsubscribe(proof)
        sc.view(d[5]), sc.view(d[5])
        for did in d[:5]:
            sc.provider_event(did, "delivered")
        failed = [did for did, st in sc.states.items() if st == "failed"]
        sc.provider_event(failed[0], "bounce")
        sc.provider_event(d[6], "complaint")
        yield sc


def _expected(sc: Scenario, proofs: bool = False) -> dict[str, object]:
    sent = sum(1 for did, st in sc.states.items() if st == "sent" and sc.counted(did, proofs))
    opens = [(d, m) for d, m in sc.opens if sc.counted(d, proofs)]
    clicks = [(d, u, m) for d, u, m in sc.clicks if sc.counted(d, proofs)]

    def rate(n: int) -> float | None:
        return round(n / sent, 4) if sent else None

    per_link: dict[str, dict[str, int]] = {}
    for url in {u for _, u, _ in clicks}:
        these = [(d, m) for d, u, m in clicks if u == url]
        per_link[url] = {"total": len(these), "unique": len({d for d, _ in these}),
                         "human_total": sum(1 for _, m in these if not m),
                         "human_unique": len({d for d, m in these if not m})}
    unique_opens = len({d for d, _ in opens})
    unsub = len([d for d in sc.unsubscribed if sc.counted(d, proofs)])
    hook = {k: len([d for d in v if sc.counted(d, proofs)]) for k, v in sc.webhook.items()}
    return {
        "sent": sent,
        "recipients": sum(1 for did in sc.states if sc.counted(did, proofs)),
        "failed": Counter(st for did, st in sc.states.items() if sc.counted(did, proofs))["failed"],
        "opens": {
            "total": len(opens), "unique": unique_opens,
            "human_total": sum(1 for _, m in opens if not m),
            "human_unique": len({d for d, m in opens if not m}),
            "machine_total": sum(1 for _, m in opens if m),
            "unique_rate": rate(unique_opens),
            "human_unique_rate": rate(len({d for d, m in opens if not m})),
        },
        "clicks_unique": len({d for d, _, _ in clicks}),
        "clicks_human_unique": len({d for d, _, m in clicks if not m}),
        "links": per_link,
        "unsubscribes": unsub,
        "unsubscribe_rate": rate(unsub),
        "delivered": hook.get("delivered", 0),
        "bounces": hook.get("bounce", 0),
        "complaints": hook.get("complaint", 0),
        "webviews": len({d for d in sc.webviews if sc.counted(d, proofs)}),
    }


@pytest.mark.parametrize("proofs", [False, True])
def test_figures_match_what_was_done(scenario: Scenario, proofs: bool):
    report = campaign_report(scenario.svc.store, SLUG, include_proofs=proofs)
    want = _expected(scenario, proofs)
    assert report.sent == want["sent"]
    assert report.recipients == want["recipients"]
    assert report.failed == want["failed"]
    assert (report.in_doubt, report.deferred, report.pending) == (1, 1, 1)
    assert report.proofs == len(scenario.proofs)
    assert as_dict(report)["opens"] == want["opens"]
    assert (report.clicks.unique, report.clicks.human_unique) == (
        want["clicks_unique"], want["clicks_human_unique"])
    assert {link.url: {"total": link.total, "unique": link.unique,
                       "human_total": link.human_total, "human_unique": link.human_unique}
            for link in report.links} == want["links"]
    assert report.unsubscribes == want["unsubscribes"]
    assert report.rates["unsubscribe"] == want["unsubscribe_rate"]
    assert (report.delivered, report.bounces, report.complaints) == (
        want["delivered"], want["bounces"], want["complaints"])
    assert report.webviews == want["webviews"]
    assert sum(b.opens for b in report.timeline) == report.opens.total
    assert sum(b.human_clicks for b in report.timeline) == report.clicks.human_total


@pytest.mark.parametrize("proofs", [False, True])
def test_figures_by_language_add_up_to_the_totals(scenario: Scenario, proofs: bool):
    report = campaign_report(scenario.svc.store, SLUG, include_proofs=proofs)
    sc = scenario
    rows = {f.language: f for f in report.by_language}
    assert set(rows) == {lang for did, lang in sc.languages.items() if sc.counted(did, proofs)}
    for lang, f in rows.items():
        mine = {did for did, code in sc.languages.items()
                if code == lang and sc.counted(did, proofs)}
        assert f.recipients == len(mine)
        assert f.sent == sum(1 for did in mine if sc.states[did] == "sent")
        assert f.opens_unique == len({d for d, _ in sc.opens if d in mine})
        assert f.opens_human_unique == len({d for d, m in sc.opens if d in mine and not m})
        assert f.clicks_unique == len({d for d, _, _ in sc.clicks if d in mine})
        assert f.clicks_human_unique == len({d for d, _, m in sc.clicks if d in mine and not m})
        assert f.unsubscribes == len(sc.unsubscribed & mine)
        assert f.open_rate == (round(f.opens_unique / f.sent, 4) if f.sent else None)
    assert sum(f.sent for f in rows.values()) == report.sent
    assert sum(f.opens_unique for f in rows.values()) == report.opens.unique
    assert sum(f.clicks_human_unique for f in rows.values()) == report.clicks.human_unique
    assert rows["es"].opens_unique > 0  # the split is not trivially empty


def test_cli_json_is_the_report(scenario: Scenario, tmp_path: Path):
    folder = tmp_path / "campaigns" / SLUG  # only the folder's name matters
    result = CliRunner().invoke(app, ["report", str(folder), "--json", "--state",
                                      str(scenario.svc.store.path), "--config",
                                      str(REPO / "cohesion-mail.toml")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    want = _expected(scenario)
    assert data["sent"] == want["sent"] and data["opens"] == want["opens"]
    assert data["unsubscribes"] == want["unsubscribes"]
    assert set(data) >= {"sent", "failed", "in_doubt", "deferred", "delivered", "opens",
                         "clicks", "links", "unsubscribes", "bounces", "complaints", "rates",
                         "timeline", "by_language"}
    split = {row["language"]: row for row in data["by_language"]}
    assert set(split) == {"es", "en", ""}
    assert sum(row["sent"] for row in split.values()) == want["sent"]
    assert set(split["es"]) >= {"sent", "opens_unique", "opens_human_unique", "clicks_unique",
                                "clicks_human_unique", "unsubscribes", "open_rate"}


def test_cli_table_and_html_file(scenario: Scenario, tmp_path: Path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", SLUG, "--html", str(out), "--state",
                                      str(scenario.svc.store.path)])
    assert result.exit_code == 0, result.output
    want = _expected(scenario)
    assert "Clicks per link" in result.stdout and f"Wrote {out}" in result.stdout
    assert "By language" in result.stdout and re.search(r"\ses\s", result.stdout)
    assert re.search(rf"Sent\s.*\s{want['sent']}\s", result.stdout)
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == 2  # opens and clicks over time, top links
    assert "<script" not in page and "<link" not in page
    assert not re.search(r'(src|href)="https?:', page)  # self-contained
    for url in want["links"]:  # type: ignore[union-attr]
        assert url in page
    assert '<h2 id="h-lang">By language</h2>' in page and "<td>es</td>" in page


def test_module_entry_point_runs_report(scenario: Scenario):
    out = subprocess.run(
        [sys.executable, "-m", "cohesion_mail", "report", SLUG, "--json", "--state",
         str(scenario.svc.store.path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sent"] == _expected(scenario)["sent"]


def test_unknown_campaign_and_missing_store_are_errors(scenario: Scenario, tmp_path: Path):
    unknown = CliRunner().invoke(app, ["report", "2099-01-nothing", "--state",
                                       str(scenario.svc.store.path)])
    assert unknown.exit_code == 1
    assert "no campaign '2099-01-nothing'" in unknown.stderr
    missing = CliRunner().invoke(app, ["report", SLUG, "--state", str(tmp_path / "nope.db")])
    assert missing.exit_code == 1 and "no state store" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
