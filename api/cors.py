"""Cross-origin access for browser front-ends on other origins (CORS), from an allowlist.

``aiohttp-cors`` answers preflights (an ``OPTIONS`` route on every resource, allowing only the
methods the resource has) and adds the CORS headers to every answer of a routed request, through
``on_response_prepare``: so answers the middlewares make (problem+json from api/problems.py, 429
and 408 from api/limits.py) carry them too, and a browser can read why it was refused. Two
things it leaves out are added here: ``Vary: Origin`` (answers differ by origin, so caches must
keep them apart) and the headers on answers to requests no route matched (404, 405).

Only listed origins get any CORS header, and only they may send credentials (cookies); an
unlisted origin's preflight is refused with 403 and its answers carry no CORS header, so the
browser keeps them from the page.
"""

from __future__ import annotations

from typing import Iterable

import aiohttp_cors
from aiohttp import hdrs, web

# What a page may read of an answer, besides the CORS-safelisted headers.
EXPOSED_HEADERS = ("ETag", "Location", "Link", "OneStop-Position", "Retry-After", "Idempotent-Replayed", "WWW-Authenticate")
# What a page may send, besides the CORS-safelisted headers.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-CSRF-Token", "Last-Event-ID", "X-Purpose")
# How long a browser may keep a preflight's answer (Chromium keeps at most 2 h).
PREFLIGHT_MAX_AGE_SECONDS = 600


def enable_cors(app: web.Application, origins: Iterable[str]) -> None:
    """Allow the listed origins (``scheme://host[:port]``, as browsers send ``Origin``) to call
    every route of ``app`` with credentials. Call after every route is added. No origins: no
    CORS at all (no preflight routes, no headers)."""
    listed = tuple(origins)
    if not listed:
        return
    # One path may have several resources (routes of one path added apart), and the router
    # sends every OPTIONS of that path to the first: so each resource allows the methods of its
    # whole path.
    resources = [r for r in app.router.resources() if isinstance(r, web.Resource)]
    methods: dict[str, set[str]] = {}
    for resource in resources:
        methods.setdefault(resource.canonical, set()).update(route.method for route in resource)
    cors = aiohttp_cors.setup(app)
    for resource in resources:
        options = aiohttp_cors.ResourceOptions(
            allow_credentials=True, expose_headers=EXPOSED_HEADERS, allow_headers=ALLOWED_HEADERS,
            allow_methods=sorted(methods[resource.canonical]), max_age=PREFLIGHT_MAX_AGE_SECONDS,
        )
        cors.add(resource, {origin: options for origin in listed})
    allowed = frozenset(listed)

    async def vary_and_unrouted(request: web.Request, response: web.StreamResponse) -> None:
        # Every answer, with an Origin or not: a cache must not give one origin's answer (or an
        # answer without CORS headers) to another.
        vary = response.headers.get(hdrs.VARY)
        if vary is None:
            response.headers[hdrs.VARY] = hdrs.ORIGIN
        elif "origin" not in vary.lower():
            response.headers[hdrs.VARY] = f"{vary}, {hdrs.ORIGIN}"
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None:
            return
        # aiohttp-cors handles routed requests; a request no route matched (404, 405) is ours.
        if request.match_info.http_exception is not None and origin in allowed and hdrs.ACCESS_CONTROL_ALLOW_ORIGIN not in response.headers:
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = ",".join(EXPOSED_HEADERS)
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"

    # After aiohttp-cors's own hook, which asserts that no CORS header is set before it runs.
    app.on_response_prepare.append(vary_and_unrouted)
