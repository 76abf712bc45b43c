"""Browser sign-in at a trusted issuer: the authorization code flow with PKCE, as a small
client over aiohttp (the flow is two requests; the ID token is checked by the same verifier as
bearer tokens, with the client id as audience and the sign-in's nonce)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import aiohttp

from application.errors import IdentityProviderUnavailable, InvalidToken, SignInFailed
from application.ports import SignInClient, VerifiedToken
from infrastructure.identity.verifier import OidcTokenVerifier


class OidcSignIn(SignInClient):
    def __init__(self, verifier: OidcTokenVerifier) -> None:
        self.verifier = verifier

    def can_sign_in(self, issuer: str) -> bool:
        config = self.verifier.issuer(issuer)
        return config is not None and config.client_id is not None

    async def authorization_url(self, issuer: str, *, redirect_uri: str, state: str, nonce: str, code_challenge: str,
                                login_hint: str | None = None) -> str:
        config = self.verifier.issuer(issuer)
        assert config is not None and config.client_id is not None
        metadata = await self.verifier.keys[issuer].metadata()
        endpoint = metadata.get("authorization_endpoint")
        if not isinstance(endpoint, str):
            raise IdentityProviderUnavailable(f"{issuer}: discovery has no authorization_endpoint")
        query = {"response_type": "code", "client_id": config.client_id, "redirect_uri": redirect_uri, "scope": config.scope,
                 "state": state, "nonce": nonce, "code_challenge": code_challenge, "code_challenge_method": "S256"}
        if login_hint:
            query["login_hint"] = login_hint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    async def exchange(self, issuer: str, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> VerifiedToken:
        config = self.verifier.issuer(issuer)
        assert config is not None and config.client_id is not None
        metadata = await self.verifier.keys[issuer].metadata()
        endpoint = metadata.get("token_endpoint")
        if not isinstance(endpoint, str):
            raise IdentityProviderUnavailable(f"{issuer}: discovery has no token_endpoint")
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier,
                "client_id": config.client_id}
        auth = aiohttp.BasicAuth(config.client_id, config.client_secret) if config.client_secret else None
        session = await self.verifier.http.get()
        try:
            async with session.post(endpoint, data=form, auth=auth, headers={"Accept": "application/json"}) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise IdentityProviderUnavailable(f"{issuer}: token endpoint: {type(error).__name__}") from None
        if status != 200 or not isinstance(body, dict):
            reason = body.get("error") if isinstance(body, dict) else None
            raise SignInFailed(f"{issuer} refused the code ({status}{', ' + str(reason) if reason else ''})")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed(f"{issuer} answered without an ID token")
        try:
            return await self.verifier.verify(id_token, audience=config.client_id, nonce=nonce)
        except InvalidToken as error:
            raise SignInFailed(f"{issuer}'s ID token is not valid: {error}") from None
