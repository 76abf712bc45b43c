"""Reads that see their writes: the current state of one request or payment straight from the
event store, in the same shape as the views give it, for when the views have not caught up
with a write the caller was already answered for."""

from __future__ import annotations

from typing import Any, Callable
from uuid import UUID

from application.back_office import BackOffice, access_fields
from application.history import PAYMENT_CREATED, REQUEST_CREATED, Run, Timeline
from application.presentation import describe_payment, describe_request

Found = tuple[dict[str, Any], dict[str, Any]]


class CurrentState:
    """Loads aggregates through the application (on ``run``, the command executor) and presents
    them as `application.presentation` does for view rows, with the access fields the read
    checks need."""

    def __init__(self, app: BackOffice, timeline: Timeline, run: Run) -> None:
        self.app = app
        self.timeline = timeline
        self.run = run

    async def request(self, request_id: str) -> Found | None:
        """(document, access) of the request now, or None when it does not exist."""
        return await self._now(request_id, REQUEST_CREATED, self._request)

    def _request(self, request_id: str, version: int, position: int) -> Found:
        # At the version the timeline saw, so that the document and its position agree.
        request = self.app.get_request(UUID(request_id), version=version)
        payment = self.app.get_payment(request.payment_id) if request.payment_id is not None else None
        return describe_request(request, payment, position), access_fields(request)

    async def payment(self, payment_id: str) -> Found | None:
        """(document, access) of the payment now, or None when it does not exist."""
        return await self._now(payment_id, PAYMENT_CREATED, self._payment)

    async def _now(self, aggregate_id: str, created: str, build: Callable[[str, int, int], Found]) -> Found | None:
        """``build`` run (in the executor) at the last version the timeline saw of an aggregate
        whose first event is ``created``; None when there is no such aggregate."""
        events = await self.timeline.recorded(aggregate_id)
        if not events or events[0].type != created:
            return None
        return await self.run(build, aggregate_id, events[-1].version, events[-1].position)  # type: ignore[no-any-return]

    def _payment(self, payment_id: str, version: int, position: int) -> Found:
        payment = self.app.get_payment(UUID(payment_id), version=version)
        request = self.app.get_request(payment.request_id)
        return describe_payment(payment, position), access_fields(request)
