"""Point-in-time state: a request or a payment as it was at a moment, rebuilt by replaying its
own events (never read from a view), in the same shape as the normal read."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Awaitable, Callable, Sequence
from uuid import UUID

from application.back_office import BackOffice
from application.ports import Recorded, Timeline
from application.presentation import describe_payment, describe_request

REQUEST_CREATED = "ServiceRequest.Submitted"
PAYMENT_CREATED = "Payment.Opened"


def last_as_of(events: Sequence[Recorded], as_of: datetime) -> Recorded | None:
    """The last event whose time is at or before ``as_of``."""
    last = None
    for event in events:
        if event.occurred_at <= as_of:
            last = event
    return last


# Runs a synchronous function off the event loop (the command bus's executor).
Run = Callable[..., Awaitable[Any]]


class History:
    def __init__(self, app: BackOffice, timeline: Timeline, run: Run) -> None:
        self.app = app
        self.timeline = timeline
        self.run = run

    async def request_as_of(self, request_id: str, as_of: datetime) -> dict[str, Any] | None:
        """The request as it was at ``as_of`` (with its payment as it was then), or None when it
        did not exist yet."""
        events = await self.timeline.recorded(request_id)
        last = last_as_of(events, as_of)
        if last is None or events[0].type != REQUEST_CREATED:
            return None
        return await self.run(self._request_at, request_id, last, as_of)

    def _request_at(self, request_id: str, last: Recorded, as_of: datetime) -> dict[str, Any]:
        request = self.app.get_request(UUID(request_id), version=last.version)
        payment = None
        if request.payment_id is not None:
            payment_events = list(self.app.repository.event_store.get(request.payment_id))
            opened = [e.originator_version for e in payment_events if e.timestamp <= as_of]
            if opened:
                payment = self.app.get_payment(request.payment_id, version=opened[-1])
        return describe_request(request, payment, last.position)

    async def payment_as_of(self, payment_id: str, as_of: datetime) -> dict[str, Any] | None:
        """The payment as it was at ``as_of``, or None when it did not exist yet."""
        events = await self.timeline.recorded(payment_id)
        last = last_as_of(events, as_of)
        if last is None or events[0].type != PAYMENT_CREATED:
            return None
        payment = await self.run(self.app.get_payment, UUID(payment_id), last.version)
        return describe_payment(payment, last.position)
