"""Signed, opaque per-recipient tokens for unsubscribe, web-version, open-pixel and click URLs.

A token names a campaign and a delivery row (never an address) and carries an HMAC-SHA256 tag
over its purpose, payload and, for clicks, the target URL. Anyone can read the two numbers;
nobody without the secret can make a token for another delivery, another purpose, or another
link target, so the click endpoint can never become an open redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..config import ENV_SECRET
from ..errors import TokenError

PURPOSES = {"unsubscribe": b"u", "open": b"o", "web": b"w", "click": b"c"}
_TAG_BYTES = 12  # 96-bit tag: forging one is 2**96 guesses
_PAYLOAD = struct.Struct(">QQ")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed token") from exc


def load_secret(state_path: Path) -> tuple[bytes, str | None]:
    """The signing secret and, when one was just generated, a notice for the user.

    ``COHESION_MAIL_SECRET`` wins. Otherwise a random secret is generated once into
    ``<state dir>/secret`` (mode 0600) so links stay valid across runs; the notice says so.
    """
    env = os.environ.get(ENV_SECRET)
    if env:
        return env.encode("utf-8"), None
    path = state_path.parent / "secret"
    if path.is_file():
        return path.read_bytes().strip(), None
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32).encode("ascii")
    tmp = path.with_name(f".secret.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        # link() fails if another process made the secret first: then theirs wins, for everyone.
        os.link(tmp, path)
    except FileExistsError:
        return path.read_bytes().strip(), None
    finally:
        tmp.unlink()
    return value, (
        f"generated a link-signing secret in {path}; keep it (links in sent mail depend on it) "
        f"or set {ENV_SECRET} on every machine that sends or serves"
    )


@dataclass(frozen=True)
class TokenData:
    campaign_id: int
    delivery_id: int


class Signer:
    """Make and check tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise TokenError("the signing secret is empty", hint=f"set {ENV_SECRET}")
        self._secret = secret

    def _tag(self, purpose: bytes, payload: bytes, extra: str) -> bytes:
        mac = hmac.new(self._secret, purpose + payload + extra.encode("utf-8"), hashlib.sha256)
        return mac.digest()[:_TAG_BYTES]

    def token(self, purpose: str, campaign_id: int, delivery_id: int, extra: str = "") -> str:
        payload = _PAYLOAD.pack(campaign_id, delivery_id)
        return _b64(payload + self._tag(PURPOSES[purpose], payload, extra))

    def verify(self, purpose: str, token: str, extra: str = "") -> TokenData:
        """The ids in ``token``; ``TokenError`` if forged, truncated or for another purpose/URL."""
        raw = _unb64(token)
        # Base64's last character carries spare bits: insist on the one canonical spelling.
        if len(raw) != _PAYLOAD.size + _TAG_BYTES or _b64(raw) != token:
            raise TokenError("malformed token")
        payload, tag = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
        if not hmac.compare_digest(tag, self._tag(PURPOSES[purpose], payload, extra)):
            raise TokenError("token signature does not match")
        campaign_id, delivery_id = _PAYLOAD.unpack(payload)
        return TokenData(campaign_id, delivery_id)


class Links:
    """The per-recipient URLs the tracking service (``cohesion-mail serve``) answers."""

    def __init__(self, base_url: str, signer: Signer) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def unsubscribe(self, campaign_id: int, delivery_id: int) -> str:
        return f"{self.base_url}/u/{self.signer.token('unsubscribe', campaign_id, delivery_id)}"

    def web_version(self, campaign_id: int, delivery_id: int) -> str:
        return f"{self.base_url}/w/{self.signer.token('web', campaign_id, delivery_id)}"

    def open_pixel(self, campaign_id: int, delivery_id: int) -> str:
        return f"{self.base_url}/o/{self.signer.token('open', campaign_id, delivery_id)}.gif"

    def click(self, campaign_id: int, delivery_id: int, url: str) -> str:
        token = self.signer.token("click", campaign_id, delivery_id, url)
        return f"{self.base_url}/c/{token}?u={quote(url, safe='')}"
