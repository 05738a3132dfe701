"""``cohesion-mail preview``: the issue as recipients will see it, rebuilt whenever a file is saved.

A small ``http.server`` on 127.0.0.1 serves the preview page (``data/preview/``) and:

* ``/email.html``, ``/email.txt`` — the issue personalised for one recipient (a sample, or a
  subscriber from the CSV with ``--as``). Local images are served from the campaign folder, and
  ``<base target="_blank">`` opens the email's links in a new tab instead of inside the frame.
* ``/api/state`` — subject, preheader, From/To, size, the preflight findings, or the build error
  with the file, line and an excerpt of the source.
* ``/events`` — Server-Sent Events: one ``state`` event per rebuild; the page refreshes itself.
* ``/?lang=xx`` — switch the language edition (issue 7): the page's language picker lists the
  main language and each ``campaign.<lang>.yaml``; the switch rebuilds and notifies like a save.

watchfiles watches the campaign folder, the template folders and the settings file in a thread;
a save rebuilds and notifies. A content or template error becomes the page's error state and
the server keeps running, so fixing the file recovers without a restart.
"""

from __future__ import annotations

import html
import json
import mimetypes
import re
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import watchfiles

from .check import run_checks
from .checks.source import display_file
from .config import Settings
from .errors import CohesionMailError, ConfigError, ContentError, SubscriberError
from .i18n import language_name, normalise_language
from .render.fields import RECIPIENT_FIELDS
from .render.pipeline import build_issue
from .render.sample import SAMPLE_RECIPIENT, sample_values
from .render.templates import template_dirs
from .store.csvio import SubscriberRow, read_csv
from .translations import Translations, main_language

_LOCATION = re.compile(r"(?P<file>[^\s:'\"(]+\.(?:ya?ml|j2|mjml|toml)):(?P<line>\d+)")
_ASSETS = {"preview.css": "text/css", "preview.js": "text/javascript"}
_EXCERPT = 3  # lines of context either side of an error
# The open pixel must not count opens (or reach the network) from a preview: a blank GIF.
BLANK_GIF = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


@dataclass(frozen=True)
class Recipient:
    """Whom the preview is personalised for."""

    email: str
    name: str
    values: Mapping[str, str] = field(default_factory=dict)
    language: str = ""


SAMPLE = Recipient(SAMPLE_RECIPIENT["email"], SAMPLE_RECIPIENT["name"])


def find_subscriber(path: Path, email: str) -> Recipient:
    """The subscriber ``email`` in the CSV at ``path``; ``SubscriberError`` if absent."""
    if not path.is_file():
        raise SubscriberError(
            f"{display_file(path)}: no such subscribers file",
            hint="pass --subscribers FILE, or set [send] subscribers in cohesion-mail.toml",
        )
    result = read_csv(path)
    wanted = email.strip().lower()
    row: SubscriberRow | None = next((r for r in result.rows if r.email.lower() == wanted), None)
    if row is None:
        raise SubscriberError(
            f"{display_file(path)}: no subscriber {email!r} ({len(result.rows)} rows read)",
            hint="check the address, or leave out --as to preview for a sample recipient",
        )
    return Recipient(row.email, row.name, row.merge_values(), row.language)


def preview_values(issue: Any, settings: Settings, recipient: Recipient) -> dict[str, str]:
    """Merge values as the send would fill them, with the sample's signed (invalid) links."""
    values = dict.fromkeys(RECIPIENT_FIELDS, "")
    values.update(sample_values(issue, settings))
    if replace(recipient, language="") != SAMPLE:  # the sample in any language stays the sample
        values.update({k: v for k, v in recipient.values.items() if v is not None})
        values["email"], values["name"] = recipient.email, recipient.name
        values["language"] = recipient.language or issue.language
    values["open_pixel_url"] = BLANK_GIF
    return values


# -- one build ----------------------------------------------------------------------------------


