"""One recipient's message: personalised parts, list headers, and its MIME form.

``OutgoingMessage`` is what every transport receives. It carries both the finished parts
(for SMTP, the outbox and per-message APIs) and the merge values that filled them (for APIs
that substitute per recipient in one batch request).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class OutgoingMessage:
    delivery_id: int
    to_email: str
    to_name: str
    from_name: str
    from_address: str
    reply_to: str
    subject: str
    html: str
    text: str
    message_id: str  # "<…@sender-domain>", also in ``headers``
    # List-Id, List-Unsubscribe, List-Unsubscribe-Post, Precedence, Feedback-ID, Content-Language, …
    headers: dict[str, str] = field(default_factory=dict)
    merge: dict[str, str] = field(default_factory=dict)
    is_proof: bool = False
