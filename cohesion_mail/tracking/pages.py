"""The tracking service's own small HTML pages: self-contained, accessible, in the list's colours.

Each page is one document with one inline ``<style>`` (its SHA-256 goes into the
Content-Security-Policy, so no other style or any script can run) and no external resource but
the optional https logo. Pages never say whether an address is subscribed: what a page shows
depends only on the link that was followed, not on the address's state.

The words come from the templates' message catalogues (``templates/i18n/<lang>.yaml``, keys
``page_*``), so a reader who was sent the Spanish edition unsubscribes in Spanish; adding a
language is adding a file (issue 7). ``PageSet`` holds one ``Pages`` per language.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Iterable
from html import escape

from markupsafe import Markup

from ..config import Settings, Theme
from ..i18n import Catalogue, catalogue_languages, load_catalogue, normalise_language
from ..render.templates import template_dirs

# A colour or font list from cohesion-mail.toml, kept from closing the style element.
_CSS_SAFE = re.compile(r"^[#\w\s,.'\"()%-]+$")

_STYLE = """
:root {{ --primary: {primary}; --accent: {accent}; --text: {text}; --muted: {muted};
  --background: {background}; --surface: {surface}; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: var(--background); color: var(--text);
  font: 16px/1.55 {font_family}; }}
main {{ max-width: 34rem; margin: 12vh auto 2rem; padding: 2.25rem 2rem;
  background: var(--surface); border-top: 6px solid var(--primary); border-radius: 6px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08), 0 8px 24px rgba(0,0,0,.06); }}
.list {{ margin: 0 0 1.25rem; color: var(--primary); font-weight: 700; letter-spacing: .02em; }}
.list img {{ display: block; max-height: 48px; max-width: 200px; }}
h1 {{ margin: 0 0 .75rem; font: 700 1.6rem/1.25 {heading_font_family}; }}
p {{ margin: 0 0 1rem; }}
form {{ margin: 1.5rem 0 0; }}
button {{ font: inherit; font-weight: 700; color: #fff; background: var(--primary);
  border: 0; border-radius: 4px; padding: .7rem 1.4rem; cursor: pointer; }}
button:hover {{ filter: brightness(1.12); }}
button:focus-visible {{ outline: 3px solid var(--accent); outline-offset: 3px; }}
button.secondary {{ color: var(--primary); background: transparent;
  box-shadow: inset 0 0 0 2px var(--primary); }}
footer {{ max-width: 34rem; margin: 0 auto 3rem; padding: 0 2rem; color: var(--muted);
  font-size: .85rem; }}
@media (max-width: 40rem) {{ main {{ margin: 0 0 1.5rem; border-radius: 0; }} }}
"""


def _css(value: str, fallback: str) -> str:
    return value if value and _CSS_SAFE.match(value) else fallback


def main_language(settings: Settings) -> str:
    """The project's main language: the pages' language when the reader's is unknown."""
    return normalise_language(settings.language) or "en"


