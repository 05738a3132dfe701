"""The merge fields a message can be personalised with: one whitelist, shared by build and send.

Content files write a merge field as ``*|name|*`` (the Mailchimp convention officers know);
anything else that looks like a template (``{{x}}``, ``[[x]]``) is plain text and stays so.
Templates use ``{{ merge("name") }}``. Extra fields must be declared with a default in the
campaign's ``merge_fields:`` mapping; the subscriber CSV's extra columns fill them at send time.
"""

from __future__ import annotations

import re

# Filled from the subscriber row.
RECIPIENT_FIELDS = (
    "name", "first_name", "last_name", "email", "organisation", "country", "language",
)  # fmt: skip
# Filled from the signed per-recipient links (see tracking.tokens.Links).
LINK_FIELDS = ("unsubscribe_url", "web_version_url", "open_pixel_url")
STANDARD_FIELDS = RECIPIENT_FIELDS + LINK_FIELDS

# Where a field is an URL, the value must be an URL we made, never subscriber data.
URL_FIELDS = frozenset(LINK_FIELDS)

CONTENT_MERGE = re.compile(r"\*\|([A-Za-z_][A-Za-z0-9_]*)\|\*")
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def field_name(header: str) -> str:
    """A CSV header as a merge field name: ``"Region (NUTS)"`` → ``region_nuts``."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
