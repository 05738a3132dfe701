"""The tracking service's own small HTML pages: self-contained, accessible, in the list's colours.

Each page is one document with one inline ``<style>`` (its SHA-256 goes into the
Content-Security-Policy, so no other style or any script can run) and no external resource but
the optional https logo. Pages never say whether an address is subscribed: what a page shows
depends only on the link that was followed, not on the address's state.
"""

from __future__ import annotations

import base64
import hashlib
import re
from html import escape

from ..config import Settings, Theme

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


class Pages:
    """The service's pages for one project (list name, theme, postal address)."""

    def __init__(self, settings: Settings) -> None:
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
        self.language = settings.language or "en"
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
            f'<!doctype html><html lang="{escape(self.language)}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex, nofollow">'
            f"<title>{escape(title)} · {escape(self.list_name)}</title>"
            f"<style>{self.style}</style></head><body>"
            f'<main><p class="list">{self.masthead}</p><h1>{escape(title)}</h1>{body}</main>'
            f"{footer}</body></html>"
        )

    def confirm_unsubscribe(self, action: str, masked_email: str) -> str:
        """GET on the unsubscribe link: ask, change nothing (RFC 8058 §3.1: link scanners GET)."""
        return self.render(
            "Unsubscribe?",
            f"<p>Stop sending the {escape(self.list_name)} to "
            f"<strong>{escape(masked_email)}</strong>?</p>"
            f'<form method="post" action="{escape(action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<input type="hidden" name="from" value="page">'
            "<button type=\"submit\">Unsubscribe</button></form>",
        )

    def unsubscribed(self, resubscribe_action: str, masked_email: str) -> str:
        """After the POST, whatever the address's state was: the same words every time."""
        return self.render(
            "You are unsubscribed",
            f"<p>{escape(masked_email)} will not receive the {escape(self.list_name)} any more."
            " Nothing else is needed from you.</p>"
            "<p>Unsubscribed by mistake?</p>"
            f'<form method="post" action="{escape(resubscribe_action)}">'
            '<button type="submit" class="secondary">Re-subscribe</button></form>',
        )

    def resubscribed(self, unsubscribe_action: str, masked_email: str) -> str:
        """After a re-subscribe request. A bounced or complained address stays suppressed,
        and the page must not tell which happened, so it promises no more than that."""
        return self.render(
            "Welcome back",
            f"<p>Your request to receive the {escape(self.list_name)} at "
            f"{escape(masked_email)} again is recorded. If the address can receive our mail, "
            "the next issue will reach you.</p>"
            f'<form method="post" action="{escape(unsubscribe_action)}">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<input type="hidden" name="from" value="page">'
            '<button type="submit" class="secondary">Unsubscribe again</button></form>',
        )

    def error(self, status: int) -> str:
        """The one page for every refused request (bad, forged or unknown links look alike)."""
        title, text = _ERRORS.get(status, _ERRORS[500])
        return self.render(title, f"<p>{text}</p>")


_ERRORS = {
    400: ("This link is incomplete", "The address may have been cut or changed on its way "
          "here. Copy the whole link from the email, or use the link in the email itself."),
    404: ("Link not found", "This link is not valid. It may have been copied only in part; "
          "please use the link in the email itself."),
    405: ("Not possible here", "This address does not accept that kind of request."),
    413: ("Request too large", "This address does not accept a request that large."),
    500: ("Something went wrong", "We could not handle this request. Please try again later."),
}


def mask_email(email: str) -> str:
    """``j•••@example.org``: enough for a reader to recognise the address, little for a bystander
    who was forwarded the message."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else "•••"
