"""The browser settings: the CORS allowlist names origins exactly as browsers send them, and
nothing that would let every origin in; the live-stream ticket lifetime is bounded."""

from __future__ import annotations

import pytest

from onestop.settings import Settings, SettingsError, parse_origins


def test_no_cors_origins_by_default_so_no_cross_origin_access() -> None:
    assert Settings.from_env({}).cors_origins == ()


def test_origins_are_written_as_browsers_send_them() -> None:
    raw = " https://OSS.Example.go.th/ , http://127.0.0.1:5173,https://oss.example.go.th:443, http://[::1]:8080"
    assert parse_origins(raw) == ("https://oss.example.go.th", "http://127.0.0.1:5173", "http://[::1]:8080")
    assert Settings.from_env({"ONESTOP_CORS_ORIGINS": "https://a.example"}).cors_origins == ("https://a.example",)


@pytest.mark.parametrize("raw", ["*", "null", "oss.example.go.th", "ftp://oss.example.go.th", "https://oss.example.go.th/app",
                                 "https://oss.example.go.th?x=1", "https://user@oss.example.go.th", "https://a.example:99999"])
def test_a_wildcard_or_anything_but_an_origin_is_refused_naming_the_setting(raw: str) -> None:
    with pytest.raises(SettingsError, match="ONESTOP_CORS_ORIGINS"):
        Settings.from_env({"ONESTOP_CORS_ORIGINS": f"https://fine.example,{raw}"})


def test_the_ticket_lifetime_is_a_minute_by_default_and_bounded() -> None:
    assert Settings.from_env({}).stream_ticket_ttl_seconds == 60
    assert Settings.from_env({"ONESTOP_STREAM_TICKET_TTL_SECONDS": "30"}).stream_ticket_ttl_seconds == 30
    for bad in ("0", "7200", "soon"):
        with pytest.raises(SettingsError, match="ONESTOP_STREAM_TICKET_TTL_SECONDS"):
            Settings.from_env({"ONESTOP_STREAM_TICKET_TTL_SECONDS": bad})
