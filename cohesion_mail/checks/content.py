"""Rules on what the editor wrote in campaign.yaml, each finding with its field path and line.

Images (decided here, documented in the README's ``check`` section):

* an image in a section (``image:``/``logo:``) or in a Markdown body with no alt text is an
  **error**: Outlook and many corporate clients block images until the reader allows them, so
  the alt text is what most readers first see, and it is all a screen reader has;
* an image with no ``width:`` is a **warning**: it is stretched to the full column, and a Markdown
  image is shown at its natural size by Outlook for Windows, which ignores ``max-width``;
* a local image file that does not exist is an **error**, and so is a Markdown image with a
  relative path (only a section's ``image:`` files are published with the issue).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import Settings
from ..content import Loc, dotted
from ..render.fields import CONTENT_MERGE, STANDARD_FIELDS
from ..render.templates import MARKDOWN_KEYS
from .findings import Finding, error, warning
from .source import Scalar, Source, display_file
from .urls import judge_url

SUBJECT_MAX = 78  # most desktop inboxes show 60-70 characters, phones about 40
PREHEADER_MAX = 120  # Gmail and Apple Mail show roughly 90-120 characters of preview text
IMAGE_KEYS = ("image", "logo")
URL_KEYS = ("url", "href")
_LOOKALIKE = re.compile(r"\{\{\s*[A-Za-z_][\w.]*\s*\}\}|\*\|[A-Za-z_]\w*(?!\w|\|\*)")
_WORD = re.compile(r"[^\s/–—-]+")


def content_findings(source: Source, campaign_dir: Path, settings: Settings) -> list[Finding]:
    """Every content rule, in the order of the file."""
    data = source.data if isinstance(source.data, dict) else {}
    found: list[Finding] = []
    found += _link_findings(source)
    found += _image_findings(source, campaign_dir)
    found += _merge_findings(source, data)
    found += _subject_findings(source, data)
    found += _postal_findings(source, data, settings)
    return found


def content_urls(source: Source) -> set[str]:
    """Every link and image address the content holds (the HTML rules skip these)."""
    urls: set[str] = set()
    for scalar in source.scalars:
        if scalar.key in URL_KEYS or scalar.key == "src":
            urls.add(scalar.value.strip())
        if scalar.key in MARKDOWN_KEYS:
            urls.update(link.url for link in source.markdown_links(scalar))
    return urls


# -- links -----------------------------------------------------------------------------------


def _label(source: Source, scalar: Scalar) -> str:
    label = source.get((*scalar.loc[:-1], "label"))
    return f' "{label}"' if isinstance(label, str) and label.strip() else ""


def _link_findings(source: Source) -> Iterator[Finding]:
    for scalar in source.scalars:
        if scalar.key in URL_KEYS:
            verdict = judge_url(scalar.value)
            if verdict:
                yield Finding(
                    verdict.level,
                    verdict.rule,
                    scalar.path,
                    f"link{_label(source, scalar)}: {verdict.message}",
                    verdict.fix,
                    source.shown,
                    scalar.line,
                )
        elif scalar.key in MARKDOWN_KEYS:
            for link in source.markdown_links(scalar):
                if link.kind != "link":
                    continue
                verdict = judge_url(link.url)
                if verdict:
                    yield Finding(
                        verdict.level,
                        verdict.rule,
                        scalar.path,
                        f'link "{link.text}" in the text: {verdict.message}',
                        verdict.fix,
                        source.shown,
                        link.line,
                    )


# -- images ----------------------------------------------------------------------------------


def _image_findings(source: Source, campaign_dir: Path) -> Iterator[Finding]:
    sections = source.get(("sections",))
    for i, section in enumerate(sections if isinstance(sections, list) else []):
        if not isinstance(section, dict):
            continue
        for key in IMAGE_KEYS:
            image = section.get(key)
            if isinstance(image, dict):
                yield from _section_image(source, campaign_dir, ("sections", i, key), image)
    for scalar in source.scalars:
        if scalar.key in MARKDOWN_KEYS:
            for link in source.markdown_links(scalar):
                if link.kind == "image":
                    yield from _markdown_image(source, scalar, link.url, link.text, link.line)


def _section_image(
    source: Source, campaign_dir: Path, loc: Loc, image: dict[str, object]
) -> Iterator[Finding]:
    path = dotted(loc)
    src = image.get("src")
    alt = image.get("alt")
    if not isinstance(alt, str) or not alt.strip():
        yield error(
            "image-alt",
            f"{path}.alt",
            "image has no alt text: readers with images blocked (Outlook's default) and screen"
            " readers get nothing",
            "add alt: with what the image shows, e.g. alt: Partners at the Essen learning journey",
            **source.at((*loc, "alt")),
        )
    if image.get("width") is None:
        yield warning(
            "image-width",
            f"{path}.width",
            "image has no width: it is stretched to the full width of its column",
            "add width: with the display width in pixels (at most 600), e.g. width: 280",
            **source.at(loc),
        )
    if not isinstance(src, str) or not src.strip():
        yield error(
            "image-missing",
            f"{path}.src",
            "image has no src",
            "add src: with a file name or an https:// address",
            **source.at(loc),
        )
        return
    src = src.strip()
    if src.startswith(("http://", "https://")) or ":" in src:
        verdict = judge_url(src)
        if verdict:
            yield Finding(
                verdict.level, verdict.rule, f"{path}.src", f"image: {verdict.message}",
                verdict.fix, **source.at((*loc, "src")),
            )  # fmt: skip
        return
    if CONTENT_MERGE.fullmatch(src):
        return
    rel = PurePosixPath(src)
    if rel.is_absolute() or ".." in rel.parts:
        yield error(
            "image-missing",
            f"{path}.src",
            f"image {src!r} is outside the campaign folder, so it is not published",
            "copy the file into the campaign folder and write its name, e.g. src: photo.jpg",
            **source.at((*loc, "src")),
        )
    elif not (campaign_dir / rel).is_file():
        yield error(
            "image-missing",
            f"{path}.src",
            f"image file {src!r} not found (looked for {display_file(campaign_dir / rel)})",
            "copy the image into the campaign folder or correct the file name (case matters)",
            **source.at((*loc, "src")),
        )


def _markdown_image(
    source: Source, scalar: Scalar, src: str, alt: str, line: int
) -> Iterator[Finding]:
    at: dict[str, Any] = {"file": source.shown, "line": line}
    if not alt.strip():
        yield error(
            "image-alt",
            scalar.path,
            f"image {src!r} in the text has no alt text",
            "write it as ![what the image shows](address)",
            **at,
        )
    if not src.startswith(("http://", "https://")):
        yield error(
            "image-missing",
            scalar.path,
            f"image {src!r} in the text is not an https:// address: only a section's image:"
            " files are published with the issue",
            "move it to the section's image: field, or use its full https:// address",
            **at,
        )
        return
    verdict = judge_url(src)
    if verdict:
        yield Finding(
            verdict.level, verdict.rule, scalar.path, f"image in the text: {verdict.message}",
            verdict.fix, **at,
        )  # fmt: skip
    yield warning(
        "image-width",
        scalar.path,
        f"image {src!r} in the text has no width: Outlook for Windows shows it at its natural"
        " size, however wide",
        "use the section's image: field with a width:, or resize the file to at most 536 px",
        **at,
    )


# -- merge fields ----------------------------------------------------------------------------


def _merge_findings(source: Source, data: dict[str, object]) -> Iterator[Finding]:
    declared = data.get("merge_fields")
    known = set(STANDARD_FIELDS) | (
        set(map(str, declared)) if isinstance(declared, dict) else set()
    )
    for scalar in source.scalars:
        if scalar.loc[:1] == ("merge_fields",):
            continue
        raw = source.text[scalar.start : scalar.end]
        for m in CONTENT_MERGE.finditer(scalar.value):
            if m.group(1) not in known:
                yield error(
                    "merge-field-unknown",
                    scalar.path,
                    f"unknown merge field {m.group(0)} (known: {', '.join(sorted(known))})",
                    f"correct the name, or declare it with a default under merge_fields:"
                    f' ({m.group(1)}: "…")',
                    file=source.shown,
                    line=_line_in(source, scalar, raw, m.group(0)),
                )
        for m in _LOOKALIKE.finditer(scalar.value):
            yield warning(
                "merge-field-syntax",
                scalar.path,
                f"{m.group(0)!r} looks like a merge field but will be sent as typed",
                "write merge fields as *|first_name|*",
                file=source.shown,
                line=_line_in(source, scalar, raw, m.group(0)),
            )


def _line_in(source: Source, scalar: Scalar, raw: str, needle: str) -> int:
    offset = raw.find(needle)
    if offset < 0:
        return scalar.line
    return source.text.count("\n", 0, scalar.start + offset) + 1


# -- subject and preheader -------------------------------------------------------------------


def _filled(text: str) -> str:
    """The text as a reader sees it: merge fields replaced by a typical value."""
    return CONTENT_MERGE.sub(lambda m: "Alex" if "name" in m.group(1) else "xxxxxxxx", text)


def shouting(subject: str) -> str | None:
    """Why a subject shouts, or ``None``: mostly capitals, a run of capitals, or ``!!``."""
    words = [w for w in _WORD.findall(subject) if sum(c.isalpha() for c in w) >= 2]
    caps = [w.isupper() and sum(c.isalpha() for c in w) >= 3 for w in words]
    run = best = 0
    for is_caps in caps:
        run = run + 1 if is_caps else 0
        best = max(best, run)
    if sum(caps) >= 2 and sum(caps) * 2 >= len(words):
        return f"{sum(caps)} of its {len(words)} words are in capitals"
    if best >= 3:
        return f"{best} words in a row are in capitals"
    if subject.count("!") >= 2:
        return "it has more than one '!'"
    return None


def _subject_findings(source: Source, data: dict[str, object]) -> Iterator[Finding]:
    subject = data.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        yield error(
            "subject-empty",
            "subject",
            "the subject is empty",
            'add subject: "…" at the top of campaign.yaml',
            **source.at(("subject",)),
        )
    else:
        shown = _filled(subject.strip())
        if len(shown) > SUBJECT_MAX:
            yield warning(
                "subject-long",
                "subject",
                f"the subject is {len(shown)} characters: inboxes cut it after about 60-70"
                " (phones after about 40)",
                f"put the key words first and keep it under {SUBJECT_MAX} characters",
                **source.at(("subject",)),
            )
        why = shouting(shown)
        if why:
            yield warning(
                "subject-shouting",
                "subject",
                f"the subject shouts ({why}): spam filters and readers both dislike it",
                "write it in sentence case with at most one '!'",
                **source.at(("subject",)),
            )
    preheader = data.get("preheader")
    if not isinstance(preheader, str) or not preheader.strip():
        yield warning(
            "preheader-empty",
            "preheader",
            'no preheader: inboxes show the first text of the email instead ("View in browser")',
            'add preheader: "…" with a sentence that continues the subject',
            **source.at(("preheader",)),
        )
    elif len(_filled(preheader.strip())) > PREHEADER_MAX:
        yield warning(
            "preheader-long",
            "preheader",
            f"the preheader is {len(_filled(preheader.strip()))} characters: inboxes show about"
            " 90-120 after the subject",
            f"say the important part in the first {PREHEADER_MAX} characters",
            **source.at(("preheader",)),
        )


# -- footer ----------------------------------------------------------------------------------


def _postal_findings(
    source: Source, data: dict[str, object], settings: Settings
) -> Iterator[Finding]:
    footer = data.get("footer")
    if isinstance(footer, dict) and "postal_address" in footer:
        value = footer.get("postal_address")
        if value is not None and (not isinstance(value, str) or not value.strip()):
            yield error(
                "postal-address",
                "footer.postal_address",
                "the footer's postal address is empty",
                "write the organisation's postal address, or remove the key to use"
                " [list] postal_address from cohesion-mail.toml",
                **source.at(("footer", "postal_address")),
            )
        return
    if not settings.list.postal_address.strip():
        config = display_file(settings.source) if settings.source else "cohesion-mail.toml"
        yield error(
            "postal-address",
            "list.postal_address",
            "no postal address for the footer: anti-spam laws (CAN-SPAM, the EU's ePrivacy rules)"
            " require the sender's postal address in every newsletter",
            f'add postal_address = "…" under [list] in {config}, or footer: postal_address:'
            " in campaign.yaml",
            file=config,
        )
