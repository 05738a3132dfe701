"""Where a campaign stands: deliveries per state and every failed or in-doubt recipient."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..store.db import DELIVERY_STATES, Store
from ..store.ledger import Ledger, Problem, find_campaign
from .lock import CampaignLock


@dataclass
class CampaignStatus:
    slug: str
    campaign_id: int | None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DELIVERY_STATES, 0))
    proofs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DELIVERY_STATES, 0))
    problems: list[Problem] = field(default_factory=list)
    running: str = ""  # "process <pid>" while a send holds the campaign's lock
    recovered: int = 0  # rows a killed run left "sending", marked in_doubt by this call

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = [asdict(p) for p in self.problems if p.state == "failed"]
        data["in_doubt"] = [asdict(p) for p in self.problems if p.state == "in_doubt"]
        del data["problems"]
        return data


def campaign_status(campaign_dir: Path, store: Store) -> CampaignStatus:
    """The ledger's view of ``campaign_dir`` (its slug is the folder name, as in a build).

    When no send is running, rows a killed run left ``sending`` are marked ``in_doubt`` first,
    so the listing tells the truth; while one runs, its in-flight rows are left alone.
    """
    slug = Path(campaign_dir).resolve().name
    cid = find_campaign(store, slug)
    st = CampaignStatus(slug, cid)
    if cid is None:
        return st
    ledger = Ledger(store, cid)
    lock = CampaignLock(store.path, slug)
    if lock.try_acquire():
        try:
            st.recovered = ledger.recover()
        finally:
            lock.release()
    else:
        st.running = f"process {lock.holder()}" if lock.holder() else "another process"
    st.counts = ledger.counts()
    st.proofs = ledger.counts(proofs=True)
    st.problems = ledger.problems()
    return st