@dataclass
class PreviewState:
    """One build of the issue: either the personalised email or the error that stopped it."""

    version: int
    campaign: str
    built_at: str
    ok: bool
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    html_bytes: int = 0
    error: str = ""
    exception: CohesionMailError | None = None
    checks: dict[str, Any] | None = None
    language: str = ""  # the edition shown
    languages: list[tuple[str, str]] = field(default_factory=list)  # (code, own name)

    def error_details(self) -> dict[str, Any]:
        """The error message and, for each ``file:line`` in it, a few lines of that file."""
        locations: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        for m in _LOCATION.finditer(self.error):
            key = (m["file"], int(m["line"]))
            if key in seen or len(locations) >= 5:
                continue
            seen.add(key)
            excerpt = _excerpt(Path(m["file"]), key[1])
            if excerpt:
                locations.append({"file": key[0], "line": key[1], "excerpt": excerpt})
        return {"message": self.error, "locations": locations}


def _excerpt(path: Path, line: int) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    lo, hi = max(1, line - _EXCERPT), min(len(lines), line + _EXCERPT)
    return [{"number": n, "text": lines[n - 1], "here": n == line} for n in range(lo, hi + 1)]


def editions(campaign_dir: Path, settings: Settings) -> list[tuple[str, str]]:
    """``(code, name)`` of the main language, then each translation; ``[]`` if unreadable."""
    try:
        translations = Translations(campaign_dir)
        main = main_language(translations.main, settings)
    except CohesionMailError:
        return []
    codes = [main, *(code for code in translations.languages if code != main)]
    return [(code, language_name(code)) for code in codes]


def build_state(
    campaign_dir: Path,
    settings: Settings,
    recipient: Recipient = SAMPLE,
    version: int = 0,
    language: str | None = None,
) -> PreviewState:
    """Build, personalise and check the issue; errors become an error state, never raise.

    ``language`` picks the edition; by default the recipient's (``--as``), else the main one.
    """
    campaign_dir = Path(campaign_dir)
    slug = campaign_dir.resolve().name
    state = PreviewState(version, slug, datetime.now().strftime("%H:%M:%S"), ok=False)
    state.languages = editions(campaign_dir, settings)
    issue = None
    try:
        issue = build_issue(campaign_dir, settings, language=language or recipient.language)
        state.language = issue.language
        values = preview_values(issue, settings, recipient)
        page, text = issue.personalise(values)
        state.subject = issue.personalise_subject(values)
        state.preheader = issue.personalise_preheader(values)
        state.html_bytes = len(page.encode("utf-8"))
        state.html = _for_preview(page, settings, slug)
        state.text = text
        state.ok = True
    except CohesionMailError as exc:
        state.error, state.exception = str(exc), exc
    except Exception:  # a bug must not take the preview down; show it like any error
        state.error = "cohesion-mail failed (this is a bug):\n" + traceback.format_exc(limit=8)
    try:
        state.checks = run_checks(campaign_dir, settings, issue=issue).to_dict()
    except Exception:  # the preview is still useful without its checks panel
        state.checks = None
    return state


def _for_preview(page: str, settings: Settings, slug: str) -> str:
    """Local images from this server; links open in a new tab, not inside the frame."""
    published = f"{settings.base_url.rstrip('/')}/campaigns/{quote(slug)}/"
    page = page.replace(published, f"/campaigns/{quote(slug)}/")
    return re.sub(r"(<head\b[^>]*>)", r'\1<base target="_blank">', page, count=1)


