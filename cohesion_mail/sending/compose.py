"""One ledger row → one ``OutgoingMessage``: the subscriber's merge values, signed links, headers.

Called once per recipient by the send loop's main thread, ahead of the workers that send:
no I/O, nothing kept per recipient.
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
from ..wire import StubIssue, WireIssue, WireMessage

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
        wire: bool = True,
    ) -> None:
        self.issue = issue
        self.settings = settings
        self.links = links
        self.campaign_id = campaign_id
        self.click_tracking = click_tracking
        self.open_tracking = open_tracking
        # The fast path: the body encoded once per issue (see ``wire``); message_bytes, and
        # so every MIME transport, sends the prebuilt form. Proofs take the plain path.
        self.wire = WireIssue(issue, click_tracking=click_tracking) if wire else None
        self._stub = StubIssue(issue)
        self._clicks = _Clicks(links, campaign_id)

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
        issue, clicks = self.issue, self._clicks
        click = (lambda url: clicks.url(delivery_id, url)) if self.click_tracking else None
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


class _Clicks:
    """Click-tracking URLs, from one template per link: only the signed token differs between
    recipients, so the target URL is quoted once per campaign, not once per message."""

    def __init__(self, links: Links, campaign_id: int) -> None:
        self.links = links
        self.campaign_id = campaign_id
        self.templates: dict[str, tuple[str, str]] = {}

    def url(self, delivery_id: int, target: str) -> str:
        signer, cid = self.links.signer, self.campaign_id
        template = self.templates.get(target)
        if template is None:
            template = (self.links.click(cid, 0, target), signer.token("click", cid, 0, target))
            self.templates[target] = template
        return template[0].replace(template[1], signer.token("click", cid, delivery_id, target), 1)


class EditionComposer:
    """One ``Composer`` per language edition (issue 7); a delivery's stored language picks it.

    Each edition was compiled once; picking one per recipient costs a dict lookup.
    """

    def __init__(self, composers: Mapping[str, Composer], main: str) -> None:
        self.composers = dict(composers)
        self.main = self.composers[main]

    def for_delivery(self, d: Delivery) -> OutgoingMessage:
        return self.composers.get(d.language, self.main).for_delivery(d)
