"""``cohesion-mail build``: the issue personalised for a sample recipient, written to files.

The sample's unsubscribe, web-version and pixel URLs are real signed URLs (``tracking.tokens``)
made with a fixed, public *sample* secret and ids 0/0: they show the shape of the links but
are never valid for the tracking service, and no state file or secret is created. Content links
keep their real targets so the preview can be clicked through.

A multilingual issue builds one edition (``language=``, written as ``email.<lang>.html``) or
all of them (``build_all_samples``: ``email.<lang>.html`` for each, and the main language
again as ``email.html``), each compiled once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import Settings
from ..errors import ConfigError, ContentError
from ..i18n import normalise_language
from ..tracking.tokens import Links, Signer
from .personalise import CompiledIssue
from .pipeline import GMAIL_CLIP_BYTES, build_issue
from .variants import build_variants

SAMPLE_SECRET = b"cohesion-mail-sample-build-not-a-real-secret"
SAMPLE_RECIPIENT = {
    "name": "Alex Example",
    "first_name": "Alex",
    "last_name": "Example",
    "email": "alex@example.org",
    "organisation": "Example Organisation",
    "country": "",
}


@dataclass(frozen=True)
class SampleBuild:
    issue: CompiledIssue
    html_path: Path
    text_path: Path
    html_bytes: int
    text_bytes: int

    @property
    def clipped(self) -> bool:
        """True when Gmail would clip the HTML ("[Message clipped] View entire message")."""
        return self.html_bytes > GMAIL_CLIP_BYTES


def sample_values(issue: CompiledIssue, settings: Settings) -> dict[str, str]:
    """Merge values for the sample recipient, with signed sample links."""
    links = Links(settings.base_url, Signer(SAMPLE_SECRET))
    values = dict(issue.merge_defaults)
    values.update(SAMPLE_RECIPIENT)
    values["language"] = issue.language
    values["unsubscribe_url"] = links.unsubscribe(0, 0)
    values["web_version_url"] = links.web_version(0, 0)
    values["open_pixel_url"] = links.open_pixel(0, 0)
    return values


def build_sample(
    campaign_dir: Path,
    settings: Settings,
    out_dir: Path | None = None,
    *,
    language: str | None = None,
) -> SampleBuild:
    """Build ``campaign_dir`` and write ``email.html`` and ``email.txt`` to ``out_dir``.

    With ``language`` (``es``, ``es-ES``), the edition for that language is written as
    ``email.<lang>.html``/``.txt``: the translation if there is one, else the main language
    (the result's ``issue.language`` says which).
    """
    if language is None:
        return _write(build_issue(campaign_dir, settings), settings, _out(campaign_dir, out_dir))
    code = normalise_language(language)
    if code is None:
        raise ConfigError(
            f"--lang {language!r}: not an ISO 639-1 language code", hint="e.g. --lang es"
        )
    issue = build_issue(campaign_dir, settings, language=code)
    return _write(issue, settings, _out(campaign_dir, out_dir), f".{issue.language}")


def build_all_samples(
    campaign_dir: Path, settings: Settings, out_dir: Path | None = None
) -> list[SampleBuild]:
    """Every language edition as ``email.<lang>.html``/``.txt``, main language first; the
    main one is also written as ``email.html``/``email.txt``."""
    variants = build_variants(campaign_dir, settings)
    out = _out(campaign_dir, out_dir)
    builds = [_write(variants.main_issue, settings, out)]
    builds += [_write(issue, settings, out, f".{lang}") for lang, issue in variants.items()]
    return builds


def _out(campaign_dir: Path, out_dir: Path | None) -> Path:
    return Path(out_dir) if out_dir is not None else Path(campaign_dir) / "build"


def _write(issue: CompiledIssue, settings: Settings, out: Path, suffix: str = "") -> SampleBuild:
    html, text = issue.personalise(sample_values(issue, settings))
    html_path, text_path = out / f"email{suffix}.html", out / f"email{suffix}.txt"
    try:
        out.mkdir(parents=True, exist_ok=True)
        html_data, text_data = html.encode("utf-8"), text.encode("utf-8")
        html_path.write_bytes(html_data)
        text_path.write_bytes(text_data)
    except OSError as exc:
        raise ContentError(f"{out}: cannot write the build: {exc.strerror}") from exc
    return SampleBuild(issue, html_path, text_path, len(html_data), len(text_data))
