"""Health that tells the truth: ``/v1/health`` (dependencies and followers of the log),
``/v1/health/live`` (the process answers) and ``/v1/health/ready`` (it can serve: the
database answers). Open without a token; URLs, paths and error texts only for admins."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from api.app_key import CTX
from api.auth import authenticate
from api.http import json_response
from api.problems import HttpProblem
from application.access import ADMINS

log = logging.getLogger("onestop.health")
routes = web.RouteTableDef()
# What only an admin sees: where things are and what went wrong there.
PRIVATE_KEYS = frozenset({"url", "error", "path", "dsn"})
READY_TIMEOUT_SECONDS = 2.0


def _is_admin(request: web.Request) -> bool:
    if "Authorization" not in request.headers:
        return False
    try:
        authenticate(request, *ADMINS)
    except HttpProblem:
        return False
    return True


def verdict(dependencies: dict[str, dict[str, Any]], followers: dict[str, dict[str, Any]], failures: dict[str, Any]) -> tuple[str, list[str]]:
    """``ok``, ``degraded`` or ``down``, and the reasons for anything but ok."""
    down = [f"{name} is {d['status']}" for name, d in dependencies.items() if d.get("required", True) and d["status"] != "up"]
    if down:
        return "down", down
    reasons = [f"{name} is {d['status']}" for name, d in dependencies.items() if d["status"] == "down"]
    reasons += [f"{name} is {f['state']} ({f['lag']} events waiting)" for name, f in followers.items() if f["state"] != "running"]
    if failures.get("count"):
        views = ", ".join(f"{view}: {n}" for view, n in failures.get("views", {}).items()) or "views unknown"
        reasons.append(f"{failures['count']} events set aside by the views ({views})")
    return ("degraded" if reasons else "ok"), reasons


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    checks = await asyncio.gather(*(check() for check in ctx.health_checks))
    dependencies = {c.pop("name"): c for c in checks}
    followers: dict[str, Any] = {}
    failures: dict[str, Any] = {"count": 0, "views": {}}
    watch = getattr(ctx, "followers", None)
    if watch is not None and all(d["status"] == "up" for d in dependencies.values() if d.get("required", True)):
        try:
            state = await watch.read()
            followers, failures = state["followers"], state["projection_failures"]
        except Exception as error:  # the database went away between the checks
            log.warning("could not read the followers' state: %s", error)
            dependencies.setdefault("database", {"required": True})["status"] = "down"
    status, reasons = verdict(dependencies, followers, failures)
    if not _is_admin(request):
        dependencies = {name: {k: v for k, v in d.items() if k not in PRIVATE_KEYS} for name, d in dependencies.items()}
    body = {"status": status, "dependencies": dependencies, "followers": followers, "projection_failures": failures}
    if reasons:
        body["reasons"] = reasons
    return json_response(body, status=503 if status == "down" else 200)


@routes.get("/v1/health/live")
async def live(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/v1/health/ready")
async def ready(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(request.app[CTX].read_model.log_position(), READY_TIMEOUT_SECONDS)
    except Exception:  # any failure: not ready, and the reason is not for anonymous callers
        return json_response({"status": "down"}, status=503)
    return json_response({"status": "ok"})
