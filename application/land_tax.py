"""Land and building tax, the year's cycle: import the roll, issue notices, open payments for
what is due, record warnings, and settle a notice when its payment arrives.

Figures come from the rules file (rates in force on 1 January of the tax year, the year's
reduction and calendar) at the moment a notice is issued; the notice keeps them.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Sequence
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError

from application.access import STAFF
from application.base import BackOfficeBase, last_position
from application.errors import Forbidden, NotFound, StaleVersion
from application.ids import ID_NAMESPACE
from application.outcomes import Outcome
from application.presentation import describe_payment
from domain.actors import Actor
from domain.calendar import BANGKOK, BUDDHIST_ERA_OFFSET, bangkok_day
from domain.errors import InvalidCommand
from application.json_schema import check
from domain.land_tax import LAND_USES, OWNER_KINDS, Parcel, assess_owner, instalment_plan
from domain.national_id import is_valid_national_id, mask_national_id
from domain.payment import Payment
from domain.promptpay import bill_payment_payload
from domain.tax_notice import (NothingToPay, TaxNotice, due_on, instalment_statuses, notice_number, notice_status,
                               settle_all_on)
from domain.tax_roll import PARCEL_FIELDS, ParcelRow, TaxRoll

TAX_YEARS = (2563, 2700)  # Buddhist era: the Act's first year of collection, and far enough
# Notices per transaction. One save is one INSERT message; psycopg's pipeline stops (client and
# server each waiting for the other) once such a message passes about 10 MB, and a notice
# sealed per person is about 1.3 kB (3 MB of bytea as hex for 2,000).
NOTICE_BATCH = 2000
MAX_ROWS = 100_000  # rows per import call
_PARCEL_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z/._-]{0,39}")
_MAX_VALUE_SATANG = 10**15  # ten trillion baht: anything above is a typing mistake

PAYMENT_SCHEMA = {
    "type": "object",
    "properties": {"instalment": {"type": ["integer", "null"], "minimum": 1, "maximum": 3}},
    "additionalProperties": False,
}
WARNING_SCHEMA = {
    "type": "object",
    "properties": {
        "deadline": {"type": "string", "format": "date", "description": "the last day to pay that the warning sets"},
        "received_on": {"type": "string", "format": "date", "description": "the day the owner received it (default: today)"},
    },
    "required": ["deadline"],
    "additionalProperties": False,
}


def roll_id(organization: str, tax_year: int) -> UUID:
    return uuid5(ID_NAMESPACE, f"tax-roll\n{organization}\n{tax_year}")


def notice_id(organization: str, tax_year: int, owner_ref: str) -> UUID:
    """A tax notice's id, from its owner's keyed reference (``BackOfficeBase.subject_ref``), not
    their ID: nobody without the blind-index key can compute it from a national ID. Notices are
    issued once per owner through the roll's record of them, never found again by this id."""
    return uuid5(ID_NAMESPACE, f"tax-notice\n{organization}\n{tax_year}\n{owner_ref}")


def check_tax_year(tax_year: int) -> None:
    if not TAX_YEARS[0] <= tax_year <= TAX_YEARS[1]:
        raise InvalidCommand("tax_year is a Buddhist-era year", [("tax_year", f"must be from {TAX_YEARS[0]} to {TAX_YEARS[1]}")])


def parse_parcel(obj: Any) -> ParcelRow | list[tuple[str, str]]:
    """One roll row from a JSON object or a CSV record (strings): the row, or the fields wrong."""
    if not isinstance(obj, dict):
        return [("(row)", "must be an object")]
    errors: list[tuple[str, str]] = []

    def text(name: str, limit: int) -> str:
        value = obj.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append((name, "is required"))
            return ""
        if len(value) > limit:
            errors.append((name, f"is longer than {limit} characters"))
        return value.strip()

    def integer(name: str, lo: int, hi: int, default: int | None = None) -> int:
        value = obj.get(name)
        if value is None or value == "":
            if default is not None:
                return default
            errors.append((name, "is required"))
            return 0
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            errors.append((name, f"must be a whole number from {lo} to {hi}"))
            return 0
        return value

    parcel_id = text("parcel_id", 40)
    if parcel_id and not _PARCEL_ID.fullmatch(parcel_id):
        errors.append(("parcel_id", "may hold only letters, digits and / . _ -"))
    owner_kind = text("owner_kind", 20)
    if owner_kind and owner_kind not in OWNER_KINDS:
        errors.append(("owner_kind", "must be individual or juristic"))
    owner_id = text("owner_id", 13)
    if owner_id:
        if owner_kind == "individual" and not is_valid_national_id(owner_id):
            errors.append(("owner_id", "must be a valid 13-digit national ID"))
        elif not (len(owner_id) == 13 and owner_id.isascii() and owner_id.isdigit()):
            errors.append(("owner_id", "must be 13 digits (national ID or juristic person's registration number)"))
    owner_name = text("owner_name", 200)
    land_use = text("land_use", 20)
    if land_use and land_use not in LAND_USES:
        errors.append(("land_use", "must be one of " + ", ".join(LAND_USES)))
    value = integer("value_satang", 0, _MAX_VALUE_SATANG)
    vacant_years = integer("vacant_years", 0, 100, default=0)
    unknown = sorted(set(obj) - set(PARCEL_FIELDS))
    if unknown:
        errors.append((unknown[0], "is not a field of a roll row"))
    if errors:
        return errors
    return (parcel_id, owner_id, owner_kind, owner_name, land_use, value, vacant_years)


