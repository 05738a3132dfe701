"""Every language edition of one issue, each compiled once, and the pick per recipient.

``build_variants`` compiles the main language and each ``campaign.<lang>.yaml`` translation
exactly once (N languages → N compiles, whatever the number of recipients);
``Variants.for_language`` then hands each recipient the edition for their language — by
``language`` column, normalised (``es-ES`` → ``es``) — or the main one when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from ..config import Settings
from ..errors import ContentError
from ..i18n import normalise_language
from ..translations import Translations, main_language
from .personalise import CompiledIssue
from .pipeline import compile_campaign


class Variants(Mapping[str, CompiledIssue]):
    """language → ``CompiledIssue``; the main language first, then the others A→Z."""

    def __init__(self, issues: Iterable[CompiledIssue], main: str) -> None:
        by_language = {issue.language: issue for issue in issues}
        if main not in by_language:
            raise ContentError(f"no edition in the main language {main!r}")
        self.main = main
        self._issues = {main: by_language[main]} | {
            lang: by_language[lang] for lang in sorted(by_language) if lang != main
        }

    def __getitem__(self, language: str) -> CompiledIssue:
        return self._issues[language]

    def __iter__(self) -> Iterator[str]:
        return iter(self._issues)

    def __len__(self) -> int:
        return len(self._issues)

    def __repr__(self) -> str:
        return f"Variants(main={self.main!r}, languages={list(self._issues)!r})"

    @property
    def main_issue(self) -> CompiledIssue:
        return self._issues[self.main]

    def language_for(self, code: str | None) -> str:
        """The edition a reader with language ``code`` gets: theirs if it exists, else main."""
        wanted = normalise_language(code)
        return wanted if wanted in self._issues else self.main

    def for_language(self, code: str | None) -> CompiledIssue:
        """The compiled edition for ``code`` (``es``, ``ES``, ``es-ES``); main for none/unknown."""
        return self._issues[self.language_for(code)]


def build_variants(campaign_dir: Path, settings: Settings) -> Variants:
    """Compile the main language and every translation of ``campaign_dir``, once each.

    Raises ``ContentError`` naming the translation file and line for a bad translation,
    and ``TemplateError``/``MergeFieldError`` as ``build_issue`` does.
    """
    campaign_dir = Path(campaign_dir)
    translations = Translations(campaign_dir)
    main = main_language(translations.main, settings)
    translations.check_main(main)
    slug = campaign_dir.resolve().name
    campaigns = {}
    problems: list[str] = []
    for lang in [main, *translations.languages]:  # every file checked before any compile
        try:
            campaigns[lang] = translations.campaign(lang)
        except ContentError as exc:
            problems.append(exc.message)
    if problems:
        raise ContentError("\n".join(problems))
    issues = [
        compile_campaign(campaign, slug, settings, language=lang, fallback=main)
        for lang, campaign in campaigns.items()
    ]
    return Variants(issues, main)
