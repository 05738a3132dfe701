"""Signed tokens: opaque ids, refused when forged, truncated, re-spelt or re-purposed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cohesion_mail.errors import TokenError
from cohesion_mail.tracking.tokens import Links, Signer, load_secret


@pytest.fixture
def signer() -> Signer:
    return Signer(b"test-secret")


def test_round_trip(signer: Signer) -> None:
    token = signer.token("unsubscribe", 7, 1234)
    data = signer.verify("unsubscribe", token)
    assert (data.campaign_id, data.delivery_id) == (7, 1234)
    assert "@" not in token and "1234" not in token


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],  # truncated
        lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:],  # one character changed
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "Q"),  # spare bits in the last character
        lambda t: t + "A",  # extended
        lambda t: "!!" + t,  # not base64
    ],
)
def test_mangled_tokens_are_refused(signer: Signer, mangle) -> None:  # type: ignore[no-untyped-def]
    token = signer.token("open", 1, 2)
    with pytest.raises(TokenError):
        signer.verify("open", mangle(token))


def test_purpose_and_secret_are_bound(signer: Signer) -> None:
    token = signer.token("open", 1, 2)
    with pytest.raises(TokenError):
        signer.verify("unsubscribe", token)
    with pytest.raises(TokenError):
        Signer(b"other-secret").verify("open", token)


def test_click_token_binds_the_target(signer: Signer) -> None:
    url = Links("https://news.example.org/", signer).click(3, 4, "https://a.example/x?y=1&z")
    assert url.startswith("https://news.example.org/c/")
    token = url.split("/c/")[1].split("?")[0]
    assert signer.verify("click", token, "https://a.example/x?y=1&z").delivery_id == 4
    with pytest.raises(TokenError):
        signer.verify("click", token, "https://evil.example/")


def test_secret_generated_once_with_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COHESION_MAIL_SECRET", raising=False)
    first, notice = load_secret(tmp_path / "state.db")
    assert notice and "secret" in notice
    again, notice2 = load_secret(tmp_path / "state.db")
    assert again == first and notice2 is None
    assert oct(os.stat(tmp_path / "secret").st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_secret_from_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHESION_MAIL_SECRET", "from-env")
    assert load_secret(tmp_path / "state.db") == (b"from-env", None)
    assert not (tmp_path / "secret").exists()
