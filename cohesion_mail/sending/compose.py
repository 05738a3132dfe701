"""One ledger row → one ``OutgoingMessage``: the subscriber's merge values, signed links, headers.

Called once per recipient from the worker threads, so it does no I/O and keeps nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ..config import Settings
from ..message import OutgoingMessage, Recipient, build_message
from ..render.fields import RECIPIENT_FIELDS
from ..render.personalise import CompiledIssue
from ..store.ledger import Delivery
from ..tracking.tokens import Links
from ..wire import StubIssue, WireIssue, WireMessage, wire_supported

# Every recipient field has a value (empty when the list has no such column), so an issue that
# greets ``*|first_name|*`` never fails for a row that lacks one.
_BLANK = dict.fromkeys(RECIPIENT_FIELDS, "")


class Composer:
    """Personalise the compiled issue for one recipient at a time."""

    def __init__(
        self,
        issue: CompiledIssue,
        settings: Settings,
        links: Links,
        campaign_id: int,
        *,
        click_tracking: bool,
        open_tracking: bool,
        wire: bool | None = None,
    ) -> None:
        if wire is None:
            wire = wire_supported()
        self.issue = issue
        self.settings = settings
        self.links = links
        self.campaign_id = campaign_id
        self.click_tracking = click_tracking
        self.open_tracking = open_tracking
        # The fast path: the body encoded once per issue (see ``wire``), used when the
        # transports send a prebuilt wire form. Proofs take the plain path.
        self.wire = WireIssue(issue, click_tracking=click_tracking) if wire else None
        self._stub = StubIssue(issue)

    def message(
        self,
        delivery_id: int,
        email: str,
        name: str,
        values: Mapping[str, str],
        *,
        language: str = "",
        is_proof: bool = False,
    ) -> OutgoingMessage:
        merged = dict(_BLANK)
        merged.update(values)
        merged["email"], merged["name"] = email, name
        recipient = Recipient(
            delivery_id=delivery_id,
            campaign_id=self.campaign_id,
            email=email,
            name=name,
            values=merged,
            language=language,
            is_proof=is_proof,
        )
        # Proofs are few and take the plain path, as does an address that needs SMTPUTF8
        # (message_bytes writes its headers in UTF-8).
        fast = self.wire is not None and not is_proof
        base = build_message(
            self._stub if fast else self.issue,
            self.settings,
            recipient,
            self.links,
            click_tracking=self.click_tracking,
            open_tracking=self.open_tracking,
        )
        if self.wire is None or not fast:
            return base
        cid, links, issue = self.campaign_id, self.links, self.issue
        click = (lambda url: links.click(cid, delivery_id, url)) if self.click_tracking else None
        raw = self.wire.message(base, click)
        if raw is None:  # needs SMTPUTF8
            return build_message(self.issue, self.settings, recipient, self.links,
                                 click_tracking=self.click_tracking,
                                 open_tracking=self.open_tracking)
        return WireMessage(base, raw, lambda: issue.personalise(base.merge, click))

    def for_delivery(self, d: Delivery) -> OutgoingMessage:
        """The message for a claimed row, filled from the subscriber's stored profile."""
        p = d.profile
        values: dict[str, str] = {}
        if p:
            extra = json.loads(p.get("fields") or "{}")
            if isinstance(extra, dict):
                values.update({str(k): str(v) for k, v in extra.items()})
            values.update(
                organisation=p.get("organisation", ""),
                country=p.get("country", ""),
                language=p.get("language", ""),
            )
        name = d.name or (p.get("name", "") if p else "")
        language = d.language or values.get("language", "")
        return self.message(
            d.id, d.email, name, values, language=language, is_proof=d.is_proof
        )
