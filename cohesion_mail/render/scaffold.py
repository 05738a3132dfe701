"""``cohesion-mail new``: a campaign folder from the example content (never overwrites)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from ..content import CONTENT_FILE
from ..errors import ContentError
from .templates import template_dirs

EXAMPLE = "campaign.example.yaml"
SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


def new_campaign(slug: str, parent: Path, *, root: Path, today: dt.date | None = None) -> Path:
    """Create ``<parent>/<slug>/campaign.yaml`` with an example of every section type.

    The example comes from ``templates/campaign.example.yaml`` (a project may override it).
    Refuses an existing folder so an editor's work can never be overwritten.
    """
    if not SLUG.match(slug):
        raise ContentError(
            f"campaign name {slug!r}: use lower-case letters, digits, '-', '.' or '_'",
            hint="e.g. cohesion-mail new 2020-03-cohes3ion",
        )
    folder = Path(parent) / slug
    if folder.exists():
        raise ContentError(
            f"{folder}: already exists; not overwriting it",
            hint="choose another name or delete the folder first",
        )
    example = next((d / EXAMPLE for d in template_dirs(root) if (d / EXAMPLE).is_file()), None)
    if example is None:
        raise ContentError(f"templates/{EXAMPLE}: not found")
    text = example.read_text(encoding="utf-8")
    text = text.replace("__DATE__", (today or dt.date.today()).isoformat())
    text = text.replace("__DIR__", folder.as_posix())
    try:
        folder.mkdir(parents=True)
        (folder / CONTENT_FILE).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ContentError(f"{folder}: cannot create: {exc.strerror}") from exc
    return folder / CONTENT_FILE
