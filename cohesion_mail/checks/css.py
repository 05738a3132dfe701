"""CSS that Gmail, Outlook or Apple Mail do not support, judged against ``data/caniemail.json``.

The compiled HTML's ``<style>`` blocks and ``style=""`` attributes are scanned (CSS inside
Outlook's conditional comments is Outlook's own and is skipped by the HTML parser). A small
tokenizer is enough: we only need declarations (``property: value``), at-rules and the media
features of ``@media`` preludes, not a cascade.

Features marked ``graceful`` in the data (rounded corners, media queries, dark mode) are what
our own templates use on purpose, with MJML's fallbacks; they are never reported. Every other
feature in the list is a warning naming the clients, with the caniemail page to read.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from .findings import Finding, warning

_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_IMPORTANT = re.compile(r"\s*!\s*important\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Declaration:
    prop: str
    value: str


@dataclass(frozen=True)
class AtRule:
    name: str
    prelude: str


Item = Declaration | AtRule


@dataclass(frozen=True)
class Feature:
    slug: str
    title: str
    match: dict[str, Any]
    support: dict[str, dict[str, str]]
    notes: dict[str, str]
    last_test_date: str
    fix: str
    graceful: str

    @property
    def url(self) -> str:
        return f"https://www.caniemail.com/features/{self.slug}/"

    def matches(self, item: Item) -> bool:
        m = self.match
        if isinstance(item, AtRule):
            if item.name in m.get("at_rules", ()):
                return True
            if item.name == "media":
                return any(f in item.prelude.lower() for f in m.get("media_features", ()))
            return False
        prop, value = item.prop, item.value
        if prop in m.get("properties", ()):
            return not m.get("value") or re.search(m["value"], value, re.IGNORECASE) is not None
        if any(prop.startswith(p) for p in m.get("property_prefixes", ())):
            return True
        return any(re.search(rf"(?<![\w-]){re.escape(f)}\(", value) for f in m.get("functions", ()))


@dataclass(frozen=True)
class Support:
    source: dict[str, str]
    clients: dict[str, str]
    platforms: dict[str, str]
    features: tuple[Feature, ...]


@lru_cache(maxsize=1)
def support_data() -> Support:
    """The curated caniemail list shipped in ``cohesion_mail/data/caniemail.json``."""
    text = resources.files("cohesion_mail").joinpath("data/caniemail.json").read_text("utf-8")
    raw = json.loads(text)
    features = tuple(
        Feature(
            slug=f["slug"],
            title=f["title"],
            match=f["match"],
            support=f["support"],
            notes=f.get("notes", {}),
            last_test_date=f["last_test_date"],
            fix=f.get("fix", ""),
            graceful=f.get("graceful", ""),
        )
        for f in raw["features"]
    )
    return Support(raw["source"], raw["clients"], raw["platforms"], features)


# -- tokenizer -------------------------------------------------------------------------------


def _blocks(css: str) -> Iterator[tuple[str, str | None]]:
    """Top-level ``(prelude, body)`` pairs; ``body`` is None for a statement ending in ``;``."""
    depth = 0
    start = 0
    body_start = 0
    prelude = ""
    quote = ""
    for i, ch in enumerate(css):
        if quote:
            if ch == quote and css[i - 1] != "\\":
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch == "{":
            if depth == 0:
                prelude = css[start:i].strip()
                body_start = i + 1
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                yield prelude, css[body_start:i]
                start = i + 1
        elif ch == ";" and depth == 0:
            yield css[start:i].strip(), None
            start = i + 1
    tail = css[start:].strip()
    if tail and depth == 0:
        yield tail, None


def declarations(body: str) -> Iterator[Declaration]:
    """``prop: value`` pairs of a declaration block or a ``style`` attribute."""
    depth = 0
    start = 0
    parts: list[str] = []
    for i, ch in enumerate(body):
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif ch == ";" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    for part in parts:
        prop, sep, value = part.partition(":")
        prop = prop.strip().lower()
        if sep and prop and re.fullmatch(r"-{0,2}[a-z][a-z0-9-]*", prop):
            yield Declaration(prop, _IMPORTANT.sub("", value.strip()))


def parse_css(css: str) -> Iterator[Item]:
    """Declarations and at-rules of a style sheet, nested blocks included."""
    css = _COMMENT.sub("", css)
    for prelude, body in _blocks(css):
        if prelude.startswith("@"):
            name, _, rest = prelude[1:].partition(" ")
            name = name.lower().split("(")[0]
            yield AtRule(name, rest.strip())
            if body is None or name.endswith("keyframes"):
                continue
            if name in ("media", "supports", "document", "container", "layer"):
                yield from parse_css(body)
            else:
                yield from declarations(body)
        elif body is not None:
            yield from declarations(body)
        else:
            yield from declarations(prelude)  # a style attribute has no braces at all


# -- the rule --------------------------------------------------------------------------------


def describe_support(feature: Feature, data: Support) -> str:
    """``not supported by Outlook (Windows, Windows Mail); partly by Gmail (iOS, Android)``."""
    no: list[str] = []
    partly: list[str] = []
    for client, platforms in feature.support.items():
        name = data.clients.get(client, client)
        for code, out in (("n", no), ("a", partly)):
            hit = [data.platforms.get(p, p) for p, v in platforms.items() if v == code]
            if hit:
                out.append(name if len(hit) == len(platforms) else f"{name} ({', '.join(hit)})")
    text = []
    if no:
        text.append("not supported by " + ", ".join(no))
    if partly:
        text.append("only partly by " + ", ".join(partly))
    return "; ".join(text)


def _shown(item: Item) -> str:
    if isinstance(item, AtRule):
        return f"@{item.name} {item.prelude}".strip()[:60]
    return f"{item.prop}: {item.value}"[:60]


Locator = Callable[[Item], "tuple[str, int] | None"]


def css_findings(styles: list[str], locate: Locator | None = None) -> list[Finding]:
    """One warning per unsupported feature used in ``styles`` (style sheets and attributes).

    ``locate(item) -> (file, line) | None`` finds the template that wrote it.
    """
    data = support_data()
    uses: dict[Item, int] = {}  # MJML repeats the same styles on every cell: match each once
    for css, repeats in Counter(styles).items():
        for item in parse_css(css):
            uses[item] = uses.get(item, 0) + repeats
    first: dict[str, tuple[Feature, Item]] = {}
    count: dict[str, int] = {}
    for item, times in uses.items():
        for feature in data.features:
            if feature.graceful or not feature.matches(item):
                continue
            first.setdefault(feature.slug, (feature, item))
            count[feature.slug] = count.get(feature.slug, 0) + times
    found: list[Finding] = []
    for slug, (feature, item) in first.items():
        support = describe_support(feature, data)
        if not support:
            continue
        notes = " ".join(feature.notes.values())
        where = locate(item) if locate else None
        often = f" ({count[slug]} times)" if count[slug] > 1 else ""
        found.append(
            warning(
                "css-support",
                where[0] if where else "HTML",
                f"{feature.title}{often}, e.g. '{_shown(item)}', is {support}"
                + (f". {notes}" if notes else ""),
                f"{feature.fix} See {feature.url} (tested {feature.last_test_date}).".strip(),
                file=where[0] if where else None,
                line=where[1] if where else None,
            )
        )
    return found
