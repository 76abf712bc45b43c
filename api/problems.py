"""RFC 9457 problem details: one middleware turns every error into application/problem+json."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from application.appointments import SlotBusy
from application.errors import Forbidden, IdempotencyKeyReused, NotFound, StaleVersion
from domain.appointments import SlotFull, TooManyBookings
from domain.errors import DomainError, InvalidCommand, OneStopError, TransitionNotAllowed
from api.encoding import dumps

log = logging.getLogger("onestop.api")


class ApiError(OneStopError):
    """Root of the API's own errors (other than the problems it answers)."""


class BadTokenRequest(ApiError, ValueError):
    """A development token asked for with a role or organisation that cannot be."""


class DocsUnavailable(ApiError, RuntimeError):
    """The interactive documentation's files are not installed."""


class HttpProblem(OneStopError):
    """An error the HTTP layer itself finds (bad JSON, a bad header, no token)."""

    def __init__(self, status: int, title: str, detail: str, errors: list[tuple[str, str]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


# Most specific first.
_MAPPING: list[tuple[type[Exception], int, str]] = [
    (InvalidCommand, 422, "Invalid request"),
    (IdempotencyKeyReused, 422, "Idempotency-Key reused with another body"),
    (NotFound, 404, "Not found"),
    (Forbidden, 403, "Forbidden"),
    (StaleVersion, 412, "Precondition failed"),
    (SlotFull, 409, "Slot full"),
    (TooManyBookings, 409, "Too many bookings"),
    (SlotBusy, 409, "Slot busy"),
    (TransitionNotAllowed, 409, "Not allowed in the current state"),
    (DomainError, 409, "Conflict with a business rule"),
]


def problem_response(status: int, title: str, detail: str, errors: list[tuple[str, str]] | None = None, headers: dict[str, str] | None = None, instance: str | None = None) -> web.Response:
    body: dict[str, Any] = {
        "type": f"https://onestop.dev/problems/{title.lower().replace(' ', '-').replace('-with-another-body', '')}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = [{"field": field, "message": message} for field, message in errors]
    return web.Response(status=status, body=dumps(body), content_type="application/problem+json", headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpProblem as problem:
        return problem_response(problem.status, problem.title, problem.detail, problem.errors, problem.headers, request.path)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        title = error.reason or "Error"
        detail = error.text if error.text and not error.text.startswith(str(error.status)) else title
        if error.status == 413:
            detail = "the request body is larger than 1 MiB"
        # A 405 names the methods the resource has (RFC 9110 s.15.5.6).
        kept = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else None
        return problem_response(error.status, title, detail, headers=kept, instance=request.path)
    except OneStopError as error:
        for kind, status, title in _MAPPING:
            if isinstance(error, kind):
                errors = error.errors if isinstance(error, (InvalidCommand, Forbidden)) else None
                headers = {"ETag": f'"{error.current_version}"'} if isinstance(error, StaleVersion) and error.current_version else None
                return problem_response(status, title, str(error), errors, headers, request.path)
        log.exception("unmapped OneStop error")
        return problem_response(500, "Internal error", "an unexpected error occurred", instance=request.path)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal error", "an unexpected error occurred", instance=request.path)
