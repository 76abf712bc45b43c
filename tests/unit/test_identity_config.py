"""The trusted-issuers file, the identity settings, claim mapping and `onestop token` without
development tokens: no I/O beyond a temporary file."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.access import check_assurance
from application.errors import Forbidden, InvalidToken
from domain.actors import Actor
from infrastructure.errors import IssuersFileError
from infrastructure.identity.issuers import load_issuers, parse_issuers
from onestop.cli import main
from onestop.settings import Settings, SettingsError

THAID = {"name": "thaid", "url": "https://imauth.bora.dopa.go.th", "audience": "onestop", "kind": "citizen"}
STAFF = {"name": "staff", "url": "https://sso.example.go.th/realms/lao", "audience": "onestop-api", "kind": "staff",
         "role_claim": "roles", "org_claim": "lao_code", "role_map": {"oss-officer": "officer"}}


def test_an_issuer_gets_the_defaults_the_issue_names() -> None:
    thaid = parse_issuers({"issuer": [THAID]})[0]
    assert thaid.national_id_claim == "pid" and thaid.ial_claim == "ial"
    assert thaid.algorithms == ("RS256", "ES256", "EdDSA")
    assert thaid.discovery_url == "https://imauth.bora.dopa.go.th/.well-known/openid-configuration"


@pytest.mark.parametrize("change, named", [
    ({"algorithms": ["HS256"]}, "HS256"), ({"algorithms": ["none"]}, "none"), ({"kind": "robot"}, "kind"),
    ({"audience": ""}, "audience"), ({"url": "ftp://x"}, "url"), ({"name": "ThaiD"}, "name"), ({"colour": "blue"}, "colour"),
])
def test_a_bad_issuer_stops_startup_naming_what_is_wrong(change: dict, named: str) -> None:
    with pytest.raises(IssuersFileError, match=named):
        parse_issuers({"issuer": [{**THAID, **change}]})


def test_a_staff_issuer_needs_a_role_claim_and_two_issuers_may_not_share_a_url() -> None:
    with pytest.raises(IssuersFileError, match="role_claim"):
        parse_issuers({"issuer": [{k: v for k, v in STAFF.items() if k != "role_claim"}]})
    with pytest.raises(IssuersFileError, match="url"):
        parse_issuers({"issuer": [THAID, {**THAID, "name": "thaid-2"}]})


def test_a_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "issuers.toml"
    path.write_text("[[issuer]\nname = ", encoding="utf-8")
    with pytest.raises(IssuersFileError, match="not TOML"):
        load_issuers(path)


def test_staff_claims_map_to_a_role_and_the_organisation_only_from_the_org_claim() -> None:
    staff = parse_issuers({"issuer": [STAFF]})[0]
    actor = staff.actor({"sub": "u1", "roles": ["viewer", "oss-officer"], "lao_code": "MUN-SAENSUK", "org": "PAO-CBI"})
    assert (actor.role, actor.org, actor.issuer) == ("officer", "MUN-SAENSUK", STAFF["url"])
    with pytest.raises(InvalidToken, match="lao_code"):
        staff.actor({"sub": "u1", "roles": "oss-officer", "org": "MUN-SAENSUK"})
    with pytest.raises(InvalidToken, match="no OneStop role"):
        staff.actor({"sub": "u1", "roles": ["viewer"], "lao_code": "MUN-SAENSUK"})


def test_a_citizens_token_needs_a_valid_national_id_and_an_assurance_level() -> None:
    thaid = parse_issuers({"issuer": [THAID]})[0]
    assert thaid.actor({"sub": "s", "pid": "3100600445635", "ial": 2.3}).ial == "2.3"
    with pytest.raises(InvalidToken, match="pid"):
        thaid.actor({"sub": "s", "pid": "3100600445636", "ial": "2.3"})
    with pytest.raises(InvalidToken, match="ial"):
        thaid.actor({"sub": "s", "pid": "3100600445635"})


def test_assurance_is_compared_as_numbers_and_only_for_citizens() -> None:
    check_assurance(Actor("s", "citizen", pid="3100600445635", ial="3"), "civil.address-change", "2.3")
    check_assurance(Actor("o", "officer", org="MUN-SAENSUK"), "civil.address-change", "2.3")
    with pytest.raises(Forbidden) as refused:
        check_assurance(Actor("s", "citizen", pid="3100600445635", ial="2.2"), "civil.address-change", "2.3")
    assert refused.value.errors[0][0] == "ial"


def test_development_tokens_are_off_unless_asked_for() -> None:
    assert Settings.from_env({}).dev_tokens is False
    assert Settings.from_env({"ONESTOP_DEV_TOKENS": "1"}).dev_tokens is True
    with pytest.raises(SettingsError, match="ONESTOP_DEV_TOKENS"):
        Settings.from_env({"ONESTOP_DEV_TOKENS": "yes"})
    with pytest.raises(SettingsError, match="ONESTOP_JWT_SECRET"):
        Settings.from_env({"ONESTOP_DATABASE_URL": "postgresql://x@127.0.0.1/db", "ONESTOP_DEV_TOKENS": "1"})
    assert Settings.from_env({"ONESTOP_DATABASE_URL": "postgresql://x@127.0.0.1/db"}).dev_tokens is False


def test_sign_in_origins_fall_back_to_the_cors_allowlist_and_must_be_origins() -> None:
    assert Settings.from_env({"ONESTOP_CORS_ORIGINS": "https://a.example.go.th, https://b.example.go.th/"}).sign_in_origins == (
        "https://a.example.go.th", "https://b.example.go.th")
    with pytest.raises(SettingsError, match="ONESTOP_SIGN_IN_ORIGINS"):
        Settings.from_env({"ONESTOP_SIGN_IN_ORIGINS": "https://a.example.go.th/path"})


def test_onestop_token_without_development_tokens_says_how_to_get_a_real_one(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ONESTOP_JWT_SECRET", "x" * 40)
    monkeypatch.delenv("ONESTOP_DEV_TOKENS", raising=False)
    with pytest.raises(SystemExit) as refused:
        main(["token", "--role", "citizen", "--sub", "3100600445635"])
    assert "ThaiD" in str(refused.value.code) and "ONESTOP_DEV_TOKENS=1" in str(refused.value.code)
    assert capsys.readouterr().out == ""
