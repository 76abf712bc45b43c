"""OpenAPI paths: browser sign-in and sessions."""

from __future__ import annotations

from typing import Any

from api.openapi_paths.common import TIMESTAMP, json_content, problems


SESSION_SCHEME = {"session": {"type": "apiKey", "in": "cookie", "name": "onestop_session",
                              "description": "a browser's session after GET /v1/auth/{issuer}/login; writes also need X-CSRF-Token"}}


def add_sign_in(paths: dict[str, Any]) -> None:
    """Browser sign-in (backend-for-frontend) at a trusted issuer, and the session it leaves."""
    issuer = {"name": "issuer", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
              "description": "the name of a trusted issuer in ONESTOP_OIDC_ISSUERS"}
    location = {"Location": {"description": "where the browser goes next", "schema": {"type": "string"}}}
    paths["/v1/auth/{issuer}/login"] = {"get": {
        "summary": "Start a browser sign-in: redirects to the issuer (authorization code flow with PKCE, state and nonce)",
        "operationId": "signIn", "tags": ["sign-in"], "security": [],
        "parameters": [issuer, {"name": "return_to", "in": "query", "schema": {"type": "string", "maxLength": 2000},
                                "description": "an absolute URL on an allowed origin (ONESTOP_SIGN_IN_ORIGINS) to return to"},
                       {"name": "login_hint", "in": "query", "schema": {"type": "string", "maxLength": 200}}],
        "responses": {"302": {"description": "to the issuer's sign-in", "headers": location}, **problems(400, 404, 503)},
    }}
    paths["/v1/auth/{issuer}/callback"] = {"get": {
        "summary": "Where the issuer sends the browser back: redeems the code, sets the session cookie, returns to return_to",
        "operationId": "signInCallback", "tags": ["sign-in"], "security": [],
        "parameters": [issuer, *({"name": name, "in": "query", "schema": {"type": "string", "maxLength": 2000}} for name in ("code", "state", "error"))],
        "responses": {"303": {"description": "signed in; the session cookie is set", "headers": location}, **problems(400, 401, 404, 503)},
    }}
    paths["/v1/auth/session"] = {"get": {
        "summary": "The signed-in browser: its actor and the CSRF token its writes send as X-CSRF-Token",
        "operationId": "getSession", "tags": ["sign-in"], "security": [{"session": []}],
        "responses": {"200": {"description": "the session", **json_content({"type": "object", "required": ["actor", "csrf_token", "expires_at"], "properties": {
            "actor": {"type": "object"}, "csrf_token": {"type": "string"}, "expires_at": TIMESTAMP}})}, **problems(401)},
    }}
    paths["/v1/auth/logout"] = {"post": {
        "summary": "Sign the browser out: the session ends and its cookie stops working (needs X-CSRF-Token)",
        "operationId": "signOut", "tags": ["sign-in"], "security": [{"session": []}],
        "parameters": [{"name": "X-CSRF-Token", "in": "header", "schema": {"type": "string"}}],
        "responses": {"204": {"description": "signed out"}, **problems(401, 403)},
    }}
