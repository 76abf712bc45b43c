"""Serving the API: aiohttp's connection handler, with the errors it answers by itself (a
malformed request, a request line or header over the size limit) in problem+json like the rest.

aiohttp builds those answers in ``RequestHandler.handle_error``, before any application code or
middleware runs; its ``Server`` makes one handler per connection. So: a handler that overrides
``handle_error``, a ``Server`` that makes it, and an ``AppRunner`` that serves with that server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from http import HTTPStatus
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from api.problems import problem_response

log = logging.getLogger("onestop.api")


class ProblemRequestHandler(RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            # The parent logs with the traceback, and raises when part of a response went out.
            super().handle_error(request, status, exc, message)
        else:
            # A client's malformed request is the client's problem: one line, no traceback.
            if request.writer.output_size > 0:
                raise ConnectionError("Response is sent already, cannot send another response with the error message")
            log.info("refused a malformed request from %s: %s", request.remote, (message or "").splitlines()[0] if message else status)
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Error"
        detail = message if status < 500 and message else ("an unexpected error occurred" if status >= 500 else title)
        response = problem_response(status, title, detail)
        response.force_close()
        return response


class ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class OneStopAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer protocol errors in problem+json."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return ProblemServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation, loop=plain._loop, **plain._kwargs)


def run(app: Awaitable[web.Application], host: str, port: int, *, shutdown_timeout: float = 20.0) -> None:
    """Serve until SIGINT or SIGTERM, then shut down gracefully (as ``web.run_app`` does): stop
    accepting, give in-flight requests up to ``shutdown_timeout`` seconds, exit."""

    async def main() -> None:
        runner = OneStopAppRunner(await app, handle_signals=True, access_log=None, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            settle_collector()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(main())
    except (web.GracefulExit, KeyboardInterrupt):
        pass


# Young-generation threshold of the cyclic garbage collector while serving (Python's default is 700).
YOUNG_THRESHOLD = 20_000


def settle_collector() -> None:
    """Once the application is built: move what startup made (modules, routes, schemas, the
    OpenAPI document) out of the collector's sight (``gc.freeze``), and collect the young
    generation every 20,000 new container objects instead of every 700. A submit allocates a
    few hundred (request, command, events, stored events, response) that all die when it is
    answered; at 700, collections ran every request or two, promoted what was in flight to the
    older generations and walked it again there (about 7% of the API's CPU under load). Memory
    is freed by reference counting as before; only cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop (libuv, in C) when installed: the API's per-request plumbing
    (sockets, callbacks, timers) costs less CPU than in asyncio's own loop. Without uvloop, or
    with ONESTOP_EVENT_LOOP=asyncio, asyncio's."""
    if os.environ.get("ONESTOP_EVENT_LOOP", "").strip().lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]

