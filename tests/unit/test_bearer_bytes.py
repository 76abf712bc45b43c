"""A bearer token is checked before it reaches the JWT library: bytes a JWT cannot hold are a 401."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from api.auth import actor_from_bearer
from api.problems import HttpProblem


@pytest.mark.parametrize("token", ["e\udcfeyJ", "ey\u0e01J.a.b", "\x00"])
def test_a_bearer_token_with_bytes_no_jwt_holds_is_an_invalid_token_not_a_server_error(token: str) -> None:
    with pytest.raises(HttpProblem) as refused:
        asyncio.run(actor_from_bearer(SimpleNamespace(dev_tokens=True, token_verifier=None), token))
    assert refused.value.status == 401