class Pages:
    """The service's pages for one project (list name, theme, postal address), in one language.

    ``catalogue`` gives the words; by default the project's main language.
    """

    def __init__(self, settings: Settings, catalogue: Catalogue | None = None) -> None:
        if catalogue is None:
            catalogue = load_catalogue(main_language(settings), template_dirs(settings.root))
        self.catalogue = catalogue
        theme, default = settings.theme, Theme()
        values = {
            name: _css(getattr(theme, name), getattr(default, name))
            for name in ("primary", "accent", "text", "muted", "background", "surface",
                         "font_family", "heading_font_family")
        }
        self.style = _STYLE.format(**values)
        digest = base64.b64encode(hashlib.sha256(self.style.encode("utf-8")).digest())
        self.style_source = f"'sha256-{digest.decode('ascii')}'"
        self.list_name = settings.list.name
        self.language = catalogue.language
        self.direction = catalogue.direction
        logo = theme.logo_url if theme.logo_url.startswith("https://") else ""
        alt = theme.logo_alt or settings.list.name
        self.masthead = (
            f'<img src="{escape(logo)}" alt="{escape(alt)}">' if logo else escape(self.list_name)
        )
        self.footer = escape(settings.list.postal_address)

    def render(self, title: str, body: str) -> str:
        """A complete document; ``body`` is trusted HTML built by the functions below."""
        footer = f"<footer><p>{self.footer}</p></footer>" if self.footer else ""
        return (
            f'<!doctype html><html lang="{escape(self.language)}" dir="{self.direction}">'
            '<head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex, nofollow">'
            f"<title>{escape(title)} · {escape(self.list_name)}</title>"
            f"<style>{self.style}</style></head><body>"
            f'<main><p class="list">{self.masthead}</p><h1>{escape(title)}</h1>{body}</main>'
            f"{footer}</body></html>"
        )

    def _say(self, key: str, masked_email: str = "", strong: bool = False) -> Markup:
        """The catalogue sentence ``key`` as HTML, with the list name and the address."""
        email: str | Markup = masked_email
        if strong:
            email = Markup("<strong>{}</strong>").format(masked_email)
        return self.catalogue.markup(key, list=self.list_name, email=email)

    def confirm_unsubscribe(self, action: str, masked_email: str) -> str:
        """GET on the unsubscribe link: ask, change nothing (RFC 8058 §3.1: link scanners GET)."""
        t = self.catalogue.gettext
        return self.render(
            t("page_unsubscribe_title"),
            f"<p>{self._say('page_unsubscribe_question', masked_email, strong=True)}</p>"
            f'<form method="post" action="{escape(action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<input type="hidden" name="from" value="page">'
            f'<button type="submit">{escape(t("page_unsubscribe_button"))}</button></form>',
        )

    def unsubscribed(self, resubscribe_action: str, masked_email: str) -> str:
        """After the POST, whatever the address's state was: the same words every time."""
        t = self.catalogue.gettext
        return self.render(
            t("page_unsubscribed_title"),
            f"<p>{self._say('page_unsubscribed_text', masked_email)}</p>"
            f"<p>{escape(t('page_unsubscribed_mistake'))}</p>"
            f'<form method="post" action="{escape(resubscribe_action)}">'
            f'<button type="submit" class="secondary">{escape(t("page_resubscribe_button"))}'
            "</button></form>",
        )

    def resubscribed(self, unsubscribe_action: str, masked_email: str) -> str:
        """After a re-subscribe request. A bounced or complained address stays suppressed,
        and the page must not tell which happened, so it promises no more than that."""
        t = self.catalogue.gettext
        return self.render(
            t("page_resubscribed_title"),
            f"<p>{self._say('page_resubscribed_text', masked_email)}</p>"
            f'<form method="post" action="{escape(unsubscribe_action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<input type="hidden" name="from" value="page">'
            '<button type="submit" class="secondary">'
            f'{escape(t("page_unsubscribe_again_button"))}</button></form>',
        )

    def error(self, status: int) -> str:
        """The one page for every refused request (bad, forged or unknown links look alike)."""
        code = status if status in ERROR_PAGES else 500
        t = self.catalogue.gettext
        return self.render(
            t(f"page_error_{code}_title"), f"<p>{escape(t(f'page_error_{code}_text'))}</p>"
        )


ERROR_PAGES = (400, 404, 405, 413, 500)


class PageSet:
    """One ``Pages`` per language, made on first use (catalogues are read once each).

    ``for_language`` picks the reader's language when a catalogue exists for it, else the
    main one, so ``<html lang>`` always names the language the words are in. The style (and
    so the Content-Security-Policy hash) is the same in every language.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dirs = template_dirs(settings.root)
        self.main = main_language(settings)
        self.languages = frozenset(catalogue_languages(self.dirs)) | {self.main}
        self._pages: dict[str, Pages] = {}
        self._lock = threading.Lock()
        self.default = self.for_language(self.main)

    @property
    def style_source(self) -> str:
        return self.default.style_source

    def language_for(self, code: str | None) -> str:
        wanted = normalise_language(code)
        return wanted if wanted in self.languages else self.main

    def for_language(self, code: str | None) -> Pages:
        language = self.language_for(code)
        with self._lock:
            if language not in self._pages:
                catalogue = load_catalogue(language, self.dirs, fallback=self.main)
                self._pages[language] = Pages(self.settings, catalogue)
            return self._pages[language]

    def best_match(self, accepted: Iterable[str]) -> Pages:
        """The first language of ``accepted`` (Accept-Language order) with a catalogue."""
        for code in accepted:
            if normalise_language(code) in self.languages:
                return self.for_language(code)
        return self.default


def mask_email(email: str) -> str:
    """``j•••@example.org``: enough for a reader to recognise the address, little for a bystander
    who was forwarded the message."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"
