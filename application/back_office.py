"""The BackOffice application: one method per use case (load, decide, save).

Requests and their payments live in one application, so that a payment and the request it moves
on are saved in one transaction, and the whole back office has one ordered event log.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from time import perf_counter
from typing import Any, Sequence
from uuid import UUID, uuid4, uuid5

from eventsourcing.persistence import IntegrityError, Recording

from application.access import ON_BEHALF_FIELD, check_assurance, check_can_act, check_can_submit
from application.allowance import ELDERLY_ALLOWANCE, AllowanceOffice
from application.appointments import AppointmentBook
from application.commands import ACTION_SCHEMAS, RECORD_CASH_SCHEMA, SubmitCommand
from application.errors import IdempotencyKeyReused, StaleVersion
from application.ids import ID_NAMESPACE
from application.land_tax import LandTaxOffice, notice_document, notice_row
from application.outcomes import Outcome
from application.ports import AggregateBatch
from application.outside_results import OutsideResults, verification_facts
from application.json_schema import check
from application.presentation import describe_payment, describe_request
from domain.actors import Actor
from domain.calendar import bangkok_day
from domain.catalogue import SERVICES, Service
from domain.eligibility import age_on, monthly_elderly_allowance_satang, registry_refusal
from domain.errors import InvalidCommand, OneStopError, TransitionNotAllowed
from domain.land_tax import land_building_tax_satang
from domain.payment import AWAITING_PAYMENT as PAYMENT_OPEN, Payment
from domain.promptpay import bank_reference, bill_payment_payload
from domain.service_request import VERIFYING, ServiceRequest
from domain.submission import check_submission


def access_fields(request: ServiceRequest) -> dict[str, Any]:
    return {
        "organization": request.organization,
        "filed_at": request.filed_at,
        "applicant_national_id": request.applicant["national_id"],
    }


class BackOffice(AppointmentBook, LandTaxOffice, OutsideResults, AllowanceOffice):
    name = "OneStop"
    # Loads many aggregates in one query (set by the composition root on PostgreSQL); without
    # one, each is loaded on its own.
    aggregate_batch: AggregateBatch | None = None

    # -- submit ------------------------------------------------------------------------------

    def submit(self, command: SubmitCommand) -> Outcome:
        result = self.submit_many([command])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def submit_many(self, commands: Sequence[SubmitCommand], *, timings: dict[str, float] | None = None) -> list[Outcome | Exception]:
        """File many requests in one transaction (the write lock is per transaction, so this is
        how concurrent submissions share it). A conflict in the batch (a reused idempotency key)
        falls back to one transaction per request, so one bad command fails alone. ``timings``,
        when given, receives the seconds spent validating and deciding (``validate``) and in the
        event store (``store``)."""
        started = perf_counter()
        at = self.clock.now()
        results: list[Outcome | Exception | None] = [None] * len(commands)
        references = iter(self.references.issue(len(commands), at))
        prepared: list[tuple[int, str, list[Any]]] = []
        for i, command in enumerate(commands):
            reference = next(references)
            try:
                prepared.append((i, reference, self._prepare_submission(command, reference)))
            except OneStopError as error:
                results[i] = error
        decided = perf_counter()
        if prepared:
            try:
                recordings = self.save(*[a for _, _, aggregates in prepared for a in aggregates])
            except IntegrityError:
                for i, reference, _ in prepared:
                    results[i] = self._submit_alone(commands[i], reference)
            else:
                positions = _positions(recordings)
                for i, _, aggregates in prepared:
                    results[i] = self._outcome(aggregates, positions)
        if timings is not None:
            timings["validate"] = decided - started
            timings["store"] = perf_counter() - decided
        return [r for r in results if r is not None]

    def _submit_alone(self, command: SubmitCommand, reference: str) -> Outcome | Exception:
        try:
            aggregates = self._prepare_submission(command, reference)
            return self._outcome(aggregates, _positions(self.save(*aggregates)))
        except IntegrityError:
            return self._replay(command)
        except OneStopError as error:
            return error

    def _outcome(self, aggregates: list[Any], positions: dict[UUID, int]) -> Outcome:
        request = aggregates[0]
        payment = aggregates[1] if len(aggregates) > 1 else None
        position = max(positions.get(a.id, 0) for a in aggregates)
        return Outcome(describe_request(request, payment, position))

    def _request_id(self, command: SubmitCommand) -> UUID:
        if command.idempotency_key is None:
            return uuid4()
        return uuid5(ID_NAMESPACE, f"request\n{command.actor.sub}\n{command.idempotency_key}")

    def _prepare_submission(self, command: SubmitCommand, reference: str, *, appointment_id: UUID | None = None) -> list[Any]:
        submission = check_submission(command.body, self.directory, check)
        actor = command.actor
        filed_at = submission.filed_at.code
        if actor.role == "officer" and not (isinstance(command.body, dict) and command.body.get("filed_at")):
            # An officer files at their own counter unless they say otherwise.
            filed_at = actor.org or filed_at
        check_can_submit(actor, submission.applicant["national_id"], filed_at, submission.channel)
        check_assurance(actor, submission.service.code, submission.service.min_ial)
        if filed_at not in self.directory:
            raise InvalidCommand("unknown organisation", [("filed_at", f"{filed_at} is not a known organisation")])
        at = self.clock.now()
        request = ServiceRequest.file(
            id=self._request_id(command),
            at=at,
            actor=actor,
            channel=submission.channel,
            reference=reference,
            service=submission.service.code,
            organization=submission.organization.code,
            filed_at=filed_at,
            applicant=submission.applicant,
            details=submission.details,
            due_at=at + timedelta(days=submission.service.sla_days),
            request_hash=command.request_hash,
            **({"appointment_id": appointment_id} if appointment_id is not None else {}),
        )
        payment = self._advance(request, submission.service, actor, submission.channel, at)
        return [request, payment] if payment else [request]

    def _replay(self, command: SubmitCommand) -> Outcome | Exception:
        """The same key came again: the same body replays the first response."""
        request = self.get_request(self._request_id(command))
        if request.request_hash != command.request_hash:
            return IdempotencyKeyReused("this Idempotency-Key was used with a different body")
        # The first response is the state after the first save, whose events share one time.
        events = list(self.repository.event_store.get(request.id))
        first_version = max(e.originator_version for e in events if e.timestamp == events[0].timestamp)
        first = self.get_request(request.id, version=first_version)
        payment = None
        if first.payment_id is not None:
            payment = self.get_payment(first.payment_id, version=1)
        return Outcome(describe_request(first, payment, self.recorder.max_notification_id()), replayed=True)

    def _advance(self, request: ServiceRequest, service: Service, actor: Actor, channel: str, at: datetime) -> Payment | None:
        """Move a request to its next waiting state: the registry, the cashier or an officer."""
        if service.needs_verification and not request.verified:
            request.start_verification(actor, channel, at)
            return None
        fee = service.fee_satang(request.details, self.directory.get(request.organization), self.fees_on(at))  # type: ignore[arg-type]
        if fee > 0 and not request.paid:
            return self._open_payment(request, fee, actor, channel, at)
        request.start_review(actor, channel, at)
        return None

    def _open_payment(self, request: ServiceRequest, amount_satang: int, actor: Actor, channel: str, at: datetime) -> Payment:
        # The payment's reference is what goes to the bank as Ref1, so it is the bank-safe form
        # (the same as the request's for references issued since the rule).
        ref1 = bank_reference(request.reference)
        payment = Payment.open(
            id=uuid5(ID_NAMESPACE, f"payment\n{request.id}\n{request.version}"),
            at=at,
            actor=actor,
            channel=channel,
            request_id=request.id,
            reference=ref1,
            organization=request.organization,
            amount_satang=amount_satang,
            promptpay_payload=bill_payment_payload(biller_id=self.biller_id, ref1=ref1, amount_satang=amount_satang),
            expires_at=at + timedelta(hours=self.fees_on(at).payment_validity_hours),
        )
        request.assess_fee(amount_satang, payment.id, actor, channel, at)
        return payment

    # -- officers' and applicants' actions ---------------------------------------------------

    def act(self, request_id: UUID, action: str, body: Any, actor: Actor, channel: str, if_match: int | None) -> Outcome:
        """Apply one named action to a request, if the actor may and the rules allow."""
        if action not in ACTION_SCHEMAS:
            raise InvalidCommand(f"unknown action {action!r}", [("action", "must be one of " + ", ".join(ACTION_SCHEMAS))])
        errors = check(ACTION_SCHEMAS[action], body)
        if errors:
            raise InvalidCommand(f"the body does not fit the {action} action", errors)
        request = self.get_request(request_id)
        on_behalf = body.get(ON_BEHALF_FIELD) is True
        check_can_act(actor, action, access_fields(request), on_behalf_of_applicant=on_behalf)
        if request.service in SERVICES:
            check_assurance(actor, request.service, SERVICES[request.service].min_ial)
        if if_match is not None and if_match != request.version:
            raise StaleVersion(f"the request is at version {request.version}, not {if_match}", request.version)
        payment = self.get_payment(request.payment_id) if request.payment_id else None
        at = self.clock.now()
        changed: list[Any] = [request]
        if action == "assign":
            request.assign(body["officer"], actor, channel, at)
        elif action == "request-info":
            request.request_info(body["message"], actor, channel, at)
        elif action == "provide-info":
            request.provide_info(body["message"], actor, channel, at, on_behalf_of_applicant=on_behalf)
        elif action == "approve":
            request.approve(body.get("note"), actor, channel, at)
            if request.service == ELDERLY_ALLOWANCE:
                recipient = self._register_recipient(request, actor, at)
                if recipient is not None:
                    changed.append(recipient)
        elif action == "complete":
            if SERVICES[request.service].fulfilment:
                raise TransitionNotAllowed("this service is completed by the civil registry, not by hand")
            request.complete({"note": body.get("note")}, actor, channel, at)
        elif action in ("reject", "withdraw"):
            if action == "reject":
                request.reject(body["reason"], actor, channel, at)
            else:
                request.withdraw(body.get("reason"), actor, channel, at, on_behalf_of_applicant=on_behalf)
            if payment is not None and payment.status == PAYMENT_OPEN:
                payment.expire(f"request {request.status}", actor, channel, at)
                changed.append(payment)
        elif action == "assess-fee":
            payment = self._open_payment(request, self._assessed_fee(request, body), actor, channel, at)
            changed.append(payment)
        elif action == "retry":
            request.retry(actor, channel, at)
        position = self._save(*changed)
        return Outcome(describe_request(request, payment, position))

    def _assessed_fee(self, request: ServiceRequest, body: dict[str, Any]) -> int:
        if "assessed_value_satang" in body:
            if request.service != "local.land-building-tax":
                raise InvalidCommand("only land and building tax is assessed from a value", [("assessed_value_satang", "is for local.land-building-tax only")])
            if "land_use" not in body:
                raise InvalidCommand("the land use is needed to assess the tax", [("land_use", "is required with assessed_value_satang")])
            amount = land_building_tax_satang(body["assessed_value_satang"], body["land_use"], self.fees_on(self.clock.now()).land_tax,
                                              vacant_years=body.get("vacant_years", 0))
            if amount <= 0:
                raise TransitionNotAllowed("the assessed tax is nothing (exempt): reject or complete the request instead")
            return amount
        if "amount_satang" not in body:
            raise InvalidCommand("give the fee, or an assessed value and land use", [("amount_satang", "is required")])
        return int(body["amount_satang"])

    # -- payments ----------------------------------------------------------------------------

    def record_cash(self, payment_id: UUID, body: Any, actor: Actor, if_match: int | None) -> Outcome:
        """An officer takes the fee in cash at a counter; the receipt is issued with it."""
        return self.retrying(lambda: self._record_cash(payment_id, body, actor, if_match))

    def _record_cash(self, payment_id: UUID, body: Any, actor: Actor, if_match: int | None) -> Outcome:
        errors = check(RECORD_CASH_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit record-cash", errors)
        payment = self.get_payment(payment_id)
        if payment.notice_id is not None:
            return self._record_notice_cash(payment, body, actor, if_match)
        request = self.get_request(payment.request_id)  # type: ignore[arg-type]
        check_can_act(actor, "record-cash", access_fields(request))
        if if_match is not None and if_match != payment.version:
            raise StaleVersion(f"the payment is at version {payment.version}, not {if_match}", payment.version)
        at = self.clock.now()
        payment.receive(body["amount_satang"], "cash", None, actor, "counter", at)
        request.settle_payment(payment.id, actor, "counter", at)
        position = self._save(payment, request, *self._issue_receipt(payment, request, actor, "counter", at))
        return Outcome(describe_payment(payment, position), related=describe_request(request, payment, position))

    def _record_notice_cash(self, payment: Payment, body: dict[str, Any], actor: Actor, if_match: int | None) -> Outcome:
        notice = self.get_notice(payment.notice_id)  # type: ignore[arg-type]
        # Cash for a tax notice: taken by an officer of the organisation that issued it.
        check_can_act(actor, "record-cash", {"organization": notice.organization, "filed_at": notice.organization,
                                             "applicant_national_id": notice.owner_id})
        if if_match is not None and if_match != payment.version:
            raise StaleVersion(f"the payment is at version {payment.version}, not {if_match}", payment.version)
        at = self.clock.now()
        payment.receive(body["amount_satang"], "cash", None, actor, "counter", at)
        notice = self._settle_notice(payment, actor, "counter", at)
        position = self._save(payment, notice, *self._issue_notice_receipt(payment, notice, actor, "counter", at))
        return Outcome(describe_payment(payment, position), related=notice_document(notice_row(notice, position), bangkok_day(at)))

    def record_verification(self, request_id: UUID, result: dict[str, Any], actor: Actor) -> Outcome:
        """The registry answered about the applicant. A result already recorded is ignored."""
        return self.record_verifications([(request_id, result)], actor)[0]

    def record_verifications(self, answers: Sequence[tuple[UUID, dict[str, Any]]], actor: Actor) -> list[Outcome]:
        """Record many registry answers in one transaction (workers coalesce them, since the
        write lock is taken per transaction). The requests and their payments are loaded
        together (one query each with an ``aggregate_batch``). If the batch conflicts with
        another writer, each answer is recorded on its own."""
        loaded = self._load_requests([request_id for request_id, _ in answers])
        prepared = [self._apply_verification(request_id, result, actor, loaded) for request_id, result in answers]
        changed = list({id(a): a for _, aggregates in prepared for a in aggregates}.values())
        try:
            recordings = self.save(*changed) if changed else []
        except IntegrityError:
            if len(answers) == 1:
                raise StaleVersion("the request was changed by someone else; reload and try again") from None
            return [self.record_verifications([answer], actor)[0] for answer in answers]
        positions = _positions(recordings)
        return [
            Outcome(outcome.state | {"position": max((positions.get(a.id, 0) for a in aggregates), default=None)}, replayed=outcome.replayed)
            for outcome, aggregates in prepared
        ]

    def _load_requests(self, request_ids: list[UUID]) -> dict[UUID, Any]:
        """The requests of ``request_ids`` and their payments, by ID; a request that is not
        there is left out (the use case then says NotFound). Answers about one request share
        its aggregate, so the second finds it already recorded."""
        batch = self.aggregate_batch
        if batch is None or len(request_ids) < 2:
            return {}
        loaded = {k: v for k, v in batch.load(request_ids).items() if isinstance(v, ServiceRequest)}
        payment_ids = [r.payment_id for r in loaded.values() if r.payment_id]
        if payment_ids:
            loaded.update({k: v for k, v in batch.load(payment_ids).items() if isinstance(v, Payment)})
        return loaded

    def _apply_verification(self, request_id: UUID, result: dict[str, Any], actor: Actor,
                            loaded: dict[UUID, Any] | None = None) -> tuple[Outcome, list[Any]]:
        loaded = {} if loaded is None else loaded
        request = loaded.get(request_id) or self.get_request(request_id)
        loaded[request_id] = request
        payment = None
        if request.payment_id:
            payment = loaded.get(request.payment_id) or self.get_payment(request.payment_id)
            loaded[request.payment_id] = payment
        if request.status != VERIFYING:
            return Outcome(describe_request(request, payment, None), replayed=True), []
        at = self.clock.now()
        result = verification_facts(request.service, result)
        day = bangkok_day(at)
        allowance = self.allowance_rules(day, request.organization)
        refusal = registry_refusal(request.service, request.organization, result, day, allowance, request.details)
        if refusal is None:
            registry = dict(result)
            if request.service == "welfare.elderly-allowance":
                age = age_on(date.fromisoformat(result["birth_date"]), bangkok_day(at))
                registry["monthly_allowance_satang"] = monthly_elderly_allowance_satang(max(age, allowance.min_age), allowance)
            request.record_verification(registry, actor, at)
            payment = self._advance(request, SERVICES[request.service], actor, "system", at) or payment
            if payment is not None:
                loaded[payment.id] = payment
        else:
            request.reject(f"civil registry: {refusal}", actor, "system", at)
        return Outcome(describe_request(request, payment, None)), [a for a in (request, payment) if a is not None]


def _positions(recordings: list[Recording]) -> dict[UUID, int]:
    positions: dict[UUID, int] = {}
    for recording in recordings:
        event_id = recording.domain_event.originator_id
        positions[event_id] = max(positions.get(event_id, 0), recording.notification.id)
    return positions
