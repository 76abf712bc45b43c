"""Bearer tokens: issuer, lifetime and clock leeway checked; `onestop run` and `onestop token`
keep the operator's secrets to themselves."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from api.auth import DEFAULT_MAX_TTL_SECONDS, actor_from_token, make_token
from api.problems import HttpProblem
from onestop.cli import main
from onestop.runner import banner
from onestop.settings import Settings, SettingsError

SECRET = "a-jwt-secret-for-the-token-tests-0123456789"


def _token(**changes: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "3100600445635", "role": "citizen", "iss": "onestop", "iat": now, "exp": now + 600}
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


def _refused(token: str, max_ttl: int = DEFAULT_MAX_TTL_SECONDS) -> HttpProblem:
    with pytest.raises(HttpProblem) as refused:
        actor_from_token(SECRET, token, max_ttl)
    assert refused.value.status == 401
    assert refused.value.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    return refused.value


def test_a_development_token_carries_the_onestop_issuer_and_is_accepted() -> None:
    token = make_token(SECRET, sub="officer.saensuk", role="officer", org="MUN-SAENSUK")
    assert jwt.decode(token, SECRET, algorithms=["HS256"], issuer="onestop")["iss"] == "onestop"
    assert actor_from_token(SECRET, token).org == "MUN-SAENSUK"


def test_a_token_expired_beyond_the_30_second_leeway_is_refused_but_one_within_it_is_not() -> None:
    now = int(time.time())
    assert actor_from_token(SECRET, _token(iat=now - 600, exp=now - 20)).pid == "3100600445635"
    _refused(_token(iat=now - 600, exp=now - 31))


def test_a_token_issued_for_later_than_the_leeway_allows_is_refused() -> None:
    now = int(time.time())
    _refused(_token(iat=now + 120, exp=now + 600))


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    now = int(time.time())
    problem = _refused(_token(iat=now, exp=now + DEFAULT_MAX_TTL_SECONDS + 1))
    assert "at most 43200" in problem.detail
    _refused(_token(iat=now, exp=now + 3601), max_ttl=3600)
    assert actor_from_token(SECRET, _token(iat=now, exp=now + 3600), 3600).role == "citizen"


@pytest.mark.parametrize("issuer", [None, "someone-else", ""])
def test_a_token_without_the_onestop_issuer_is_refused(issuer: str | None) -> None:
    _refused(_token(iss=issuer))


def test_a_token_without_iat_is_refused() -> None:
    _refused(_token(iat=None))


def test_an_unsigned_alg_none_token_is_refused() -> None:
    now = int(time.time())

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    claims = f'{{"sub":"x","role":"admin","iss":"onestop","iat":{now},"exp":{now + 600}}}'.encode()
    header = part(b'{"alg":"none","typ":"JWT"}')
    _refused(f"{header}.{part(claims)}.")
    _refused(jwt.encode({"sub": "x", "role": "admin", "iss": "onestop", "iat": now, "exp": now + 600}, None, algorithm="none"))


def test_the_maximum_lifetime_is_a_setting_of_12_hours_by_default() -> None:
    assert Settings.from_env({}).jwt_max_ttl_seconds == 43_200
    assert Settings.from_env({"ONESTOP_JWT_MAX_TTL": "3600"}).jwt_max_ttl_seconds == 3600
    with pytest.raises(SettingsError):
        Settings.from_env({"ONESTOP_JWT_MAX_TTL": "0"})


def test_onestop_token_refuses_a_lifetime_longer_than_the_maximum(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ONESTOP_JWT_SECRET", SECRET)
    monkeypatch.setenv("ONESTOP_DEV_TOKENS", "1")
    monkeypatch.setenv("ONESTOP_JWT_MAX_TTL", "3600")
    with pytest.raises(SystemExit) as refused:
        main(["token", "--role", "admin", "--sub", "ops", "--ttl", "3601"])
    assert "ONESTOP_JWT_MAX_TTL" in str(refused.value.code)
    assert capsys.readouterr().out == ""
    main(["token", "--role", "admin", "--sub", "ops"])
    claims = jwt.decode(capsys.readouterr().out.strip(), SECRET, algorithms=["HS256"], issuer="onestop")
    assert claims["exp"] - claims["iat"] == 3600


def test_the_run_banner_shows_no_supplied_secret_and_no_tokens_made_with_one(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "ONESTOP_DATABASE_URL": "postgresql://onestop:db-password-5f1c@127.0.0.1:5432/onestop",
        "ONESTOP_JWT_SECRET": SECRET, "ONESTOP_BANK_CALLBACK_SECRET": "bank-secret-77aa", "ONESTOP_DATA_DIR": str(tmp_path),
    })
    text = banner(settings, "http://127.0.0.1:8080", generated_secret=False)
    for secret in (SECRET, "bank-secret-77aa", "db-password-5f1c"):
        assert secret not in text
    assert "eyJ" not in text and "onestop token" in text


def test_the_run_banner_prints_development_tokens_but_not_the_secret_it_generated(tmp_path: Path) -> None:
    settings = Settings.from_env({"ONESTOP_JWT_SECRET": "generated-secret-0f9e8d7c6b5a", "ONESTOP_DATA_DIR": str(tmp_path)})
    text = banner(settings, "http://127.0.0.1:8080", generated_secret=True)
    assert "generated-secret-0f9e8d7c6b5a" not in text
    tokens = [word for word in text.split() if word.startswith("eyJ")]
    assert len(tokens) == 3
    assert {actor_from_token(settings.jwt_secret, t).role for t in tokens} == {"admin", "officer", "citizen"}
