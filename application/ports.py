"""Ports: what the application, the API and the workers need from the outside world, as abstract
interfaces (ABCs where fakes subclass them, Protocols where the adapter only has to fit)."""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol, Sequence, TypeVar
from uuid import UUID

from application.jobs import Job
from application.commands import SubmitCommand
from application.outcomes import Outcome
from domain.actors import Actor

T = TypeVar("T")


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


class UseCaseRunner(abc.ABC):
    """Runs the synchronous use cases from asyncio (the API's command bus)."""

    @abc.abstractmethod
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one use case off the event loop and return its result."""

    @abc.abstractmethod
    async def submit(self, command: SubmitCommand) -> Outcome:
        """File one request (possibly in one transaction with others)."""


class JobsLedger(abc.ABC):
    """What workers keep about each job: its errors, its end, and its state for officers."""

    @abc.abstractmethod
    def get(self, job_id: UUID) -> dict[str, Any] | None:
        """The job's row, or None when it was never dispatched."""

    @abc.abstractmethod
    def note_error(self, job: Job, error: str) -> None:
        """Keep the last error of a failed attempt (the job will be retried)."""

    @abc.abstractmethod
    def finish_many(self, jobs: list[Job], context: dict[UUID, tuple[str | None, datetime | None]] | None = None) -> None:
        """Mark the jobs done; ``context`` gives a job's organisation and the time it was sent,
        for a row the dispatcher has not written yet."""

    @abc.abstractmethod
    def fail(self, job: Job, error: str) -> None:
        """Mark the job failed for good, with the reason."""


@dataclass(frozen=True)
class Recorded:
    """Where one event sits in the log, and when it happened."""

    aggregate_id: str
    version: int
    position: int
    type: str
    occurred_at: datetime


class Timeline(abc.ABC):
    """Port: the recorded events of one aggregate, straight from the log."""

    @abc.abstractmethod
    async def recorded(self, aggregate_id: str) -> list[Recorded]:
        """The aggregate's events in version order; empty when it does not exist."""


@dataclass(frozen=True)
class LogFilter:
    """Which events of the log an auditor asks for (None: any)."""

    topics: list[str] | None = None
    organization: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditTrail(Timeline):
    """Port: the whole log as auditors read it, and its tamper evidence."""

    @abc.abstractmethod
    async def page(self, after: int, limit: int, log_filter: LogFilter, *, plain: bool = False) -> tuple[list[dict[str, Any]], int | None]:
        """Events after position ``after``, in log order, as stored (personal fields as
        ciphertext with the subject reference, unless ``plain``); and the position to continue
        after, or None when there are no more for now."""

    @abc.abstractmethod
    def export(self, log_filter: LogFilter, observe: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None, *,
               plain: bool = False) -> AsyncIterator[bytes]:
        """The matching events as NDJSON chunks, in constant memory (personal fields as
        ciphertext with the subject reference, unless ``plain``); ``observe`` sees each
        chunk's events before it is given out (the access log records whose they are)."""

    @abc.abstractmethod
    async def verify(self) -> dict[str, Any]:
        """Recompute the hash chain from the log: ``{"status": "intact" | "broken", ...}``."""


@dataclass
class FeedPage:
    items: list[tuple[int, bytes]]  # (position, CloudEvent JSON)
    next_position: int


class EventFeed(Protocol):
    """Reads of the published feed (CloudEvents in log order) and a way to wait for more."""

    async def page(self, after: int, limit: int, *, types: list[str] | None = None, organization: str | None = None) -> FeedPage:
        """Up to ``limit`` events after ``after``, narrowed by CloudEvents types and organisation."""

    def waiter(self) -> asyncio.Event:
        """An event that fires when the feed grows."""

    async def wait(self, waiter: asyncio.Event, timeout: float) -> None:
        """Until ``waiter`` fires or ``timeout`` passes."""


class SubscriptionPolicy(Protocol):
    """What the subscriptions API needs to know of how webhooks are delivered."""

    @property
    def allow_private(self) -> bool:
        """Whether webhook URLs on loopback and private addresses are allowed."""


