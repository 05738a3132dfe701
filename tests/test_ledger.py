"""The send ledger's state machine and the per-campaign send lock, on a real SQLite file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cohesion_mail.errors import StoreError
from cohesion_mail.sending.lock import CampaignLock
from cohesion_mail.store.db import Store
from cohesion_mail.store.ledger import Ledger, Outcome, find_campaign, save_issue
from cohesion_mail.store.subscribers import set_status


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "state.db") as s:
        yield s


@pytest.fixture
def ledger(store: Store) -> Ledger:
    return Ledger(store, store.campaign_id("2020-02-test", "Test issue"))


def people(n: int, start: int = 0) -> list[tuple[str, str, str]]:
    return [(f"Person{i}@Example.org", f"Person {i}", "en") for i in range(start, start + n)]


def test_enqueue_is_idempotent_and_lower_cases(ledger: Ledger) -> None:
    assert ledger.enqueue(people(5)) == 5
    assert ledger.enqueue(people(7)) == 2  # only the two new addresses
    assert ledger.counts()["queued"] == 7
    rows = ledger.store.query("SELECT email FROM deliveries ORDER BY id")
    assert rows[0]["email"] == "person0@example.org"


def test_claim_marks_sending_and_pages_by_id(ledger: Ledger) -> None:
    ledger.enqueue(people(10))
    first = ledger.claim_next(4)
    assert [d.email for d in first] == [f"person{i}@example.org" for i in range(4)]
    assert all(d.attempts == 1 for d in first)
    second = ledger.claim_next(4, after_id=first[-1].id)
    assert second[0].id > first[-1].id
    assert ledger.counts()["sending"] == 8
    assert ledger.counts()["queued"] == 2


def test_record_sent_failed_deferred(ledger: Ledger) -> None:
    ledger.enqueue(people(3))
    a, b, c = ledger.claim_next(3)
    ledger.record(
        [
            Outcome(a.id, "sent", "250 ok", message_id="<m1@x>", provider_message_id="q1"),
            Outcome(b.id, "failed", "550 5.1.1 no such user"),
            Outcome(c.id, "deferred", "451 try later"),
        ],
        transport="smtp",
    )
    counts = ledger.counts()
    assert (counts["sent"], counts["failed"], counts["deferred"]) == (1, 1, 1)
    row = ledger.store.query("SELECT * FROM deliveries WHERE id = ?", (a.id,))[0]
    assert (row["message_id"], row["provider_message_id"]) == ("<m1@x>", "q1")
    assert row["transport"] == "smtp"
    assert row["sent_at"]
    [problem] = ledger.problems()
    assert problem.email == "person1@example.org" and "550" in problem.detail


def test_recover_turns_sending_into_in_doubt_and_requeue_on_request(ledger: Ledger) -> None:
    ledger.enqueue(people(6))
    claimed = ledger.claim_next(2)
    # The process "dies" here: two rows stay in sending.
    assert ledger.recover() == 2
    counts = ledger.counts()
    assert counts["in_doubt"] == 2 and counts["sending"] == 0 and counts["queued"] == 4
    assert {p.delivery_id for p in ledger.problems(("in_doubt",))} == {d.id for d in claimed}
    # Not re-claimed by a normal run …
    assert {d.id for d in ledger.claim_next(10)}.isdisjoint(d.id for d in claimed)
    # … only when asked.
    assert ledger.requeue(["in_doubt"]) == 2
    assert ledger.counts()["queued"] == 2


def test_release_puts_rows_back_without_counting_an_attempt(ledger: Ledger) -> None:
    ledger.enqueue(people(2))
    rows = ledger.claim_next(2)
    ledger.release([d.id for d in rows])
    assert ledger.counts()["queued"] == 2
    again = ledger.claim_next(2)
    assert [d.attempts for d in again] == [1, 1]


def test_claim_skips_suppressed_and_drop_removes_them(ledger: Ledger) -> None:
    ledger.enqueue(people(3))
    set_status(ledger.store, "person1@example.org", "unsubscribed", "clicked unsubscribe")
    claimed = ledger.claim_next(10)
    assert [d.email for d in claimed] == ["person0@example.org", "person2@example.org"]
    assert ledger.drop_suppressed() == 1
    assert sum(ledger.counts().values()) == 2


def test_proofs_are_separate_and_repeatable(ledger: Ledger) -> None:
    ledger.enqueue(people(1))
    ids = ledger.add_proofs([("person0@example.org", "", "en")] * 2)
    assert len(ids) == 2
    assert ledger.counts()["queued"] == 1  # the campaign row only
    assert ledger.counts(proofs=True)["queued"] == 2
    assert ledger.claim_next(10)[0].is_proof is False
    proofs = ledger.claim_ids(ids)
    assert [d.is_proof for d in proofs] == [True, True]


def test_claim_ids_respects_states(ledger: Ledger) -> None:
    ledger.enqueue(people(2))
    a, b = ledger.claim_next(2)
    ledger.record([Outcome(a.id, "deferred", "421"), Outcome(b.id, "sent")])
    assert [d.id for d in ledger.claim_ids([a.id, b.id], ("deferred",))] == [a.id]


def test_save_issue_and_find_campaign(store: Store, ledger: Ledger) -> None:
    assert find_campaign(store, "nope") is None
    cid = find_campaign(store, "2020-02-test")
    assert cid == ledger.campaign_id
    for compiled in ("{}", '{"v": 2}'):
        save_issue(store, cid, language="en", subject="S", compiled=compiled,
                   directory="/x", click_tracking=False)
    [variant] = store.query("SELECT * FROM campaign_variants")
    assert variant["compiled"] == '{"v": 2}'
    [campaign] = store.query("SELECT * FROM campaigns")
    assert (campaign["directory"], campaign["click_tracking"]) == ("/x", 0)


def test_lock_refuses_a_second_holder(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    with CampaignLock(state, "2020-02-test"):
        with pytest.raises(StoreError) as info:
            CampaignLock(state, "2020-02-test").acquire()
        assert "2020-02-test" in str(info.value) and "already being sent" in str(info.value)
        CampaignLock(state, "another").acquire().release()  # other campaigns are independent
    CampaignLock(state, "2020-02-test").acquire().release()


def test_lock_is_released_when_the_holder_is_killed(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from cohesion_mail.sending.lock import CampaignLock
        CampaignLock(Path({str(state)!r}), "c").acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match=f"process {child.pid}"):
            CampaignLock(state, "c").acquire()
        child.kill()
        child.wait(timeout=10)
        CampaignLock(state, "c").acquire().release()
    finally:
        child.kill()
        child.wait(timeout=10)
