"""Transport DSNs: ``scheme://user:password@host:port/path?param=value``.

One URL says where mail goes and how to log in, so it fits one option (``--transport``) or one
environment variable (``COHESION_MAIL_TRANSPORT``, where secrets belong). A user name or password
with ``@ : / ? #`` in it must be percent-encoded (``p%40ss`` for ``p@ss``). Every error names the
DSN with its secrets redacted, so a typo never prints a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigError

# Schemes whose user part is a login name worth showing; for the others (API providers:
# ``postmark://TOKEN@default``) the whole user part is a secret.
_USER_IS_NAME = frozenset({"smtp", "smtps"})
_SECRET_PARAMS = re.compile(r"(?i)^(.*(key|token|secret|pass|pwd|auth).*)$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/?#]*@|.*@)", re.DOTALL)
PERCENT_HINT = "percent-encode @ : / ? # in the user name and password (e.g. p%40ss for p@ss)"


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN. ``user`` and ``password`` are percent-decoded; ``params`` is the query."""

    scheme: str
    user: str = ""
    password: str = field(default="", repr=False)
    host: str = ""
    port: int | None = None
    path: str = ""
    params: dict[str, str] = field(default_factory=dict)
    raw: str = field(default="", repr=False, compare=False)

    @property
    def redacted(self) -> str:
        return redact(self.raw)

    def error(self, problem: str, *, hint: str | None = None) -> ConfigError:
        """A ``ConfigError`` about this DSN (redacted), for transports validating their params."""
        return ConfigError(f"transport {self.redacted}: {problem}", hint=hint)

    def check_params(self, known: set[str] | frozenset[str]) -> None:
        """Refuse parameters the transport does not understand (a typo must not be ignored)."""
        unknown = sorted(set(self.params) - set(known))
        if unknown:
            raise self.error(
                f"unknown parameter(s) {', '.join(unknown)}",
                hint=f"known for {self.scheme}://: {', '.join(sorted(known)) or 'none'}",
            )

    def flag(self, name: str, default: bool) -> bool:
        """A boolean parameter: true/false, yes/no, on/off, 1/0."""
        value = self.params.get(name)
        if value is None or value == "":
            return default
        low = value.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise self.error(f"{name}={value!r} is not true or false")

    def number(self, name: str, default: float) -> float:
        """A positive number parameter (``timeout=10``)."""
        value = self.params.get(name)
        if value is None or value == "":
            return default
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if number <= 0:
            raise self.error(f"{name}={value!r} must be a positive number")
        return number


def redact(dsn: str) -> str:
    """``dsn`` without secrets: ``smtp://ann:***@host``, ``postmark://***@default``.

    Works on malformed DSNs too (it runs before parsing can fail), erring on hiding too much.
    """
    dsn = dsn.strip()
    m = _USERINFO.match(dsn)
    if m:
        head, info = m.group("head"), m.group("info")[:-1]
        scheme = head[:-3].lower()
        user, colon, _ = info.partition(":")
        shown = (f"{user}:***" if colon else user) if scheme in _USER_IS_NAME else "***"
        dsn = f"{head}{shown}@{dsn[m.end() :]}"
    base, q, query = dsn.partition("?")
    if not q:
        return dsn
    pairs = []
    for item in query.split("&"):
        key, eq, _ = item.partition("=")
        pairs.append(f"{key}=***" if eq and _SECRET_PARAMS.match(unquote(key)) else item)
    return f"{base}?{'&'.join(pairs)}"


def parse_dsn(dsn: str) -> Dsn:
    """Split ``dsn`` into its parts; ``ConfigError`` naming the (redacted) DSN if malformed."""
    text = dsn.strip()
    shown = redact(text)
    if "://" not in text:
        raise ConfigError(
            f"transport {shown!r} is not a DSN",
            hint="write scheme://…, e.g. outbox:// or smtp://user@smtp.example.org:587",
        )
    scheme = text.split("://", 1)[0]
    if not _SCHEME.match(scheme):
        raise ConfigError(f"transport {shown!r}: {scheme!r} is not a valid scheme")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(
            f"transport {shown}: the host or port cannot be read ({_no_secret(exc, text)})",
            hint=PERCENT_HINT,
        ) from None
    if parts.fragment:
        raise ConfigError(f"transport {shown}: unexpected '#' in the DSN", hint=PERCENT_HINT)
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in params:
            raise ConfigError(f"transport {shown}: parameter {key!r} is given twice")
        params[key] = value
    host = parts.hostname or ""
    if "[" in parts.netloc and ":" in host:  # IPv6 literal keeps its brackets for display
        host = f"[{host}]"
    return Dsn(
        scheme=parts.scheme.lower(),
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        host=host,
        port=port,
        path=parts.path,
        params=params,
        raw=text,
    )


def _no_secret(exc: Exception, text: str) -> str:
    """An exception's words with anything from the DSN's user part cut out."""
    words = str(exc)
    m = _USERINFO.match(text)
    if m:
        for secret in m.group("info")[:-1].split(":"):
            if secret:
                words = words.replace(secret, "***")
    return words
