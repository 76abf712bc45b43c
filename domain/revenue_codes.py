"""Revenue codes (รหัสรายรับ) that receipts carry, for posting into an organisation's accounting
system (e-LAAS, the local organisations' accounting system run by the DLA).

Source: "ผังรหัสรายรับระบบบัญชี e-LAAS" (the e-LAAS chart of revenue codes), DLA e-LAAS knowledge
base, 9 Nov 2555, http://km.laas.go.th/laaskm/index.php?option=com_content&view=article&id=1386 .
The part of that chart the search found lists taxes under 411000xx (ภาษีโรงเรือนและที่ดิน
41100001 ... ภาษีบำรุง อบจ.จากการค้าน้ำมัน/ก๊าซ 41100007) and fees under 412100xx (ค่าธรรมเนียม
โรงฆ่าสัตว์ 41210001 ... ค่าธรรมเนียมเก็บขนอุจจาระหรือสิ่งปฏิกูล 41210009). The codes of the
services below were not in the part found (and land-and-building tax, B.E. 2562, is newer than
the chart): each is marked ``confirmed = False`` and must be checked against the organisation's
own chart before posting; the revenue export prints the flag on every line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RevenueCode:
    code: str
    name_th: str
    confirmed: bool
    note: str = ""


# By service. A code not confirmed keeps the chart's group (411 taxes, 412 fees) and 00 digits
# after it, so that it posts to the group until the organisation sets the exact account.
REVENUE_CODES: dict[str, RevenueCode] = {
    "local.land-building-tax": RevenueCode("41100000", "ภาษีที่ดินและสิ่งปลูกสร้าง", False,
                                           "taxes group 411; the chart found predates the B.E. 2562 Act"),
    "local.hotel-fee": RevenueCode("41100000", "ค่าธรรมเนียมบำรุง อบจ. จากผู้เข้าพักโรงแรม", False,
                                   "the chart lists PAO levies under taxes group 411; exact code not found"),
    "local.flyer-permit": RevenueCode("41210000", "ค่าธรรมเนียมใบอนุญาตโฆษณาด้วยการปิด ทิ้ง หรือโปรยแผ่นประกาศ", False,
                                      "fees group 4121; exact code not found"),
    "civil.certified-copy": RevenueCode("41210000", "ค่าธรรมเนียมเกี่ยวกับทะเบียนราษฎร", False,
                                        "fees group 4121; exact code not found"),
}
OTHER = RevenueCode("41000000", "รายได้อื่น", False, "no code for this service")
# Codes the chart found does list, for reference and tests.
CONFIRMED_IN_CHART: dict[str, str] = {
    "41100001": "ภาษีโรงเรือนและที่ดิน",
    "41100002": "ภาษีบำรุงท้องที่",
    "41100003": "ภาษีป้าย",
    "41210007": "ค่าธรรมเนียมเกี่ยวกับการควบคุมอาคาร",
    "41210008": "ค่าธรรมเนียมเก็บขนขยะมูลฝอย",
}


def revenue_code(service: str) -> RevenueCode:
    """The revenue code money for ``service`` is posted to."""
    return REVENUE_CODES.get(service, OTHER)
