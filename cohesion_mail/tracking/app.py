"""The tracking service: a Flask WSGI app answering the links in every message.

Routes (the URL shapes come from ``tokens.Links``)::

    GET  /u/<token>               confirmation page with a button; never changes anything
    POST /u/<token>               RFC 8058 one-click (and the page's button): unsubscribe, 200
    POST /u/<token>/resubscribe   undo an unsubscribe (never a bounce or a complaint)
    GET  /o/<token>.gif           1×1 transparent GIF; records an open
    GET  /c/<token>?u=<url>       302 to exactly the signed URL; records a click
    GET  /w/<token>               the issue as sent, for this recipient; records a view
    GET  /campaigns/<slug>/<path> a campaign's local images, which the HTML points at
    GET  /healthz                 liveness and store check for a load balancer

Every refused token (forged, truncated, another purpose, another campaign's delivery) gets the
same 404 page and changes nothing. No response depends on whether the address is subscribed.

Run it with ``cohesion-mail serve`` (waitress) or any WSGI server, e.g.
``gunicorn 'cohesion_mail.tracking.wsgi:app'``. One ``Store`` is shared by all threads.
"""

from __future__ import annotations

import base64
import functools
import re
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, Response, abort, request, send_from_directory, url_for
from waitress.server import create_server
from werkzeug.exceptions import HTTPException
from werkzeug.urls import iri_to_uri

from ..config import Settings
from ..errors import CohesionMailError, TokenError
from ..render.personalise import CompiledIssue
from ..sending.compose import Composer
from ..store.db import Store
from ..store.ledger import Delivery as LedgerDelivery
from . import events, webhooks
from .pages import PageSet, mask_email
from .tokens import Links, Signer, load_secret

# The smallest transparent GIF: 1×1, one-colour palette, transparency extension.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1: the body a one-click POST carries
NO_STORE = "no-store, no-cache, must-revalidate, max-age=0, private"
# Local images a campaign may publish (not SVG: it can carry script).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
EXTENSION = "cohesion_mail"  # app.extensions key: the store, signer and links
CONNECTION_LIMIT = 500  # open connections waitress accepts (see serve)


def _csp(**directives: str) -> str:
    return "; ".join(f"{name.replace('_', '-')} {value}" for name, value in directives.items())


@functools.lru_cache(maxsize=16)
def _compiled(doc: str) -> CompiledIssue:
    """Parse a stored issue once; the web version serves it many times."""
    return CompiledIssue.from_json(doc)


def _signer(store_path: Path) -> Signer:
    try:
        secret, _ = load_secret(store_path)
    except FileExistsError:  # another worker process generated it a moment ago
        secret, _ = load_secret(store_path)
    return Signer(secret)


def create_app(store_path: Path, settings: Settings) -> Flask:
    """The WSGI application over the state store at ``store_path``.

    The store and the signing secret are opened here, once; a secret that does not exist yet
    is generated next to the store (see ``tokens.load_secret``).
    """
    store = Store(store_path)
    signer = _signer(store_path)
    links = Links(settings.base_url, signer)
    pages = PageSet(settings)  # the words in each reader's language (issue 7)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions[EXTENSION] = {"store": store, "signer": signer, "links": links}

    page_csp = _csp(
        default_src="'none'", style_src=pages.style_source, img_src="https: data:",
        form_action="'self'", frame_ancestors="'none'", base_uri="'none'",
    )
    base = urlsplit(settings.base_url)
    # The web version is the email itself: inline styles, remote https images (and the pixel
    # on our own origin), but still no script, no frames, no forms.
    web_csp = _csp(
        default_src="'none'", style_src="'unsafe-inline' https:", font_src="https: data:",
        img_src=f"https: data: {base.scheme}://{base.netloc}", form_action="'none'",
        frame_ancestors="'none'", base_uri="'none'",
    )

    def delivery(purpose: str, token: str, extra: str = "") -> events.Delivery:
        """The delivery a valid token names, or the generic 404 (nothing else is revealed)."""
        try:
            data = signer.verify(purpose, token, extra)
        except TokenError:
            abort(404)
        found = events.find_delivery(store, data.campaign_id, data.delivery_id)
        if found is None:
            abort(404)
        return found

    def counts() -> bool:
        """HEAD requests (link checkers) answer like GET but are not recorded."""
        return request.method != "HEAD"

    def user_agent() -> str:
        return request.headers.get("User-Agent", "")

    def html(body: str, status: int = 200, csp: str = page_csp) -> Response:
        resp = Response(body, status=status, mimetype="text/html")
        resp.headers["Content-Security-Policy"] = csp
        return resp

    @app.get("/healthz")
    def healthz() -> Response:
        store.query("SELECT 1")
        return Response("ok\n", mimetype="text/plain")

    @app.get("/u/<token>")
    def unsubscribe_page(token: str) -> Response:
        found = delivery("unsubscribe", token)
        action = url_for("unsubscribe", token=token)
        page = pages.for_language(found.language)
        return html(page.confirm_unsubscribe(action, mask_email(found.email)))

    @app.post("/u/<token>")
    def unsubscribe(token: str) -> Response:
        found = delivery("unsubscribe", token)
        if not _is_one_click():
            abort(400)
        how = "page" if request.form.get("from") == "page" else "one-click"
        events.unsubscribe(store, found, user_agent=user_agent(), how=how)
        again = url_for("resubscribe", token=token)
        page = pages.for_language(found.language)
        return html(page.unsubscribed(again, mask_email(found.email)))

    @app.post("/u/<token>/resubscribe")
    def resubscribe(token: str) -> Response:
        found = delivery("unsubscribe", token)
        events.resubscribe(store, found, user_agent=user_agent())
        action = url_for("unsubscribe", token=token)
        page = pages.for_language(found.language)
        return html(page.resubscribed(action, mask_email(found.email)))

    @app.get("/o/<token>.gif")
    def open_pixel(token: str) -> Response:
        found = delivery("open", token)
        if counts():
            events.record_open(store, found, user_agent())
        resp = Response(PIXEL, mimetype="image/gif")
        resp.headers["Pragma"] = "no-cache"
        resp.headers["Expires"] = "0"
        return resp

    @app.get("/c/<token>")
    def click(token: str) -> Response:
        targets = request.args.getlist("u")
        if len(targets) != 1 or not _redirectable(targets[0]):
            abort(400)
        target = targets[0]
        found = delivery("click", token, extra=target)
        if counts():
            events.record_click(store, found, target, user_agent())
        resp = Response(status=302)
        resp.headers["Location"] = iri_to_uri(target)
        return resp

    @app.get("/w/<token>")
    def web_version(token: str) -> Response:
        found = delivery("web", token)
        body = _web_version(store, settings, links, found)
        if body is None:
            abort(404)
        if counts():
            events.record_webview(store, found, user_agent())
        return html(body, csp=web_csp)

    @app.get("/campaigns/<slug>/<path:filename>")
    def campaign_image(slug: str, filename: str) -> Response:
        folder = _campaign_folder(store, settings, slug)
        if folder is None or Path(filename).suffix.lower() not in IMAGE_SUFFIXES:
            abort(404)
        resp = send_from_directory(folder, filename, max_age=86400)
        resp.cache_control.public = True  # the same image for everyone: let proxies keep it
        return resp

    @app.errorhandler(HTTPException)
    def refused(exc: HTTPException) -> Response:
        code = exc.code or 500
        # No delivery is known here (a bad link names none): the browser's language, else main.
        page = pages.best_match(request.accept_languages.values())
        resp = html(page.error(code), status=code)
        allow = exc.get_response().headers.get("Allow")
        if allow:  # 405 says which methods would do
            resp.headers["Allow"] = allow
        return resp

    hsts = settings.base_url.startswith("https://")

    @app.after_request
    def security_headers(resp: Response) -> Response:
        h = resp.headers
        h.setdefault("Content-Security-Policy", page_csp)
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"  # a token must never leak to a linked site
        h["X-Frame-Options"] = "DENY"
        if not resp.cache_control.public:
            h["Cache-Control"] = NO_STORE  # personal pages; every pixel hit must reach us
        h["X-Robots-Tag"] = "noindex, nofollow"
        if hsts:
            h["Strict-Transport-Security"] = "max-age=31536000"
        return resp

    webhooks.register(app, store, settings)
    return app