def end_of_bangkok_day(day: date) -> datetime:
    """The last moment of ``day`` in Bangkok, in UTC (times are stored in UTC)."""
    return (datetime.combine(day + timedelta(days=1), time(0), BANGKOK) - timedelta(microseconds=1)).astimezone(timezone.utc)


def can_see_notice(actor: Actor, organization: str, owner_id: str) -> bool:
    if actor.role == "citizen":
        return actor.pid is not None and actor.pid == owner_id
    if actor.role == "officer":
        return actor.org == organization
    return actor.role in ("auditor", "admin")


def notice_document(row: dict[str, Any], on: date, *, with_amount_due: bool = False, mask_owner: bool = False) -> dict[str, Any]:
    """The one shape of a notice clients see, from an aggregate's or a view row's figures, with
    the instalments' and the notice's status as of ``on``."""
    paid = row["paid_satang"]
    document = {
        "id": str(row["id"]),
        "number": row["number"],
        "tax_year": row["tax_year"],
        "organization": row["organization"],
        "owner_id": mask_national_id(row["owner_id"]) if mask_owner else row["owner_id"],
        "owner_kind": row["owner_kind"],
        "parcels": row["parcels"],
        "tax_satang": row["tax_satang"],
        "reduction_satang": row["reduction_satang"],
        "due_date": str(row["due_date"]),
        "instalments": instalment_statuses(row["instalments"], paid, on),
        "status": notice_status(row["tax_satang"], str(row["due_date"]), row["instalments"], paid, row["warning"], on),
        "paid_satang": paid,
        "warning": row["warning"],
        "version": row["version"],
        "position": row.get("position"),
    }
    if with_amount_due:
        due = due_on(row["tax_satang"], str(row["due_date"]), row["instalments"], paid, row["warning"], on)
        document["amount_due"] = {"on": on.isoformat(), "tax_satang": due.tax_satang, "surcharge_satang": due.surcharge_satang,
                                  "interest_satang": due.interest_satang, "total_satang": due.total_satang}
    return document


def notice_row(notice: TaxNotice, position: int | None = None) -> dict[str, Any]:
    return {
        "id": notice.id, "number": notice.number, "tax_year": notice.tax_year, "organization": notice.organization,
        "owner_id": notice.owner_id, "owner_kind": notice.owner_kind, "parcels": notice.parcels,
        "tax_satang": notice.tax_satang, "reduction_satang": notice.reduction_satang, "due_date": notice.due_date,
        "instalments": notice.instalments, "paid_satang": notice.paid_satang, "warning": notice.warning,
        "version": notice.version, "position": position,
    }


class ParcelImport:
    """One import call: rows arrive in batches; each batch is compared with the roll held in
    memory and saved in one transaction (one or two events on the roll)."""

    def __init__(self, office: LandTaxOffice, organization: str, tax_year: int, actor: Actor) -> None:
        self.office = office
        self.actor = actor
        self.roll = office.find_roll(roll_id(organization, tax_year)) or TaxRoll.open(
            id=roll_id(organization, tax_year), organization=organization, tax_year=tax_year, actor=actor, at=office.clock.now())
        # The log position of the last batch saved: a read with min_position=<it> sees the import.
        self.position: int | None = None

    def add(self, rows: Sequence[ParcelRow]) -> tuple[int, int]:
        """Record a batch; (accepted, unchanged)."""
        accepted, unchanged = self.roll.record(rows, self.actor, self.office.clock.now())
        try:
            recordings = self.office.save(self.roll)
        except IntegrityError:
            raise StaleVersion("another import of this roll was saved meanwhile; the rows before this batch are kept: import again") from None
        self.position = last_position(recordings) or self.position
        return accepted, unchanged


