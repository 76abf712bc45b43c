"""What the API accepts at its edge: storable strings in bodies and query strings, and strict
parsers for positions, limits, ETags, cursors and times."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from api.http import (
    MAX_DEPTH, ascii_int, check_query, decode_cursor, encode_cursor, if_match, parse_json_body, query_int,
    query_position, query_time,
)
from api.problems import HttpProblem


def refused(call, *args):
    with pytest.raises(HttpProblem) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"details": {"description": "a\u0000b"}}, "details.description"),
        ({"officer": "x\u001by"}, "officer"),
        ({"reference": "OS69\u0000"}, "reference"),
        ({"items": ["ok", "bad\u0007"]}, "items[1]"),
        ({"details": {"k\u0000": "v"}}, "details.k\\x00"),
    ],
)
def test_a_body_string_or_key_with_a_control_character_is_refused_naming_the_field(body: dict, field: str) -> None:
    problem = refused(parse_json_body, orjson.dumps(body))
    assert problem.status == 422
    assert field in [f for f, _ in problem.errors]


def test_tab_line_feed_and_carriage_return_are_allowed() -> None:
    assert parse_json_body(b'{"m": "a\\tb\\nc\\r\\nd"}') == {"m": "a\tb\nc\r\nd"}


def test_a_lone_surrogate_is_refused() -> None:
    assert refused(parse_json_body, b'{"m": "\\ud800"}').status == 400
    assert refused(parse_json_body, b'{"m": "x\\udc00"}').status == 400


def test_thai_text_is_normalised_to_nfc() -> None:
    # A tone mark typed before a below-vowel (กู่ as ก + ่ + ู) is put in canonical order, in
    # values and keys, so the same word is stored and searched the same way.
    typed = "\u0e01\u0e48\u0e39"
    value = parse_json_body(orjson.dumps({"d": typed, typed: 1}))
    assert value == {"d": "\u0e01\u0e39\u0e48", "\u0e01\u0e39\u0e48": 1}
    assert parse_json_body(orjson.dumps({"d": "e\u0301"}))["d"] == "\u00e9"
    # The same, written with ASCII escapes (as Python's json.dumps writes Thai by default).
    assert parse_json_body(b'{"d": "\\u0e01\\u0e48\\u0e39"}') == {"d": "\u0e01\u0e39\u0e48"}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 256, 1023])
def test_a_deeply_nested_body_is_refused_without_recursing(depth: int) -> None:
    problem = refused(parse_json_body, b"[" * depth + b"]" * depth)
    assert problem.status == 400
    problem = refused(parse_json_body, b'{"a":' * depth + b"1" + b"}" * depth)
    assert problem.status == 400


def test_a_body_nested_to_the_cap_is_accepted() -> None:
    assert parse_json_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None


@pytest.mark.parametrize("raw", ["²", "٣", "1²", "", " 1", "+1", "1e3", "0x10", "99999999999999999999"])
def test_only_ascii_digits_in_range_make_an_integer(raw: str) -> None:
    assert ascii_int(raw, 0, 2**63 - 1) is None


def test_ascii_integers_in_range_are_read() -> None:
    assert ascii_int("42", 0, 100) == 42 and ascii_int("-3", -5, 5) == -3 and ascii_int("9223372036854775807", 0, 2**63 - 1) == 2**63 - 1


def request(query: str = "", headers: dict[str, str] | None = None):
    return make_mocked_request("GET", "/v1/x" + ("?" + query if query else ""), headers=headers or {})


@pytest.mark.parametrize("query", ["applicant=%00", "organization=%00", "a%01=1", "type=x%1Fy"])
def test_a_query_string_with_a_control_character_is_refused_naming_the_parameter(query: str) -> None:
    problem = refused(check_query, request(query))
    assert problem.status == 400
    assert problem.errors[0][0] == query.split("=")[0].replace("%01", "\\x01")


@pytest.mark.parametrize("value", ["%C2%B2", "%D9%A3", "-1", "1001"])
def test_a_limit_must_be_ascii_digits_in_range(value: str) -> None:
    problem = refused(query_int, request(f"limit={value}"), "limit", 100, 1, 1000)
    assert problem.status == 400 and problem.errors[0][0] == "limit"


@pytest.mark.parametrize("value", ["99999999999999999999", "%C2%B2", "-1", "1.5"])
def test_a_position_must_fit_in_int64(value: str) -> None:
    problem = refused(query_position, request(f"after={value}"), "after")
    assert problem.status == 400 and problem.errors[0][0] == "after"


def test_a_zero_padded_cursor_is_a_position() -> None:
    assert query_position(request("after=00000000000000000042"), "after") == 42


@pytest.mark.parametrize("value", ['"²"', '"٣"', '"99999999999999999999"', "abc"])
def test_if_match_must_be_an_ascii_version(value: str) -> None:
    problem = refused(if_match, request(headers={"If-Match": value}))
    assert problem.status == 400 and problem.errors[0][0] == "If-Match"


def test_if_match_reads_a_version_etag() -> None:
    assert if_match(request(headers={"If-Match": 'W/"7"'})) == 7


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-14:00", "2026-01-01T00:00:00", "%D9%A3"])
def test_a_time_that_is_not_an_rfc3339_instant_in_range_is_refused(value: str) -> None:
    problem = refused(query_time, request(f"from={value}"), "from")
    assert problem.status == 400 and problem.errors[0][0] == "from"


def test_a_time_is_read_in_utc() -> None:
    value = query_time(request("from=2026-05-01T09:30:00%2B07:00"), "from")
    assert value is not None and value.utcoffset().total_seconds() == 0 and value.hour == 2


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


@pytest.mark.parametrize(
    "values",
    [[1, 2], [[], {}], ["2026-01-01T00:00:00+00:00", 5], ["not a time", "00000000-0000-0000-0000-000000000000"],
     ["2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"], [None, None], ["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"]],
)
def test_a_cursor_of_the_wrong_shape_is_refused(values: list) -> None:
    problem = refused(decode_cursor, _cursor(values), ("time", "uuid"))
    assert problem.status == 400 and problem.errors[0][0] == "cursor"


def test_a_cursor_this_api_issued_is_read_back() -> None:
    values = ["2026-01-01T00:00:00+07:00", "6f1c2b9e-3c1e-4d7a-9a55-0d7f5c1e2b3a"]
    assert decode_cursor(encode_cursor(values), ("time", "uuid")) == tuple(values)
