"""What each job does: call the outside system, then record the result as an application
command. Safe to run twice: a finished job is skipped, outside calls carry the job's id as
their idempotency key, and the application ignores a result it has already recorded."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Awaitable, Callable
from uuid import UUID

from application.allowance import transfer_key
from application.back_office import BackOffice
from application.errors import NotFound, OutsideCallRefused
from application.jobs import Job, ALLOWANCE_KINDS
from application.ports import CivilRegistry, JobsLedger, PaymentGateway, AllowanceRegister, BulkTransfers, RegistryBatch
from domain.allowance import chunks
from domain.actors import Actor
from domain.catalogue import SERVICES
from domain.payment import AWAITING_PAYMENT
from domain.service_request import APPROVED, VERIFYING
from workers.errors import ForeignJob, NotDueYet, OutsideCallFailedForLines

log = logging.getLogger("onestop.worker")
WORKER = Actor(sub="onestop-worker", role="system")


@dataclass
class JobRuntime:
    app: BackOffice
    registry: CivilRegistry
    gateway: PaymentGateway
    store: JobsLedger
    threads: int = 16
    # This worker's database (infrastructure.jobs.database_identity.database_marker); messages
    # marked for another are refused.
    database_marker: str = ""
    # The elderly-allowance run: the registry's bulk status check, the bank's bulk transfers,
    # and the register view the run reads.
    status_checks: RegistryBatch | None = None
    transfers: BulkTransfers | None = None
    register: AllowanceRegister | None = None
    status_batch: int = 5000
    _executor: ThreadPoolExecutor | None = field(default=None, init=False)
    _done: list[Job] = field(default_factory=list, init=False)
    _done_context: dict[UUID, tuple[str | None, datetime | None]] = field(default_factory=dict, init=False)
    _flusher: asyncio.Future[None] | None = field(default=None, init=False)
    _answers: list[tuple[Any, dict[str, Any], asyncio.Future[None]]] = field(default_factory=list, init=False)
    _recorder: asyncio.Future[None] | None = field(default=None, init=False)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        # The application is synchronous: run it on threads of our own, as many as the worker
        # has, so that the event loop stays free for the jobs waiting on outside systems.
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="onestop-job")
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    async def check_known(self, job: Job, marker: str | None) -> None:
        """Refuse (ForeignJob) a job of another database: marked for another, or, unmarked (sent
        before messages carried the mark), naming an aggregate this database does not have."""
        if marker is not None:
            if self.database_marker and marker != self.database_marker:
                raise ForeignJob(f"job {job.id} ({job.kind}) is for database {marker}, this worker's is {self.database_marker}")
            return
        try:
            if job.payment_id is not None:
                await self._call(self.app.get_payment, job.payment_id)
            elif job.request_id is not None:
                await self._call(self.app.get_request, job.request_id)
        except NotFound:
            raise ForeignJob(f"job {job.id} ({job.kind}) names an aggregate this database does not have") from None

    async def run(self, job: Job, attempt: int = 1, *, organization: str | None = None, sent_at: datetime | None = None) -> None:
        """Run ``job``. ``organization`` and ``sent_at`` (what its message says) complete the
        job's row when the worker writes it before the dispatcher does."""
        # Each handler first checks the aggregate and returns if the work is already recorded,
        # so a job delivered again after it finished does nothing.
        handler: Callable[[Job], Awaitable[None]] = getattr(self, f"_{job.kind}")
        try:
            await handler(job)
        except OutsideCallRefused as refused:
            # The outside system said no for good: retrying cannot help; officers must look.
            await self.give_up(job, f"refused: {refused}")
            return
        except Exception as error:
            await self._call(self.store.note_error, job, f"attempt {attempt}: {type(error).__name__}: {error}")
            raise
        self._mark_done(job, organization, sent_at)

    def _mark_done(self, job: Job, organization: str | None = None, sent_at: datetime | None = None) -> None:
        # Done marks are written in batches: one statement for the jobs finished in ~50 ms.
        self._done.append(job)
        if organization is not None or sent_at is not None:
            self._done_context[job.id] = (organization, sent_at)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_done())

    async def _flush_done(self) -> None:
        await asyncio.sleep(0.05)
        while self._done:
            batch, self._done = self._done, []
            context = {job.id: self._done_context.pop(job.id) for job in batch if job.id in self._done_context}
            await self._call(self.store.finish_many, batch, context)

    async def close(self) -> None:
        """Write the last done marks; close the outside systems' HTTP sessions (on the loop
        that opened them)."""
        if self._flusher is not None:
            await self._flusher
        await self._flush_done()
        for port in (self.registry, self.gateway):
            http = getattr(port, "http", None)
            if http is not None:
                await http.close()

    async def give_up(self, job: Job, reason: str) -> None:
        """Retries ran out (or the outside system refused): record it where officers see it."""
        await self._call(self.store.fail, job, reason)
        if job.kind in ALLOWANCE_KINDS:
            await self._call(self.app.fail_run, UUID(dict(job.facts)["run_id"]), f"{job.kind}: {reason[:480]}", WORKER)
            return
        request_id = job.request_id
        if request_id is None and job.payment_id is not None:
            request_id = (await self._call(self.app.get_payment, job.payment_id)).request_id
        if request_id is not None:
            await self._call(self.app.record_job_failure, request_id, job.kind, str(job.id), reason[:500], WORKER)

    async def _verify_applicant(self, job: Job) -> None:
        facts = dict(job.facts)
        if "national_id" not in facts:
            request = await self._call(self.app.get_request, job.request_id)
            if request.status != VERIFYING:
                return
            facts = {"national_id": request.applicant["national_id"], **({"to_house_id": request.details["to_house_id"]} if request.service == "civil.address-change" else {})}
        # Asking again after the answer was recorded costs one call and changes nothing: the
        # registry replays it for the same key, and recording it again is ignored.
        if "to_house_id" in facts:
            # Both houses must be known: the one the person leaves is in their record. The two
            # calls are independent (a read of the house has no effect), so they wait together.
            house = asyncio.ensure_future(self.registry.read_house(facts["to_house_id"]))
            # Its outcome is read even when the verification fails first and it is dropped
            # (no "exception never retrieved" then).
            house.add_done_callback(lambda task: task.cancelled() or task.exception())
            try:
                result = await self.registry.verify_person(facts["national_id"], str(job.id))
            except BaseException:
                house.cancel()
                raise
            result = {**result, "to_house": await house}
        else:
            result = await self.registry.verify_person(facts["national_id"], str(job.id))
        await self._record_verification(job.request_id, result)

    async def _record_verification(self, request_id: Any, result: dict[str, Any]) -> None:
        """Answers that arrive together are recorded in one transaction."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._answers.append((request_id, result, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.ensure_future(self._record_answers())
        await done

    async def _record_answers(self) -> None:
        await asyncio.sleep(0.005)
        while self._answers:
            batch, self._answers = self._answers[:200], self._answers[200:]
            try:
                await self._call(self.app.record_verifications, [(r, a) for r, a, _ in batch], WORKER)
            except Exception as error:
                for _, _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _fulfil(self, job: Job) -> None:
        request = await self._call(self.app.get_request, job.request_id)
        if request.status != APPROVED:
            return
        key, nid, details = str(job.id), request.applicant["national_id"], request.details
        fulfilment = SERVICES[request.service].fulfilment
        if fulfilment == "record_move":
            answer = await self.registry.record_move(nid, details["to_house_id"], details.get("move_date"), key)
            result = {"move_id": answer.get("move_id"), "to_house_id": answer.get("to_house_id")}
        elif fulfilment == "allocate_house_number":
            answer = await self.registry.allocate_house_number(nid, details["building_permit_no"], details["address"], request.organization, key)
            result = {"house_id": answer.get("house_id")}
        elif fulfilment == "issue_certified_copy":
            answer = await self.registry.issue_certified_copy(nid, details["document"], int(details["copies"]), key)
            result = {"document_ref": answer.get("document_ref")}
        else:
            return
        await self._call(self.app.record_fulfilment, request.id, result, WORKER)

    async def _create_charge(self, job: Job) -> None:
        payment = await self._call(self.app.get_payment, job.payment_id)
        if payment.charge_id is not None or payment.status != AWAITING_PAYMENT:
            return
        charge = await self.gateway.create_charge(payment.reference, payment.amount_satang, payment.expires_at, str(job.id))
        await self._call(self.app.record_charge, payment.id, charge["charge_id"], WORKER)

    async def _expire_payment(self, job: Job) -> None:
        payment = await self._call(self.app.get_payment, job.payment_id)
        if payment.status != AWAITING_PAYMENT:
            return
        if payment.expires_at > self.app.clock.now():
            raise NotDueYet(f"payment {payment.id} expires at {payment.expires_at.isoformat()}")
        await self._call(self.app.expire_payment, payment.id, WORKER)

    async def _refund(self, job: Job) -> None:
        payment = await self._call(self.app.get_payment, job.payment_id)
        if not payment.refund_due:
            return
        reason = "paid after the payment expired"
        refund = await self.gateway.refund(payment.reference, payment.paid_amount_satang, reason, str(job.id))
        await self._call(self.app.record_refund, payment.id, refund["refund_id"], reason, WORKER)

    async def _allowance_plan(self, job: Job) -> None:
        """Ask the registry about every recipient in bulk, then save the run's plan and batches."""
        facts = dict(job.facts)
        rid, attempt = UUID(facts["run_id"]), int(facts["attempt"])
        run = await self._call(self.app.get_run, rid)
        if attempt in run.planned_attempts or run.failure is not None:
            return
        assert self.register is not None and self.status_checks is not None, "the allowance ports are not configured"
        # The view must hold every recipient registered before the run started: bring it up to
        # the end of the log (the run's Started event is already in it, or this job would not exist).
        await self._call(self.register.catch_up)
        rows = await self._call(self.register.recipients, run.organization)
        statuses: dict[str, Any] = {}
        if attempt == 0 and rows:
            ids = [row["national_id"] for row in rows]
            gate = asyncio.Semaphore(4)

            async def check(chunk: list[str]) -> list[dict[str, Any]]:
                async with gate:
                    return await self.status_checks.people_status(chunk)  # type: ignore[union-attr]

            answers = await asyncio.gather(*(check(list(c)) for c in chunks(ids, self.status_batch)))
            statuses = {a["national_id"]: a for answer in answers for a in answer}
        await self._call(self.app.plan_run, rid, attempt, rows, statuses, WORKER)

    async def _allowance_pay(self, job: Job) -> None:
        """Send one batch to the bank and record its answer per line."""
        bid = UUID(dict(job.facts)["batch_id"])
        batch = await self._call(self.app.get_batch, bid)
        if batch.settled:
            return
        assert self.transfers is not None, "the bank's bulk transfers are not configured"
        keys = [transfer_key(line[0], batch.month) for line in batch.lines]
        lines = [{"key": key, "amount_satang": line[3], "kind": line[4], "account": line[5], "reference": f"OSA{batch.month.replace('-', '')}"}
                 for key, line in zip(keys, batch.lines)]
        answers = {a["key"]: a for a in await self.transfers.bulk_transfer(batch.value_date, lines)}
        missing = [k for k in keys if k not in answers]
        if missing:
            raise OutsideCallFailedForLines(f"the bank did not answer {len(missing)} lines of batch {bid}")
        results = [[line[0], answers[key]["status"], answers[key].get("reason"), answers[key].get("transfer_id")]
                   for key, line in zip(keys, batch.lines)]
        await self._call(self.app.settle_batch, bid, results, WORKER)


def job_from_message(job_id: str, kind: str, request_id: str | None, payment_id: str | None, facts: dict[str, str] | None = None) -> Job:
    return Job(UUID(job_id), kind, UUID(request_id) if request_id else None, UUID(payment_id) if payment_id else None,
               facts=tuple(sorted((facts or {}).items())))

