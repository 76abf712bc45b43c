"""The service catalogue: which services exist, who offers them, what their details are, what
they cost and what outside work they need. Fees marked unconfirmed in the domain brief come
from a `FeeSchedule` (configuration), never from constants here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from domain.land_tax import LandTaxRates
from domain.organizations import Organization, OrganizationKind

MUN_SAO = frozenset({OrganizationKind.MUNICIPALITY, OrganizationKind.SAO})
EVERY_KIND = frozenset(OrganizationKind)

# Identifiers that are sent to the civil registry or the bank have strict patterns, so that
# nothing but the identifier can reach an outside system's URL or query.
_HOUSE_ID = {"type": "string", "pattern": "^[0-9]{11}$", "description": "11-digit house ID"}
# Thai or Latin letters, digits and ./- as in "ข.1 123/2567" or "BP-7/2569".
_PERMIT_NO = {"type": "string", "pattern": "^[0-9A-Za-z\u0E00-\u0E7F][0-9A-Za-z\u0E00-\u0E7F./ -]{0,39}$",
              "description": "building permit number (letters, digits, . / - and spaces)"}
_PARCEL_ID = {"type": "string", "pattern": "^[0-9A-Za-z\u0E00-\u0E7F][0-9A-Za-z\u0E00-\u0E7F./ -]{0,39}$",
              "description": "land parcel (title deed) number"}
_TEXT = {"type": "string", "minLength": 1, "maxLength": 2000}
_SHORT = {"type": "string", "minLength": 1, "maxLength": 200}


def _obj(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


# Ministerial Regulation No. 2 (B.E. 2535) under the Civil Registration Act B.E. 2534, clause 1:
# a certified copy of a house-registration entry (s.6) 5 baht, of a registry record (s.14(1))
# 10 baht. The kinds the regulation does not name are set in the rules file, marked unconfirmed.
DEFAULT_CERTIFIED_COPY_SATANG: dict[str, int] = {
    "house-registration": 500,
    "id-card-record": 1000,
    "birth-certificate": 1000,
    "name-change": 1000,
}


@dataclass(frozen=True)
class FeeSchedule:
    """Fees set by ordinance or regulation, as in force on one day; built from the rules file."""

    # Per copy, by document kind.
    certified_copy_satang: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CERTIFIED_COPY_SATANG))
    flyer_permit_satang: int = 20000
    flyer_permit_satang_by_organization: Mapping[str, int] = field(default_factory=dict)
    # Hotel fee rate per PAO in basis points of room revenue (100 = 1%), and the day of the
    # next month by which the filing is due.
    hotel_fee_rate_bp: Mapping[str, int] = field(default_factory=dict)
    hotel_fee_due_day: Mapping[str, int] = field(default_factory=dict)
    default_hotel_fee_rate_bp: int = 100
    default_hotel_fee_due_day: int = 20
    payment_validity_hours: int = 72
    land_tax: LandTaxRates = field(default_factory=LandTaxRates)


# Identity assurance levels as ThaiD reports them in `ial` (2.1 < 2.2 < 2.3 < 3; ETDA's Digital ID
# guideline, DGA standard DGS 1-1:2564). A policy choice, explained in README "Signing in": what
# changes a person's civil-registration record or pays them money needs the highest 2.x level;
# what creates a duty or a permit in one's name the middle one; a complaint or a counter booking
# the lowest.
CIVIL_REGISTRATION_IAL = "2.3"
LOCAL_DUTY_IAL = "2.2"
BASIC_IAL = "2.1"


@dataclass(frozen=True)
class Service:
    code: str
    name_th: str
    name_en: str
    offered_by: frozenset[OrganizationKind]
    details_schema: dict[str, Any]
    needs_verification: bool = False
    # What the registry must do once an officer approves ('record_move', 'allocate_house_number',
    # 'issue_certified_copy'), or None.
    fulfilment: str | None = None
    sla_days: int = 15
    fee_kind: str = "none"  # none | per_copy | flat_permit | hotel_fee | assessed
    # The lowest identity assurance level (ThaiD's `ial`) a citizen's token must carry to file
    # or act on this service; README "Signing in" says why each level was chosen.
    min_ial: str = BASIC_IAL
    # False for a service kept only so that old requests still load and project: new
    # submissions are refused (``civil.appointment``, replaced by /v1/appointments).
    accepts_submissions: bool = True
    replaced_by: str | None = None

    def offered_at(self, org: Organization) -> bool:
        return org.kind in self.offered_by

    def fee_satang(self, details: Mapping[str, Any], org: Organization, fees: FeeSchedule) -> int:
        """The fee due at submission; 0 when none, or when an officer assesses it later."""
        if self.fee_kind == "per_copy":
            return fees.certified_copy_satang[str(details["document"])] * int(details["copies"])
        if self.fee_kind == "flat_permit":
            return fees.flyer_permit_satang_by_organization.get(org.code, fees.flyer_permit_satang)
        if self.fee_kind == "hotel_fee":
            rate = fees.hotel_fee_rate_bp.get(org.code, fees.default_hotel_fee_rate_bp)
            # Round half up to the satang, in integers.
            return (int(details["room_revenue_satang"]) * rate + 5000) // 10000
        return 0

    def fee_terms(self, fees: FeeSchedule) -> dict[str, Any]:
        """What the fee is, as the catalogue publishes it: its kind and the amounts or rates that
        ``fee_satang`` charges from."""
        terms: dict[str, Any] = {"kind": self.fee_kind}
        if self.fee_kind == "per_copy":
            terms["per_copy_satang_by_document"] = dict(fees.certified_copy_satang)
        elif self.fee_kind == "flat_permit":
            terms["amount_satang"] = fees.flyer_permit_satang
            terms["amount_satang_by_organization"] = dict(fees.flyer_permit_satang_by_organization)
        elif self.fee_kind == "hotel_fee":
            terms["rate_bp_by_organization"] = dict(fees.hotel_fee_rate_bp)
            terms["due_day_by_organization"] = dict(fees.hotel_fee_due_day)
        return terms

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name_th": self.name_th,
            "name_en": self.name_en,
            "offered_by": sorted(k.value for k in self.offered_by),
            "needs_verification": self.needs_verification,
            "has_fee": self.fee_kind != "none",
            "sla_days": self.sla_days,
            "min_ial": self.min_ial,
            **({"accepts_submissions": False, "replaced_by": self.replaced_by} if not self.accepts_submissions else {}),
        }


SERVICES: dict[str, Service] = {
    s.code: s
    for s in [
        Service(
            "civil.address-change", "แจ้งย้ายที่อยู่", "Change of address", MUN_SAO,
            _obj({"to_house_id": _HOUSE_ID, "move_date": {"type": "string", "format": "date"}}, "to_house_id"),
            needs_verification=True, fulfilment="record_move", sla_days=3, min_ial=CIVIL_REGISTRATION_IAL,
        ),
        Service(
            "civil.house-number", "ขอเลขที่บ้าน", "New house number", MUN_SAO,
            _obj({"building_permit_no": _PERMIT_NO, "address": _TEXT}, "building_permit_no", "address"),
            needs_verification=True, fulfilment="allocate_house_number", sla_days=15, min_ial=CIVIL_REGISTRATION_IAL,
        ),
        Service(
            "civil.certified-copy", "คัดและรับรองเอกสารทะเบียน", "Certified copy of a registration document", MUN_SAO,
            _obj(
                {
                    "document": {"type": "string", "enum": ["house-registration", "birth-certificate", "id-card-record", "name-change"]},
                    "copies": {"type": "integer", "minimum": 1, "maximum": 20},
                },
                "document", "copies",
            ),
            needs_verification=True, fulfilment="issue_certified_copy", sla_days=1, fee_kind="per_copy", min_ial=CIVIL_REGISTRATION_IAL,
        ),
        Service(
            "civil.appointment", "ขอรับบริการล่วงหน้า", "Book a counter slot", EVERY_KIND,
            _obj({"service": {"type": "string", "minLength": 1, "maxLength": 64}, "slot": {"type": "string", "format": "date-time"}}, "service", "slot"),
            sla_days=1, accepts_submissions=False, replaced_by="/v1/appointments",
        ),
        Service(
            "local.flyer-permit", "ขออนุญาตโฆษณาด้วยการปิด ทิ้ง หรือโปรยแผ่นประกาศ", "Flyer and poster permit (Public Cleanliness Act s.10)", MUN_SAO,
            _obj(
                {
                    "description": _TEXT, "area": _SHORT,
                    "start_date": {"type": "string", "format": "date"}, "end_date": {"type": "string", "format": "date"},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
                },
                "description", "area", "start_date", "end_date", "quantity",
            ),
            sla_days=7, fee_kind="flat_permit", min_ial=LOCAL_DUTY_IAL,
        ),
        Service(
            "local.hotel-fee", "ยื่นแบบชำระค่าธรรมเนียมบำรุง อบจ. จากผู้พักในโรงแรม", "Hotel guest fee filing", frozenset({OrganizationKind.PAO}),
            _obj({"month": {"type": "string", "format": "month"}, "room_revenue_satang": {"type": "integer", "minimum": 1, "maximum": 10**13}}, "month", "room_revenue_satang"),
            sla_days=5, fee_kind="hotel_fee", min_ial=LOCAL_DUTY_IAL,
        ),
        Service(
            "local.land-building-tax", "ภาษีที่ดินและสิ่งปลูกสร้าง", "Land and building tax", MUN_SAO,
            _obj({"parcel_id": _PARCEL_ID, "tax_year": {"type": "integer", "minimum": 2020, "maximum": 2100}}, "parcel_id", "tax_year"),
            sla_days=30, fee_kind="assessed", min_ial=LOCAL_DUTY_IAL,
        ),
        Service(
            "welfare.elderly-allowance", "ลงทะเบียนรับเบี้ยยังชีพผู้สูงอายุ", "Elderly allowance registration", MUN_SAO,
            _obj({"bank_account": {"type": "string", "pattern": "^[0-9]{10,15}$"}}),
            needs_verification=True, sla_days=30, min_ial=CIVIL_REGISTRATION_IAL,
        ),
        Service(
            "complaint", "ร้องเรียน / ร้องทุกข์", "Complaint", EVERY_KIND,
            _obj({"subject": _SHORT, "description": _TEXT, "location": _SHORT}, "subject", "description"),
            sla_days=15,
        ),
    ]
}
