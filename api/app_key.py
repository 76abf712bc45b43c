"""The key under which the application holds its ApiContext."""

from __future__ import annotations

from typing import Any

from aiohttp import web

CTX: web.AppKey[Any] = web.AppKey("onestop_ctx")