class LandTaxOffice(BackOfficeBase):
    """The land-and-building tax use cases; BackOffice builds on them."""

    def _check_roll_officer(self, actor: Actor) -> str:
        if actor.role != "officer" or actor.org is None:
            raise Forbidden("only an officer of a municipality or SAO keeps its tax roll")
        org = self.directory.get(actor.org)
        if org is None or org.kind.value not in ("municipality", "sao"):
            raise Forbidden("land and building tax is collected by municipalities and SAOs, not by this organisation")
        return actor.org

    def begin_parcel_import(self, tax_year: int, actor: Actor) -> ParcelImport:
        check_tax_year(tax_year)
        return ParcelImport(self, self._check_roll_officer(actor), tax_year, actor)

    def issue_notices(self, tax_year: int, actor: Actor) -> dict[str, Any]:
        """One notice per owner of the roll who has none yet and owes tax; idempotent."""
        check_tax_year(tax_year)
        organization = self._check_roll_officer(actor)
        roll = self.find_roll(roll_id(organization, tax_year))
        if roll is None:
            raise NotFound(f"no tax roll for {tax_year}: import the parcels first")
        if self.rules is None:
            raise NothingToPay("no rules file: rates and the year's calendar are unknown")
        year_calendar = self.rules.calendar(tax_year, organization)
        rates = self.rules.land_tax_rates(date(tax_year - BUDDHIST_ERA_OFFSET, 1, 1), organization)
        reduction = self.rules.reduction(tax_year)
        owners = roll.by_owner()
        # An erased owner's rows read "[erased]" (README "Personal data"): nobody to send a notice to.
        pending = sorted(o for o in owners if o not in roll.noticed and o != "[erased]")
        issued = exempt = 0
        last_position = None
        for start in range(0, len(pending), NOTICE_BATCH):
            at = self.clock.now()
            notices: list[TaxNotice] = []
            for owner in pending[start:start + NOTICE_BATCH]:
                rows = owners[owner]
                kind = "juristic" if any(r[2] == "juristic" for r in rows) else "individual"
                assessed = assess_owner([Parcel(r[0], r[4], r[5], r[6]) for r in rows], kind, rates,
                                        reduction_ppm=reduction.ppm if reduction else 0,
                                        reduced_uses=reduction.uses if reduction else None)
                if assessed.due_satang <= 0:
                    exempt += 1
                    continue
                nid = notice_id(organization, tax_year, self.subject_ref(owner))
                plan = instalment_plan(assessed.due_satang, rates, year_calendar)
                notices.append(TaxNotice.issue(
                    id=nid, at=at, actor=actor, channel="counter", number=notice_number(tax_year, nid),
                    organization=organization, tax_year=tax_year, owner_id=owner, owner_kind=kind, owner_name=rows[0][3],
                    parcels=[{"parcel_id": p.parcel_id, "land_use": p.land_use, "value_satang": p.value_satang, "tax_satang": p.tax_satang}
                             for p in assessed.parcels],
                    tax_satang=assessed.due_satang, reduction_satang=assessed.reduction_satang,
                    due_date=year_calendar.due_date.isoformat(),
                    instalments=[{"n": i.n, "amount_satang": i.amount_satang, "due_date": i.due_date.isoformat()} for i in plan] if plan else None,
                ))
            roll.record_notices([(n.owner_id, str(n.id)) for n in notices], actor, at)
            if notices:
                last_position = self._save_batch([roll, *notices])
                issued += len(notices)
        return {"tax_year": tax_year, "organization": organization, "issued": issued,
                "already_issued": len(owners) - len(pending), "exempt": exempt, "position": last_position}

    def notice_state(self, nid: UUID, actor: Actor, on: date) -> dict[str, Any]:
        """A notice straight from the log (when the views do not have it yet)."""
        notice = self.get_notice(nid)
        if not can_see_notice(actor, notice.organization, notice.owner_id):
            raise NotFound("no such tax notice")
        return notice_document(notice_row(notice), on, with_amount_due=True)

    def open_notice_payment(self, nid: UUID, body: Any, actor: Actor) -> Outcome:
        """A PromptPay payment of what is due today: an instalment (the next unpaid one), or with
        ``instalment`` null everything unpaid, with the penalties of s.68-70 when late. Valid to
        the end of the Bangkok day; Ref1 is the notice number. Opening again the same day
        answers the same payment."""
        errors = check(PAYMENT_SCHEMA, body if body is not None else {})
        if errors:
            raise InvalidCommand("the body does not fit a notice payment", errors)
        instalment = (body or {}).get("instalment")
        notice = self.get_notice(nid)
        if not can_see_notice(actor, notice.organization, notice.owner_id) or actor.role == "auditor":
            if actor.role == "auditor":
                raise Forbidden("auditors read; they do not open payments")
            raise NotFound("no such tax notice")
        at = self.clock.now()
        today = bangkok_day(at)
        if instalment is None:
            due = settle_all_on(notice.tax_satang, notice.due_date, notice.instalments, notice.paid_satang, notice.warning, today)
        else:
            statuses = instalment_statuses(notice.instalments, notice.paid_satang, today)
            if statuses is None:
                raise InvalidCommand("this notice is not paid in instalments (its tax is under the threshold)",
                                     [("instalment", "must be null for this notice")])
            next_unpaid = next((s["n"] for s in statuses if s["status"] != "paid"), None)
            if next_unpaid != instalment:
                raise NothingToPay(f"instalment {instalment} is not the next one to pay" + (f"; that is {next_unpaid}" if next_unpaid else ": the notice is paid"))
            due = due_on(notice.tax_satang, notice.due_date, notice.instalments, notice.paid_satang, notice.warning, today)
        if due.total_satang <= 0:
            raise NothingToPay("the notice is paid; there is nothing to pay")
        # The same payment for the same instalment on the same day, until money arrives.
        payment_id = uuid5(ID_NAMESPACE, f"notice-payment\n{notice.id}\n{len(notice.payment_ids)}\n{today.isoformat()}\n{instalment}")
        if str(payment_id) in notice.open_payments:
            return Outcome(describe_payment(self.get_payment(payment_id), None), replayed=True)
        channel = "counter" if actor.role in STAFF else "web"
        payment = Payment.open(
            id=payment_id, at=at, actor=actor, channel=channel,
            request_id=None, notice_id=notice.id, instalment=instalment,
            breakdown={"tax_satang": due.tax_satang, "surcharge_satang": due.surcharge_satang, "interest_satang": due.interest_satang},
            reference=notice.number, organization=notice.organization, amount_satang=due.total_satang,
            promptpay_payload=bill_payment_payload(biller_id=self.biller_id, ref1=notice.number, amount_satang=due.total_satang),
            expires_at=end_of_bangkok_day(today),
        )
        notice.open_payment(payment_id, instalment, due.total_satang, actor, channel, at)
        try:
            recordings = self.save(payment, notice)
        except IntegrityError:
            raise StaleVersion("the notice changed meanwhile; open the payment again") from None
        return Outcome(describe_payment(payment, max(r.notification.id for r in recordings)))

    def record_notice_warning(self, nid: UUID, body: Any, actor: Actor, if_match: int | None) -> Outcome:
        errors = check(WARNING_SCHEMA, body)
        if errors:
            raise InvalidCommand("the body does not fit a warning", errors)
        try:
            deadline = date.fromisoformat(body["deadline"])
            received_on = date.fromisoformat(body["received_on"]) if "received_on" in body else bangkok_day(self.clock.now())
        except ValueError as error:
            raise InvalidCommand("dates are YYYY-MM-DD", [("deadline", str(error))]) from None
        notice = self.get_notice(nid)
        if not can_see_notice(actor, notice.organization, notice.owner_id):
            raise NotFound("no such tax notice")
        if actor.role not in ("officer", "admin"):
            raise Forbidden("only the organisation's officers record warning notices")
        if if_match is not None and if_match != notice.version:
            raise StaleVersion(f"the notice is at version {notice.version}, not {if_match}", notice.version)
        notice.record_warning(received_on, deadline, actor, self.clock.now())
        position = self._save(notice)
        return Outcome(notice_document(notice_row(notice, position), bangkok_day(self.clock.now()), with_amount_due=True))

    def _save_batch(self, aggregates: Sequence[Any]) -> int | None:
        """Save many new aggregates in one transaction; the position of the last event."""
        try:
            return self.save_at(*aggregates)
        except IntegrityError:
            raise StaleVersion("the roll was changed by someone else meanwhile; issue the notices again") from None

    # -- settling: called when a payment of a notice is received -----------------------------

    def _settle_notice(self, payment: Payment, actor: Actor, channel: str, at: datetime) -> TaxNotice:
        notice = self.get_notice(payment.notice_id)  # type: ignore[arg-type]
        split = payment.breakdown or {"tax_satang": payment.amount_satang, "surcharge_satang": 0, "interest_satang": 0}
        notice.receive_payment(payment.id, payment.instalment, split["tax_satang"], split["surcharge_satang"], split["interest_satang"],
                               bangkok_day(at), actor, channel, at)
        return notice

