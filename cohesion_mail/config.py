"""Project settings, in one order: option > environment variable > cohesion-mail.toml > default.

The TOML file holds no secrets: SMTP passwords and API keys belong in ``COHESION_MAIL_TRANSPORT``,
the signing secret in ``COHESION_MAIL_SECRET``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "cohesion-mail.toml"
ENV_CONFIG = "COHESION_MAIL_CONFIG"
ENV_STATE = "COHESION_MAIL_STATE"
ENV_TRANSPORT = "COHESION_MAIL_TRANSPORT"
ENV_SECRET = "COHESION_MAIL_SECRET"
ENV_BASE_URL = "COHESION_MAIL_BASE_URL"
DEFAULT_STATE = Path(".cohesion-mail") / "state.db"


@dataclass(frozen=True)
class Sender:
    from_name: str = "Newsletter"
    from_address: str = "newsletter@example.org"
    reply_to: str = ""


@dataclass(frozen=True)
class ListInfo:
    name: str = "Newsletter"
    id: str = "newsletter.example.org"
    unsubscribe_mailto: str = ""
    postal_address: str = ""


@dataclass(frozen=True)
class Theme:
    primary: str = "#1d4f91"
    accent: str = "#e5007d"
    text: str = "#222222"
    muted: str = "#5f6368"
    background: str = "#f2f4f7"
    surface: str = "#ffffff"
    logo_url: str = ""
    logo_alt: str = ""
    font_family: str = "Helvetica, Arial, sans-serif"
    heading_font_family: str = "Helvetica, Arial, sans-serif"

    def merged(self, overrides: dict[str, Any]) -> Theme:
        """A copy with a campaign's ``theme:`` values applied (unknown keys fail upstream)."""
        return replace(self, **overrides)


@dataclass(frozen=True)
class SendSettings:
    subscribers: str = "subscribers.csv"
    transport: str = "outbox://"
    connections: int = 1
    rate: float = 0.0
    click_tracking: bool = True
    open_tracking: bool = True


@dataclass(frozen=True)
class Settings:
    """Everything cohesion-mail.toml can say, with defaults that run with no file at all."""

    root: Path = field(default_factory=Path.cwd)
    sender: Sender = field(default_factory=Sender)
    list: ListInfo = field(default_factory=ListInfo)
    base_url: str = "http://127.0.0.1:8080"
    theme: Theme = field(default_factory=Theme)
    send: SendSettings = field(default_factory=SendSettings)
    language: str = "en"
    source: Path | None = None

    @property
    def sender_domain(self) -> str:
        return self.sender.from_address.rpartition("@")[2] or "localhost"

    def state_path(self, option: str | Path | None = None) -> Path:
        """Option > ``COHESION_MAIL_STATE`` > ``.cohesion-mail/state.db`` under the project root."""
        if option:
            return Path(option)
        if os.environ.get(ENV_STATE):
            return Path(os.environ[ENV_STATE])
        return self.root / DEFAULT_STATE

    def transport_dsn(self, option: str | None = None) -> str:
        """Option > ``COHESION_MAIL_TRANSPORT`` > ``[send] transport`` > ``outbox://``."""
        return option or os.environ.get(ENV_TRANSPORT) or self.send.transport


_SECTIONS: dict[str, type] = {
    "sender": Sender,
    "list": ListInfo,
    "theme": Theme,
    "send": SendSettings,
}


def _section(path: Path, name: str, cls: type, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(
                f"{path}: unknown key {name}.{key}",
                hint=f"known keys in [{name}]: {', '.join(sorted(known))}",
            )
        default = getattr(cls(), key)
        expected = type(default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"{path}: {name}.{key} must be a {expected.__name__}, got {value!r}"
            )
        kwargs[key] = value
    return cls(**kwargs)


def find_config(start: Path | None = None) -> Path | None:
    """``COHESION_MAIL_CONFIG``, else cohesion-mail.toml in ``start`` (cwd) or any parent."""
    env = os.environ.get(ENV_CONFIG)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"{ENV_CONFIG}={env}: no such file")
        return p
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def load_settings(path: Path | None = None, *, start: Path | None = None) -> Settings:
    """Read settings from ``path`` (or the file ``find_config`` finds); defaults if there is none.

    ``COHESION_MAIL_BASE_URL`` overrides ``links.base_url`` (e.g. a local ``serve`` while testing).
    """
    settings = _load_file(path or find_config(start), start)
    base = os.environ.get(ENV_BASE_URL)
    if base:
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"{ENV_BASE_URL} must be an http(s) URL, got {base!r}")
        settings = replace(settings, base_url=base.rstrip("/"))
    return settings


def _load_file(path: Path | None, start: Path | None) -> Settings:
    if path is None:
        return Settings(root=(start or Path.cwd()).resolve())
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    kwargs: dict[str, Any] = {"root": path.resolve().parent, "source": path}
    for key, value in data.items():
        if key in _SECTIONS:
            kwargs[key] = _section(path, key, _SECTIONS[key], value)
        elif key == "links":
            if not isinstance(value, dict) or set(value) - {"base_url"}:
                raise ConfigError(f"{path}: [links] takes only base_url")
            base = value.get("base_url", "")
            if not isinstance(base, str) or not base.startswith(("http://", "https://")):
                raise ConfigError(
                    f"{path}: links.base_url must be an http(s) URL, got {base!r}",
                    hint='e.g. base_url = "https://news.example.org"',
                )
            kwargs["base_url"] = base.rstrip("/")
        elif key == "language":
            if not isinstance(value, str):
                raise ConfigError(f"{path}: language must be a string such as \"en\"")
            kwargs["language"] = value.lower()
        else:
            raise ConfigError(
                f"{path}: unknown table or key {key!r}",
                hint="known: sender, list, links, theme, send, language",
            )
    return Settings(**kwargs)
