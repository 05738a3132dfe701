"""cohesion-mail: build and send responsive HTML email newsletters from structured content.

Pipeline: content (YAML) → Jinja2 → MJML → css-inline → HTML + text → per-recipient
personalisation → MIME → transport (outbox, SMTP, HTTP APIs) → send ledger (SQLite).
"""

from .errors import CohesionMailError

__version__ = "0.1.0"
__all__ = ["CohesionMailError", "__version__"]
