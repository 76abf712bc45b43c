"""Browser sign-in (backend-for-frontend) over HTTP, cookie by cookie: the code flow with PKCE at
the simulator, the session cookie, CSRF on cookie writes, sign-out, and no open redirect."""

from __future__ import annotations

import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN_ID, Harness, complaint, serving
from tests.integration.oidc_harness import Issuer, issuers_file, simulated_issuer, trusting_settings

pytestmark = pytest.mark.postgres
FRONT_END = "http://127.0.0.1:5173"


class Browser:
    """Just enough of a browser: a cookie store for the API's origin, redirects followed by hand."""

    def __init__(self, api: Harness, citizens: Issuer, http: aiohttp.ClientSession) -> None:
        self.api, self.citizens, self.http = api, citizens, http
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def _keep(self, response: Any) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            self.set_cookie_headers.append(header)
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    async def get(self, path: str, **headers: str) -> Any:
        return await self._call("GET", path, None, headers)

    async def post(self, path: str, json: Any = None, **headers: str) -> Any:
        return await self._call("POST", path, json, headers)

    async def _call(self, method: str, path: str, json: Any, headers: dict[str, str]) -> Any:
        response = await self.http.request(method, self.api.client.make_url(path), json=json, headers={**self.cookie_header(), **headers},
                                           allow_redirects=False)
        await response.read()
        self._keep(response)
        return response

    async def sign_in(self, login: str = CITIZEN_ID, return_to: str = f"{FRONT_END}/done") -> Any:
        start = await self.get(f"/v1/auth/thaid/login?return_to={return_to}&login_hint={login}")
        assert start.status == 302, await start.text()
        async with aiohttp.ClientSession() as http:
            async with http.get(start.headers["Location"], allow_redirects=False) as at_issuer:
                assert at_issuer.status == 302, await at_issuer.text()
                callback = at_issuer.headers["Location"]
        assert callback.startswith(str(self.api.client.make_url("/v1/auth/thaid/callback")))
        return await self.get(callback.split(str(self.api.client.make_url("")), 1)[1] if "://" in callback else callback)


@pytest.fixture
async def browser(settings: Settings, tmp_path: Path) -> AsyncIterator[Browser]:
    async with simulated_issuer("citizen") as citizens, simulated_issuer("staff") as staff:
        trusted = trusting_settings(settings.database_url or "", issuers_file(tmp_path / "issuers.toml", citizens, staff),
                                    ONESTOP_SIGN_IN_ORIGINS=FRONT_END)
        async with serving(trusted) as api, aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            yield Browser(api, citizens, http)


async def test_a_browser_signs_in_files_with_a_csrf_token_and_signs_out(browser: Browser) -> None:
    done = await browser.sign_in()
    assert done.status == 303 and done.headers["Location"] == f"{FRONT_END}/done"
    session_cookie = next(h for h in browser.set_cookie_headers if h.startswith("onestop_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert "Secure" not in session_cookie  # plain HTTP on a loopback address
    me = await (await browser.get("/v1/auth/session")).json()
    assert me["actor"]["pid"] == CITIZEN_ID and me["actor"]["ial"] == "2.3"
    key = str(uuid.uuid4())
    filed = await browser.post("/v1/service-requests", complaint(), **{"Idempotency-Key": key, "X-CSRF-Token": me["csrf_token"], "Origin": FRONT_END})
    assert filed.status == 201, await filed.text()
    stolen = dict(browser.cookies)
    assert (await browser.post("/v1/auth/logout", **{"X-CSRF-Token": me["csrf_token"], "Origin": FRONT_END})).status == 204
    assert "onestop_session" not in browser.cookies
    browser.cookies = stolen  # the signed-out cookie, replayed
    replayed = await browser.get("/v1/service-requests")
    assert replayed.status == 401


async def test_cookie_writes_without_the_csrf_token_or_from_another_origin_are_refused(browser: Browser) -> None:
    await browser.sign_in()
    me = await (await browser.get("/v1/auth/session")).json()
    before = browser.api.event_count()
    missing = await browser.post("/v1/service-requests", complaint(), **{"Idempotency-Key": str(uuid.uuid4()), "Origin": FRONT_END})
    assert missing.status == 403
    assert [e["field"] for e in (await missing.json())["errors"]] == ["X-CSRF-Token"]
    forged = await browser.post("/v1/service-requests", complaint(),
                                **{"Idempotency-Key": str(uuid.uuid4()), "X-CSRF-Token": me["csrf_token"], "Origin": "https://evil.example"})
    assert forged.status == 403
    assert [e["field"] for e in (await forged.json())["errors"]] == ["Origin"]
    wrong = await browser.post("/v1/auth/logout", **{"X-CSRF-Token": "guessed", "Origin": FRONT_END})
    assert wrong.status == 403
    assert browser.api.event_count() == before
    assert (await browser.get("/v1/service-requests")).status == 200  # reads need no token, and the session lives on


@pytest.mark.parametrize("return_to", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "http://127.0.0.1:5173@evil.example/",
                                       "http://127.0.0.1:5174/", "/relative"])
async def test_sign_in_refuses_to_return_anywhere_but_an_allowed_origin(browser: Browser, return_to: str) -> None:
    response = await browser.get(f"/v1/auth/thaid/login?return_to={aiohttp.helpers.quote(return_to, safe='')}")
    assert response.status == 400
    assert [e["field"] for e in (await response.json())["errors"]] == ["return_to"]
    assert "Location" not in response.headers


async def test_a_callback_not_started_in_this_browser_does_not_sign_it_in(browser: Browser) -> None:
    start = await browser.get(f"/v1/auth/thaid/login?return_to={FRONT_END}/&login_hint={CITIZEN_ID}")
    async with aiohttp.ClientSession() as http:
        async with http.get(start.headers["Location"], allow_redirects=False) as at_issuer:
            callback = at_issuer.headers["Location"]
    victim = Browser(browser.api, browser.citizens, browser.http)  # another browser, sent the attacker's callback link
    answer = await victim.get(callback[callback.index("/v1/"):])
    assert answer.status == 400 and "onestop_session" not in victim.cookies
    # The code is single-use too: the browser that started it may still finish, once.
    assert (await browser.get(callback[callback.index("/v1/"):])).status == 303
    assert (await browser.get(callback[callback.index("/v1/"):])).status == 400


async def test_an_unknown_issuer_has_no_sign_in(browser: Browser) -> None:
    response = await browser.get("/v1/auth/nobody/login")
    assert response.status == 404