def error_page(state: PreviewState) -> str:
    """``/email.html`` while the issue does not build: the message and where to look."""
    details = state.error_details()
    blocks = []
    for loc in details["locations"]:
        rows = "".join(
            f'<div style="{"background:#ffebe9;" if ln["here"] else ""}padding:0 8px">'
            f'<span style="color:#888;display:inline-block;width:3em">{ln["number"]}</span>'
            f"{html.escape(ln['text'])}</div>"
            for ln in loc["excerpt"]
        )
        blocks.append(
            f"<p><b>{html.escape(loc['file'])}, line {loc['line']}</b></p>"
            f'<pre style="border:1px solid #ddd;padding:6px 0;white-space:pre">{rows}</pre>'
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Build error</title></head>'
        '<body style="font:15px/1.5 system-ui,sans-serif;margin:24px;color:#1f2328">'
        '<h1 style="font-size:20px;color:#cf222e">This issue does not build</h1>'
        f'<pre style="white-space:pre-wrap">{html.escape(state.error)}</pre>{"".join(blocks)}'
        "<p>Save a fix: the preview updates by itself.</p></body></html>"
    )


# -- the server ---------------------------------------------------------------------------------


class PreviewServer:
    """The preview web server and its file watcher. Use as a context manager or call close()."""

    def __init__(
        self,
        campaign_dir: Path,
        settings: Settings,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        recipient: Recipient = SAMPLE,
        watch: bool = True,
        reload_settings: Callable[[], Settings] | None = None,
        language: str | None = None,
    ) -> None:
        self.campaign_dir = Path(campaign_dir)
        if not self.campaign_dir.is_dir():
            raise ContentError(
                f"{display_file(self.campaign_dir)}: no such campaign folder",
                hint="pass the folder that holds campaign.yaml",
            )
        self.settings = settings
        self.recipient = recipient
        self.language = normalise_language(language)
        self.slug = self.campaign_dir.resolve().name
        self._reload_settings = reload_settings
        self._cond = threading.Condition()
        self._build_lock = threading.Lock()
        self._closing = threading.Event()
        self._watching = threading.Event()
        self._state = build_state(self.campaign_dir, settings, recipient, 0, self.language)
        try:
            self._httpd = _HTTPServer((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                hint="pick another port with --port, or --port 0 for any free port",
            ) from exc
        self._httpd.preview = self
        self._threads = [
            threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            )
        ]
        if watch:
            self._threads.append(threading.Thread(target=self._watch, daemon=True))
        for t in self._threads:
            t.start()
        if watch:
            self._watching.wait(timeout=10)  # a save right after start must not be missed

    @property
    def url(self) -> str:
        host, port = str(self._httpd.server_address[0]), int(self._httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"

    @property
    def state(self) -> PreviewState:
        with self._cond:
            return self._state

    def rebuild(self) -> PreviewState:
        """Build again now and tell every open page."""
        with self._build_lock:
            state = build_state(
                self.campaign_dir, self.settings, self.recipient, language=self.language
            )
            with self._cond:
                state.version = self._state.version + 1
                self._state = state
                self._cond.notify_all()
        return state

    def set_language(self, code: str) -> PreviewState:
        """Show the edition for ``code`` (``es``; unknown → main) and tell every open page."""
        self.language = normalise_language(code)
        return self.rebuild()

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until the state's version differs from ``version`` (or timeout/close)."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._state.version != version or self._closing.is_set(), timeout
            )
            return self._state.version

    @property
    def closing(self) -> bool:
        return self._closing.is_set()

    def watched_paths(self) -> list[Path]:
        paths = [self.campaign_dir, *template_dirs(self.settings.root)]
        if self.settings.source is not None and Path(self.settings.source).is_file():
            paths.append(Path(self.settings.source))
        return paths

    def _watch(self) -> None:
        config = Path(self.settings.source).resolve() if self.settings.source else None
        watcher = watchfiles.watch(
            *self.watched_paths(),
            watch_filter=_Filter(),
            debounce=150,
            step=50,
            stop_event=self._closing,
            rust_timeout=300,
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        for changes in watcher:
            self._watching.set()  # the first (empty) yield: the watches are in place
            if self._closing.is_set():
                return
            if not changes:
                continue
            if config and self._reload_settings and any(Path(p) == config for _, p in changes):
                try:
                    self.settings = self._reload_settings()
                except CohesionMailError as exc:
                    with self._cond:
                        self._state = replace(
                            self._state, version=self._state.version + 1, ok=False,
                            error=str(exc), exception=exc,
                        )  # fmt: skip
                        self._cond.notify_all()
                    continue
            self.rebuild()

    def wait(self) -> None:
        """Block until ``close()`` (Ctrl-C raises ``KeyboardInterrupt`` here)."""
        while not self._closing.wait(0.5):
            pass

    def close(self) -> None:
        """Stop watching and serving; open event streams end."""
        if self._closing.is_set() and not self._threads:
            return
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Filter(watchfiles.DefaultFilter):
    """Ignore the build output folder and editors' temporary files."""

    ignore_dirs = (*watchfiles.DefaultFilter.ignore_dirs, "build")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    preview: PreviewServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "cohesion-mail-preview"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the terminal is for the URL and errors, not one line per request."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        preview = self.server.preview
        url = urlsplit(self.path)
        path = unquote(url.path)
        try:
            if path in ("/", "/index.html"):
                wanted = parse_qs(url.query).get("lang")
                if wanted and normalise_language(wanted[0]) != preview.language:
                    preview.set_language(wanted[0])
                self._asset("index.html", "text/html")
            elif path.startswith("/assets/") and path[8:] in _ASSETS:
                self._asset(path[8:], _ASSETS[path[8:]])
            elif path == "/email.html":
                state = preview.state
                if state.ok:
                    self._send(HTTPStatus.OK, "text/html; charset=utf-8", state.html)
                else:
                    self._send(HTTPStatus.INTERNAL_SERVER_ERROR, "text/html; charset=utf-8",
                               error_page(state))  # fmt: skip
            elif path == "/email.txt":
                state = preview.state
                body = state.text if state.ok else state.error
                status = HTTPStatus.OK if state.ok else HTTPStatus.INTERNAL_SERVER_ERROR
                self._send(status, "text/plain; charset=utf-8", body)
            elif path == "/api/state":
                self._send(HTTPStatus.OK, "application/json", json.dumps(self._api(preview)))
            elif path == "/events":
                self._events(preview)
            elif path.startswith(f"/campaigns/{preview.slug}/"):
                self._file(preview.campaign_dir, path[len(f"/campaigns/{preview.slug}/") :])
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", "not found")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _api(self, preview: PreviewServer) -> dict[str, Any]:
        s = preview.state
        sender = preview.settings.sender
        return {
            "version": s.version,
            "campaign": display_file(preview.campaign_dir),
            "built_at": s.built_at,
            "ok": s.ok,
            "subject": s.subject,
            "preheader": s.preheader,
            "from": {"name": sender.from_name, "address": sender.from_address},
            "reply_to": sender.reply_to,
            "to": {"name": preview.recipient.name, "email": preview.recipient.email},
            "html_bytes": s.html_bytes,
            "text": s.text,
            "error": s.error_details() if not s.ok else None,
            "checks": s.checks,
            "language": s.language,
            "languages": [{"code": c, "name": n} for c, n in s.languages],
        }

    def _send(self, status: HTTPStatus, ctype: str, body: str | bytes) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def _asset(self, name: str, ctype: str) -> None:
        data = resources.files("cohesion_mail").joinpath(f"data/preview/{name}").read_bytes()
        self._send(HTTPStatus.OK, f"{ctype}; charset=utf-8", data)

    def _file(self, folder: Path, rel: str) -> None:
        root = folder.resolve()
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", f"no file {rel}")
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, ctype, target.read_bytes())

    def _events(self, preview: PreviewServer) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b"retry: 1000\n\n")
        version = -1
        while not preview.closing:
            now = preview.wait_for_change(version, timeout=15)
            if preview.closing:
                break
            if now != version:
                version = now
                data = json.dumps({"version": version, "ok": preview.state.ok})
                self.wfile.write(f"event: state\ndata: {data}\n\n".encode())
            else:
                self.wfile.write(b": still here\n\n")
            self.wfile.flush()
