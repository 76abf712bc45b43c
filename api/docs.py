"""Interactive API documentation at ``/v1/docs``: Swagger UI over ``/v1/openapi.json``, served
from the files the ``swagger-ui-py`` package ships (no CDN, so it works on a closed network and
the page loads no code from elsewhere).

Why that package: it is maintained and ships Swagger UI 5, which renders OpenAPI 3.1;
``swagger-ui-bundle`` still ships Swagger UI 4, which refuses 3.1 documents. Only the files
Swagger UI needs are served, by name, from memory; the page and its start-up script are
OneStop's own, with no inline script.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from aiohttp import web

from api.problems import DocsUnavailable, HttpProblem

DOCS_PATH = "/v1/docs"
OPENAPI_PATH = "/v1/openapi.json"

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OneStop API</title>
<link rel="stylesheet" href="{DOCS_PATH}/swagger-ui.css">
<link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{DOCS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_PATH}/onestop-docs.js"></script>
</body>
</html>
""".encode()

START = f"""window.addEventListener("load", function () {{
  window.ui = SwaggerUIBundle({{
    url: "{OPENAPI_PATH}",
    dom_id: "#swagger-ui",
    deepLinking: true,
    displayOperationId: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  }});
}});
""".encode()

# Asset name -> content type; each is a file of the package but the start-up script.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "onestop-docs.js": "text/javascript",
}
_CACHE = {"Cache-Control": "public, max-age=3600"}


def swagger_ui_dir() -> Path:
    """Where the installed ``swagger-ui-py`` keeps Swagger UI's files (found without importing
    the package, which would load its template engine for nothing)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise DocsUnavailable("the swagger-ui-py package is not installed; reinstall OneStop")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


@lru_cache(maxsize=None)
def asset(name: str) -> bytes:
    if name == "onestop-docs.js":
        return START
    return (swagger_ui_dir() / name).read_bytes()


async def docs_page(request: web.Request) -> web.Response:
    """``GET /v1/docs``: the page."""
    return web.Response(body=PAGE, content_type="text/html", charset="utf-8",
                        headers={**_CACHE, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})


async def docs_asset(request: web.Request) -> web.Response:
    """``GET /v1/docs/{asset}``: one of Swagger UI's files, compressed when the client accepts it."""
    name = request.match_info["asset"]
    content_type = ASSETS.get(name)
    if content_type is None:
        raise HttpProblem(404, "Not found", f"no documentation asset {name!r}", [("asset", "must be one of " + ", ".join(ASSETS))])
    response = web.Response(body=asset(name), content_type=content_type, headers={**_CACHE, "X-Content-Type-Options": "nosniff"})
    if content_type != "image/png":
        response.enable_compression()
    return response


routes = web.RouteTableDef()
routes.get(DOCS_PATH)(docs_page)
routes.get(DOCS_PATH + "/{asset}")(docs_asset)
