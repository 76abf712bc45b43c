"""Use cases that record what the registry and the bank answered.

Each is safe to run twice: a result already recorded is ignored, so a job that is re-run after
a crash, or a notice the bank sends twice, changes nothing the second time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Callable
from uuid import UUID, uuid5

from application.receipts import Receipts
from application.reconciliation import Reconciliations
from application.ids import ID_NAMESPACE
from application.outcomes import Outcome
from application.presentation import describe_payment, describe_request
from domain.actors import Actor
from eventsourcing.persistence import IntegrityError

from domain.payment import AWAITING_PAYMENT, EXPIRED, PAID, Payment, UnmatchedPayment
from domain.service_request import APPROVED


# What the registry's answer about an applicant may leave in the log: only the facts the rules
# need (see domain.eligibility). Names, other people and anything else the answer carries stay
# out, whatever the registry sends.
VERIFICATION_FIELDS = ("found", "alive", "reason", "house_id", "organization")
# The birth date only where the age decides (the elderly allowance).
# The birth date and the facts the allowance's eligibility criteria read (rules file
# [[elderly_allowance_criterion]]) only where they decide (the elderly allowance).
VERIFICATION_FIELDS_BY_SERVICE = {"welfare.elderly-allowance": ("birth_date", "nationality", "state_pension", "regular_state_pay",
                                                                "in_state_care", "annual_income_baht")}
HOUSE_FIELDS = ("house_id", "organization")
FULFILMENT_FIELDS = ("move_id", "to_house_id", "house_id", "document_ref")


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, bool, int, float)) else None


def _iso_date(value: Any) -> str | None:
    try:
        return value if isinstance(value, str) and value.isascii() and date.fromisoformat(value) and len(value) == 10 else None
    except ValueError:
        return None


def verification_facts(service: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The named fields of a registry verification answer that the request keeps (a birth
    date that is not a date is kept as none, which the rules treat as not given)."""
    names = VERIFICATION_FIELDS + VERIFICATION_FIELDS_BY_SERVICE.get(service, ())
    facts = {name: _scalar(answer.get(name)) for name in names if name in answer}
    if "birth_date" in facts:
        facts["birth_date"] = _iso_date(facts["birth_date"])
    if "to_house" in answer:
        house = answer["to_house"]
        facts["to_house"] = {n: _scalar(house.get(n)) for n in HOUSE_FIELDS if n in house} if isinstance(house, dict) else None
    return facts


def fulfilment_facts(answer: dict[str, Any]) -> dict[str, Any]:
    """The named fields of a registry fulfilment answer that the request keeps."""
    return {name: _scalar(answer[name]) for name in FULFILMENT_FIELDS if name in answer}