class SubscriptionStore(Protocol):
    """Webhook subscriptions, their deliveries and replays, per owner (None: any owner)."""

    async def create(self, *, owner: str, url: str, types: list[str], organization: str | None, idempotency_key: str,
                     request_hash: str) -> tuple[dict[str, Any], bool]:
        """The new subscription (with its secret) and whether this was a replay of the same key."""

    async def list(self, owner: str | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        """Subscriptions after the cursor."""

    async def get(self, subscription_id: str, owner: str | None) -> dict[str, Any] | None:
        """One subscription, or None."""

    async def delete(self, subscription_id: str, owner: str | None) -> bool:
        """False when there was no such subscription."""

    async def deliveries(self, subscription_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """Every delivery attempt of one subscription, after the cursor."""

    async def replay(self, subscription_id: str, owner: str | None, from_position: int, requested_by: str) -> dict[str, Any] | None:
        """Send again everything from ``from_position``; None when there is no such subscription."""


class WebhookDeliverer(Protocol):
    """Sends deliveries and says which to send next."""

    async def deliver(self, delivery_id: int) -> list[tuple[int, float]]:
        """Send one delivery if it is due; the ``(delivery id, delay in seconds)`` pairs to send next."""

    async def close(self) -> None:
        """Release connections and sessions."""


# -- personal data: subject references, who looked, what is held about a person ----------------


class SubjectIndex(abc.ABC):
    """Port: the keyed reference of a data subject (a blind index of the national ID), so that
    logs and lookups never hold the plain ID and a wrong key finds nothing."""

    @abc.abstractmethod
    def reference(self, national_id: str) -> str:
        """The subject's reference (hex), the same for the same ID under the same key."""


@dataclass(frozen=True)
class AccessEntry:
    """One read of a person's data by someone other than the person."""

    at: datetime
    subject_ref: str
    actor_sub: str
    actor_role: str
    actor_org: str | None
    what: str  # the kind of read, such as "service-request" or "data-subject-export"
    resource: str | None  # the request, payment or export read
    purpose: str | None  # from the X-Purpose header


class AccessLog(abc.ABC):
    """Port: the record of who read whose personal data (PDPA records of processing)."""

    @abc.abstractmethod
    def record(self, entries: list[AccessEntry]) -> None:
        """Keep ``entries`` without waiting for the database (they are written in batches);
        raises ``AccessLogUnavailable`` when they cannot be kept, so the read is refused."""

    @abc.abstractmethod
    async def page(self, subject_ref: str, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Rows about one subject after the cursor, oldest first; and the cursor to continue after."""

    @abc.abstractmethod
    async def flush(self) -> None:
        """Write everything kept so far."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Write what is pending and stop."""


class SubjectLookup(abc.ABC):
    """Port: whose data an aggregate holds."""

    @abc.abstractmethod
    async def national_ids(self, aggregate_ids: list[str]) -> dict[str, str]:
        """The applicant's national ID of each request or payment (ids not found are left out)."""


class SubjectDataSource(abc.ABC):
    """Port: one kind of record OneStop holds about a person, for access and portability
    requests. The composition root keeps a list of them (``subject_data_sources``); a feature
    that stores personal data (allowances, tax records) adds its own source there."""

    #: The section of the export this source fills, such as "requests".
    name: str

    @abc.abstractmethod
    def records(self, national_id: str) -> AsyncIterator[dict[str, Any]]:
        """The person's records, one JSON object each, read in constant memory."""


class StreamTickets(Protocol):
    """Short-lived, single-use tickets that stand for a caller on the live stream, for clients
    that cannot send an Authorization header (a browser's ``EventSource``)."""

    async def issue(self, actor: Actor, ttl_seconds: float) -> tuple[str, datetime]:
        """A new ticket for ``actor`` and when it expires; only its hash is kept."""

    async def redeem(self, ticket: str) -> Actor | None:
        """The actor of a ticket that was issued, is unexpired and was not redeemed before;
        None otherwise. A ticket is redeemed at most once, by any API process."""


class LandTaxViews(abc.ABC):
    """Reads of the land-tax views: notices as rows (see application.land_tax.notice_document)."""

    @abc.abstractmethod
    async def get_notice(self, notice_id: str) -> dict[str, Any] | None:
        """One notice's row, or None when the views do not have it."""

    @abc.abstractmethod
    async def list_notices(self, *, organization: str | None, owner_id: str | None, tax_year: int | None, limit: int,
                           after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """Notices by (tax_year, owner_id, id), after a cursor of those three."""


# -- identity: trusted issuers' tokens, browser sign-in and its sessions -----------------------


@dataclass(frozen=True)
class VerifiedToken:
    """Who a verified token names, and until when (Unix seconds) it may be trusted."""

    actor: Actor
    expires_at: float


class TokenVerifier(abc.ABC):
    """Verifies bearer tokens and ID tokens of the trusted issuers (OneStop as an OIDC resource
    server). Never blocks the event loop on the network: keys are fetched asynchronously."""

    @abc.abstractmethod
    async def verify(self, token: str, *, audience: str | None = None, nonce: str | None = None) -> VerifiedToken:
        """The actor the token names; ``InvalidToken`` naming the reason otherwise. ``audience``
        overrides the issuer's configured one (an ID token's is the client id); ``nonce``, when
        given, must equal the token's."""

    @abc.abstractmethod
    def issuer_names(self) -> list[str]:
        """The names of the trusted issuers, in configuration order."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class BrowserSession:
    """A signed-in browser: who, the CSRF token its writes must carry, and when it ends."""

    actor: Actor
    csrf_token: str
    expires_at: datetime


class SessionStore(abc.ABC):
    """Server-side browser sessions (revocable) and the pending sign-ins that precede them."""

    @abc.abstractmethod
    async def create(self, actor: Actor, now: datetime) -> tuple[str, BrowserSession]:
        """A new session: its secret id (the cookie value, stored only hashed) and the session."""

    @abc.abstractmethod
    async def get(self, session_id: str, now: datetime) -> BrowserSession | None:
        """The live session (after its idle and absolute limits, None), its idle clock restarted."""

    @abc.abstractmethod
    async def revoke(self, session_id: str, now: datetime) -> bool:
        """End the session; False when there was no live one."""

    @abc.abstractmethod
    async def begin_sign_in(self, state: str, pending: dict[str, Any], now: datetime) -> None:
        """Keep what the callback needs (nonce, PKCE verifier, issuer, return_to) under ``state``."""

    @abc.abstractmethod
    async def finish_sign_in(self, state: str, now: datetime) -> dict[str, Any] | None:
        """What ``begin_sign_in`` kept, once (a second call gets None), if not stale."""


class SignInClient(abc.ABC):
    """The browser sign-in at one trusted issuer: OIDC authorization code flow with PKCE."""

    @abc.abstractmethod
    def can_sign_in(self, issuer: str) -> bool:
        """Whether ``issuer`` is trusted and has a client registered for browser sign-in."""

    @abc.abstractmethod
    async def authorization_url(self, issuer: str, *, redirect_uri: str, state: str, nonce: str, code_challenge: str,
                                login_hint: str | None = None) -> str:
        """Where to send the browser to sign in."""

    @abc.abstractmethod
    async def exchange(self, issuer: str, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> VerifiedToken:
        """Redeem the code and verify the ID token; ``SignInFailed`` or ``InvalidToken`` otherwise."""


# -- elderly allowance ----------------------------------------------------------------------------


class RegistryBatch(abc.ABC):
    """The civil registry's bulk status check, for the monthly allowance run."""

    @abc.abstractmethod
    async def people_status(self, national_ids: list[str]) -> list[dict[str, Any]]:
        """One answer per ID: ``{national_id, found, alive, died_on, organization, moved_on}``."""


class BulkTransfers(abc.ABC):
    """The bank's bulk transfers (payments out, value-dated)."""

    @abc.abstractmethod
    async def bulk_transfer(self, value_date: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``lines`` (``{key, amount_satang, kind, account, reference}``); one answer per line,
        ``{key, status: paid | refused, reason, transfer_id}``. A key already paid is answered as
        before and not paid again."""


class AllowanceRegister(abc.ABC):
    """The register of recipients as a view, for the run (synchronous, in workers)."""

    @abc.abstractmethod
    def catch_up(self) -> int:
        """Bring the view up to the end of the log; the number of events applied."""

    @abc.abstractmethod
    def recipients(self, organization: str) -> list[dict[str, Any]]:
        """The organisation's recipients that are not ended, with ``id, national_id, birth_date,
        payout, start_month, band_amount_satang, status``."""


class AllowanceQueries(abc.ABC):
    """Officers' reads of the register (asynchronous, in the API)."""

    @abc.abstractmethod
    async def list_recipients(self, filters: dict[str, Any], limit: int, after: str | None) -> list[dict[str, Any]]:
        """Recipients in id order after the cursor, narrowed by organisation, status and band."""

    @abc.abstractmethod
    async def position(self) -> int:
        """The log position the register has applied (it follows the log after the views)."""
class PersonalData(abc.ABC):
    """Personal data of data subjects (PDPA): the keyed blind index of national IDs, each
    person's data keys, and the plain copies of their fields kept outside the log."""

    @abc.abstractmethod
    def index(self, national_id: str) -> str:
        """The keyed blind index of a national ID."""

    @abc.abstractmethod
    def subjects(self, index: str) -> list[UUID]:
        """Every key set (subject id) the person with this blind index has had, live or erased."""

    @abc.abstractmethod
    def aggregates(self, subjects: list[UUID]) -> list[UUID]:
        """The aggregates of these subjects' own (requests, payments, allowance recipients, tax
        notices, appointments, receipts), whose personal fields are under their keys."""

    @abc.abstractmethod
    def erase_keys(self, subjects: list[UUID]) -> int:
        """Delete the subjects' data keys (crypto-shredding); returns how many were deleted."""

    def forget_person(self, index: str) -> int:
        """Delete what is kept about the person outside the log and the views, by their blind
        index (their browser sessions); how many rows."""
        return 0

    @abc.abstractmethod
    def purge(self, aggregates: list[UUID], subjects: Sequence[UUID] = ()) -> dict[str, int]:
        """Replace the plain copies of these aggregates' fields (views, the published feed,
        webhook deliveries), and of the batches holding elements of ``subjects`` (disbursement
        batches, tax rolls), with what the log reads for them now; how many rows, by kind."""


# -- counter appointments -------------------------------------------------------------------------


class AppointmentViews(abc.ABC):
    """Port: reads of the appointments view (README "Appointments")."""

    @abc.abstractmethod
    async def get(self, appointment_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(document, access fields)`` of one appointment, or None when the view lacks it."""

    @abc.abstractmethod
    async def list(self, *, organization: str | None, applicant: str | None, service: str | None, status: str | None,
                   since: datetime | None, until: datetime | None, limit: int, after: tuple[Any, ...] | None) -> list[dict[str, Any]]:
        """Appointments by start time (then id), narrowed by the filters, after a cursor."""

    @abc.abstractmethod
    async def seats_taken(self, organization: str, service: str, since: datetime, until: datetime) -> dict[datetime, int]:
        """Seats held per slot start (bookings not cancelled) between two times."""


# -- the money trail -------------------------------------------------------------------------------


class MoneyTrailQueries(abc.ABC):
    """Receipts, reconciliations and revenue, read from the views (asyncpg)."""

    @abc.abstractmethod
    async def get_receipt(self, receipt_id: str) -> dict[str, Any] | None:
        """One receipt as clients see it, or None."""

    @abc.abstractmethod
    async def list_receipts(self, organization: str, fiscal_year: int, limit: int, after: int | None) -> list[dict[str, Any]]:
        """An organisation's receipts of a fiscal year in number order, after a sequence number."""

    @abc.abstractmethod
    async def receipts_on(self, organization: str, day: Any) -> list[dict[str, Any]]:
        """An organisation's receipts issued on a Bangkok day, in number order."""

    @abc.abstractmethod
    async def promptpay_receipts_on(self, day: Any) -> list[dict[str, Any]]:
        """Every receipt for money received by PromptPay on a Bangkok day (all organisations)."""

    @abc.abstractmethod
    async def payment_by_reference(self, reference: str) -> dict[str, Any] | None:
        """The newest payment with this Ref1 as ``{id, organization, status}``, or None."""


class BankSettlements(abc.ABC):
    """The bank's settlement file of a day: what it credited, one line per payment."""

    @abc.abstractmethod
    async def settlement(self, day: Any) -> list[dict[str, Any]]:
        """Lines ``{bank_payment_id, reference, amount_satang, paid_at, biller_id}`` of the day."""


class ReceiptPrinter(abc.ABC):
    """Prints a receipt as PDF."""

    @abc.abstractmethod
    def pdf(self, receipt: dict[str, Any], organization: dict[str, Any], verify_url: str) -> bytes:
        """The receipt as a one-page PDF with a QR that leads to ``verify_url``."""


class AggregateBatch(abc.ABC):
    """Many aggregates at their current version, read from the log in one query (a use case
    that records many answers at once loads what they touch together)."""

    @abc.abstractmethod
    def load(self, aggregate_ids: list[UUID]) -> dict[UUID, Any]:
        """The aggregates of ``aggregate_ids`` that exist, by ID (a missing one is left out)."""
