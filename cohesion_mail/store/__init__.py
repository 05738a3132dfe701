"""The state store: subscribers, campaigns, the send ledger and tracking events in SQLite."""

from .db import Store, now

__all__ = ["Store", "now"]