class OutsideResults(Receipts, Reconciliations):
    """The use cases that record outside answers; BackOffice builds on them."""

    def record_fulfilment(self, request_id: UUID, result: dict[str, Any], actor: Actor) -> Outcome:
        """The registry did what an approved request asked: the request is completed."""
        request = self.get_request(request_id)
        if request.status != APPROVED:
            return Outcome(describe_request(request, None, None), replayed=True)
        request.complete(fulfilment_facts(result), actor, "system", self.clock.now())
        return Outcome(describe_request(request, None, self._save(request)))

    def record_charge(self, payment_id: UUID, charge_id: str, actor: Actor) -> None:
        payment = self.get_payment(payment_id)
        if payment.charge_id is not None:
            return
        payment.record_charge(charge_id, actor, self.clock.now())
        self._save(payment)

    def expire_payment(self, payment_id: UUID, actor: Actor) -> bool:
        """The payment's time ran out. True when it was still open and now is expired."""
        payment = self.get_payment(payment_id)
        if payment.status != AWAITING_PAYMENT or payment.expires_at > self.clock.now():
            return False
        payment.expire("not paid before it expired", actor, "system", self.clock.now())
        self._save(payment)
        return True

    def record_refund(self, payment_id: UUID, refund_id: str, reason: str, actor: Actor) -> None:
        payment = self.get_payment(payment_id)
        if not payment.refund_due and payment.status != PAID:
            return
        payment.refund(refund_id, reason, actor, self.clock.now())
        self._save(payment)

    def record_job_failure(self, request_id: UUID, job: str, job_id: str, reason: str, actor: Actor) -> None:
        """A job ran out of retries: officers see it on the request until someone retries."""
        request = self.get_request(request_id)
        if request.action_required and request.action_required.get("job_id") == job_id:
            return
        request.require_action(job, job_id, reason, actor, self.clock.now())
        self._save(request)

    def record_bank_payment(
        self, payment_id: UUID, *, reference: str, amount_satang: int, provider_payment_id: str, actor: Actor
    ) -> tuple[str, Outcome]:
        """The bank says money arrived for this payment (a PromptPay notice).

        The same provider payment twice is one payment. Money that does not match what is owed
        is recorded as a discrepancy and moves nothing; money after expiry is to be refunded.
        Money received gets its receipt in the same transaction.
        Returns the verdict ("recorded", "duplicate", "discrepancy", "refund_due") and the outcome.
        """
        return self.retrying(lambda: self._record_bank_payment(payment_id, reference, amount_satang, provider_payment_id, actor))

    def _record_bank_payment(self, payment_id: UUID, reference: str, amount_satang: int, provider_payment_id: str, actor: Actor) -> tuple[str, Outcome]:
        payment = self.get_payment(payment_id)
        if payment.notice_id is not None:
            return self._record_notice_bank_payment(payment, reference, amount_satang, provider_payment_id, actor)
        request = self.get_request(payment.request_id)  # type: ignore[arg-type]
        at = self.clock.now()
        if payment.has_seen(provider_payment_id):
            return "duplicate", Outcome(describe_payment(payment, None), replayed=True, related=describe_request(request, payment, None))
        def settle() -> list[Any]:
            request.settle_payment(payment.id, actor, "system", at)
            return [request, *self._issue_receipt(payment, request, actor, "system", at)]

        verdict, position = self._apply_bank_payment(payment, reference, amount_satang, provider_payment_id, actor, at, settle)
        return verdict, Outcome(describe_payment(payment, position), related=describe_request(request, payment, position))

    def _record_notice_bank_payment(self, payment: Payment, reference: str, amount_satang: int, provider_payment_id: str,
                                    actor: Actor) -> tuple[str, Outcome]:
        """The bank's notice for a tax notice's payment: as for a request's, but paying settles
        the notice's instalments (late payments included, with their penalties: never refunded)."""
        at = self.clock.now()
        if payment.has_seen(provider_payment_id):
            return "duplicate", Outcome(describe_payment(payment, None), replayed=True)
        if payment.status != AWAITING_PAYMENT or amount_satang != payment.amount_satang:
            # Every payment of a notice has its number as Ref1, and the views may not show
            # the newest yet: the notice knows which of its payments are open.
            other = self.get_notice(payment.notice_id).open_payment_for(amount_satang, str(payment.id))  # type: ignore[arg-type]
            if other is not None:
                candidate = self.get_payment(UUID(other))
                if candidate.has_seen(provider_payment_id):
                    return "duplicate", Outcome(describe_payment(candidate, None), replayed=True)
                if candidate.status == AWAITING_PAYMENT:
                    payment = candidate
        def settle() -> list[Any]:
            notice = self._settle_notice(payment, actor, "system", at)  # type: ignore[attr-defined]
            return [notice, *self._issue_notice_receipt(payment, notice, actor, "system", at)]

        verdict, position = self._apply_bank_payment(payment, reference, amount_satang, provider_payment_id, actor, at, settle)
        return verdict, Outcome(describe_payment(payment, position))

    def _apply_bank_payment(self, payment: Payment, reference: str, amount_satang: int, provider_payment_id: str, actor: Actor,
                            at: datetime, settle: Callable[[], list[Any]]) -> tuple[str, int | None]:
        """Apply the bank's notice to ``payment`` and save: a Ref1 that is not the payment's, a
        payment no longer open or another amount is a discrepancy that moves nothing; money
        after expiry is to be refunded; the amount owed is received, and ``settle()`` moves
        on what it pays for (returning the aggregates it changed). The verdict and position."""
        changed: list[Any] = [payment]
        verdict = "discrepancy"
        if reference != payment.reference:
            payment.record_discrepancy(amount_satang, provider_payment_id, f"Ref1 {reference} does not match {payment.reference}", actor, at)
        elif payment.status == EXPIRED:
            payment.receive_after_expiry(amount_satang, provider_payment_id, actor, at)
            verdict = "refund_due"
        elif payment.status != AWAITING_PAYMENT:
            payment.record_discrepancy(amount_satang, provider_payment_id, f"paid again; the payment is already {payment.status}", actor, at)
        elif amount_satang != payment.amount_satang:
            payment.record_discrepancy(amount_satang, provider_payment_id, f"{amount_satang} satang paid, {payment.amount_satang} owed", actor, at)
        else:
            payment.receive(amount_satang, "promptpay", provider_payment_id, actor, "system", at)
            changed += settle()
            verdict = "recorded"
        return verdict, self._save(*changed)

    def record_unmatched_payment(self, provider: str, provider_payment_id: str, reference: str, amount_satang: int, actor: Actor) -> bool:
        """Keep money that matches no payment; False when this notice was recorded before."""
        unmatched = UnmatchedPayment.record(
            id=uuid5(ID_NAMESPACE, f"unmatched\n{provider_payment_id}"), at=self.clock.now(), actor=actor,
            provider=provider, provider_payment_id=provider_payment_id, reference=reference, amount_satang=amount_satang,
        )
        try:
            self.save(unmatched)
        except IntegrityError:
            return False
        return True