def _campaign_folder(store: Store, settings: Settings, slug: str) -> Path | None:
    """The folder a campaign was sent from (else ``campaigns/<slug>`` in the project)."""
    if not SLUG.match(slug):
        return None
    rows = store.query("SELECT directory FROM campaigns WHERE slug = ?", (slug,))
    candidates = [Path(rows[0]["directory"])] if rows and rows[0]["directory"] else []
    candidates.append(settings.root / "campaigns" / slug)
    return next((c for c in candidates if c.is_dir()), None)


def _is_one_click() -> bool:
    """Whether the POST body is RFC 8058's ``List-Unsubscribe=One-Click`` (form-encoded, as
    mail clients send it, or multipart, which §3.1 also allows)."""
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get("List-Unsubscribe") == "One-Click"
    return request.get_data(as_text=True).strip() == ONE_CLICK


def _redirectable(url: str) -> bool:
    """Only absolute http(s) URLs, with no control characters (no header splitting)."""
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _recipient(store: Store, found: events.Delivery) -> LedgerDelivery:
    """The delivery with its subscriber's profile, as the send loop saw it."""
    rows = store.query(
        "SELECT email, name, organisation, country, language, fields FROM subscribers "
        "WHERE email = ?",
        (found.email,),
    )
    profile = dict(rows[0]) if rows else {}
    return LedgerDelivery(found.id, found.email, found.name, found.language, found.is_proof,
                          attempts=0, profile=profile)


def _web_version(
    store: Store, settings: Settings, links: Links, found: events.Delivery
) -> str | None:
    """The delivery's message HTML, built by the send path itself, or ``None`` if no issue is
    stored. Open tracking is off: reading the web version is a ``webview``, not an open."""
    rows = store.query(
        "SELECT v.compiled, c.click_tracking FROM campaign_variants v "
        "JOIN campaigns c ON c.id = v.campaign_id WHERE v.campaign_id = ? "
        "ORDER BY v.language = ? DESC, v.language = ? DESC, v.language LIMIT 1",
        (found.campaign_id, found.language, settings.language),
    )
    if not rows:
        return None
    composer = Composer(
        _compiled(rows[0]["compiled"]), settings, links, found.campaign_id,
        click_tracking=bool(rows[0]["click_tracking"]), open_tracking=False,
    )
    return composer.for_delivery(_recipient(store, found)).html


def serve(app: Flask, host: str = "127.0.0.1", port: int = 8080, threads: int = 8) -> None:
    """Serve ``app`` with waitress until interrupted; a port that cannot be bound is an error.

    Mail clients and image proxies keep connections open: waitress's defaults (100
    connections, idle ones closed after 120 s) would let a burst of opens queue new clients
    behind idle ones, so the limit is higher and idle connections go sooner.
    """
    try:
        server = create_server(app, host=host, port=port, threads=threads,
                               connection_limit=CONNECTION_LIMIT, channel_timeout=30,
                               ident="cohesion-mail")
    except OSError as exc:
        raise CohesionMailError(
            f"{host}:{port}: cannot listen: {exc.strerror or exc}",
            hint="choose another --port, or stop the program that uses this one",
        ) from exc
    server.run()
