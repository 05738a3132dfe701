"""Settings: option > environment > cohesion-mail.toml > default, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohesion_mail.config import load_settings
from cohesion_mail.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_project_file_loads() -> None:
    settings = load_settings(REPO / "cohesion-mail.toml")
    assert settings.sender.from_address.endswith("@cohes3ion.eu")
    assert settings.base_url.startswith("https://")
    assert settings.root == REPO


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHESION_MAIL_CONFIG", raising=False)
    monkeypatch.delenv("COHESION_MAIL_TRANSPORT", raising=False)
    monkeypatch.delenv("COHESION_MAIL_STATE", raising=False)
    settings = load_settings(start=tmp_path)
    assert settings.transport_dsn() == "outbox://"
    assert settings.state_path() == tmp_path.resolve() / ".cohesion-mail" / "state.db"


def test_order_option_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cohesion-mail.toml"
    cfg.write_text('[send]\ntransport = "smtp://file:25"\n')
    monkeypatch.setenv("COHESION_MAIL_TRANSPORT", "smtp://env:25")
    settings = load_settings(cfg)
    assert settings.transport_dsn("smtp://option:25") == "smtp://option:25"
    assert settings.transport_dsn() == "smtp://env:25"
    monkeypatch.delenv("COHESION_MAIL_TRANSPORT")
    assert settings.transport_dsn() == "smtp://file:25"


def test_base_url_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHESION_MAIL_BASE_URL", "http://127.0.0.1:8080/")
    assert load_settings(start=tmp_path).base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[sender]\nfrom_adress = 'x@y.org'\n", "sender.from_adress"),
        ("[send]\nconnections = 'four'\n", "send.connections"),
        ("[links]\nbase_url = 'news.example.org'\n", "links.base_url"),
        ("[sender\n", "not valid TOML"),
        ("colour = 'red'\n", "'colour'"),
    ],
)
def test_bad_file_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "cohesion-mail.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert needle in str(err.value) and str(cfg) in str(err.value)
