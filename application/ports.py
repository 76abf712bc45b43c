"""Ports: what the application needs from the outside world, as abstract interfaces."""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from application.errors import ApplicationError


class ReferenceIssuer(abc.ABC):
    """Issues unique, human-readable request references (they become PromptPay Ref1)."""

    @abc.abstractmethod
    def issue(self, count: int, at: datetime) -> list[str]:
        """Return ``count`` new references, never issued before."""


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class CivilRegistry(abc.ABC):
    """The civil registry (DOPA linkage). Every call that changes something takes an
    idempotency key, so a retried call has one effect."""

    @abc.abstractmethod
    async def verify_person(self, national_id: str, idempotency_key: str) -> dict[str, Any]:
        """Return ``{found, alive, name_th, birth_date, house_id, organization, reason}``."""

    @abc.abstractmethod
    async def read_house(self, house_id: str) -> dict[str, Any] | None:
        """Return the house record, or None when the registry does not know it."""

    @abc.abstractmethod
    async def record_move(self, national_id: str, to_house_id: str, move_date: str | None, idempotency_key: str) -> dict[str, Any]:
        """Record a change of address."""

    @abc.abstractmethod
    async def allocate_house_number(self, owner_national_id: str, building_permit_no: str, address: str, organization: str, idempotency_key: str) -> dict[str, Any]:
        """Allocate a house ID for a new building."""

    @abc.abstractmethod
    async def issue_certified_copy(self, national_id: str, document: str, copies: int, idempotency_key: str) -> dict[str, Any]:
        """Issue a certified copy; the result carries a ``document_ref``."""


class PaymentGateway(abc.ABC):
    """The bank's bill-payment gateway."""

    @abc.abstractmethod
    async def create_charge(self, reference: str, amount_satang: int, expires_at: datetime, idempotency_key: str) -> dict[str, Any]:
        """Create a bill-payment charge; the result carries ``charge_id`` and ``promptpay_payload``."""

    @abc.abstractmethod
    async def read_charge(self, charge_id: str) -> dict[str, Any]:
        """Return the charge as the bank has it."""

    @abc.abstractmethod
    async def refund(self, reference: str, amount_satang: int, reason: str, idempotency_key: str) -> dict[str, Any]:
        """Refund a payment; the result carries ``refund_id``."""


class OutsideCallFailed(ApplicationError):
    """An outside system failed in a way worth retrying (timeout, 5xx, connection refused)."""


class OutsideCallRefused(ApplicationError):
    """An outside system refused the call for good (4xx): retrying will not help."""


class ReadModel(abc.ABC):
    """Queries over the views (never a replay of aggregates). Rows come back in the same shape
    as a command's response: see application.presentation."""

    @abc.abstractmethod
    async def get_request(self, request_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Return ``(document, access fields)`` for a request, or None."""

    @abc.abstractmethod
    async def list_requests(self, filters: dict[str, Any], scope: dict[str, Any], limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """Requests newest first, narrowed by ``filters`` and the caller's ``scope``, after a cursor."""

    @abc.abstractmethod
    async def get_payment(self, payment_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Return ``(document, access fields of its request)``, or None."""

    @abc.abstractmethod
    async def request_history(self, request_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
        """A request's events and its payments' events in log order, with its access fields."""

    @abc.abstractmethod
    async def payment_for_reference(self, reference: str) -> str | None:
        """The id of the newest payment with this Ref1, or None."""

    @abc.abstractmethod
    async def list_jobs(self, status: str, organization: str | None, limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """Outstanding (pending, running, retrying) or failed jobs, oldest first."""

    @abc.abstractmethod
    async def work_queue(self, organization: str, limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """Open items of one organisation, oldest first."""

    @abc.abstractmethod
    async def daily_counts(self, organization: str | None, since: Any, until: Any) -> list[dict[str, Any]]:
        """Counts per organisation, Bangkok day and service."""

    @abc.abstractmethod
    async def views_position(self) -> int:
        """The log position the views have reached."""

    @abc.abstractmethod
    async def wait_for_position(self, position: int, timeout: float) -> bool:
        """Wait until the views reach ``position``; False if ``timeout`` passed first."""

    @abc.abstractmethod
    async def log_position(self) -> int:
        """The newest position in the event log."""
