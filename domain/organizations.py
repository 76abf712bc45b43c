"""Local administrative organisations (องค์กรปกครองส่วนท้องถิ่น) and their kinds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from domain.errors import InvalidValue


class OrganizationKind(str, Enum):
    PAO = "pao"
    MUNICIPALITY = "municipality"
    SAO = "sao"


PREFIXES = {OrganizationKind.PAO: "PAO-", OrganizationKind.MUNICIPALITY: "MUN-", OrganizationKind.SAO: "SAO-"}


@dataclass(frozen=True)
class Organization:
    code: str
    kind: OrganizationKind
    name_th: str
    name_en: str
    province: str
    tax_id: str | None = None

    def __post_init__(self) -> None:
        if not self.code.startswith(PREFIXES[self.kind]):
            raise InvalidValue(f"organisation code {self.code} must start with {PREFIXES[self.kind]}")

    def as_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "kind": self.kind.value,
            "name_th": self.name_th,
            "name_en": self.name_en,
            "province": self.province,
        }


class Directory:
    """The organisations known to this deployment, by code."""

    def __init__(self, organizations: list[Organization]) -> None:
        self._by_code = {o.code: o for o in organizations}

    def get(self, code: str) -> Organization | None:
        return self._by_code.get(code)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_code.values())

    def __contains__(self, code: object) -> bool:
        return code in self._by_code


def _org(code: str, kind: str, th: str, en: str, province: str) -> Organization:
    return Organization(code, OrganizationKind(kind), th, en, province)


# The five pilot provincial organisations, with municipalities and SAOs in the same provinces so
# that routing between the organisation where a request is filed and the one responsible is real.
SEED_ORGANIZATIONS: list[Organization] = [
    _org("PAO-CBI", "pao", "องค์การบริหารส่วนจังหวัดชลบุรี", "Chonburi PAO", "Chonburi"),
    _org("PAO-PLG", "pao", "องค์การบริหารส่วนจังหวัดพัทลุง", "Phatthalung PAO", "Phatthalung"),
    _org("PAO-PRE", "pao", "องค์การบริหารส่วนจังหวัดแพร่", "Phrae PAO", "Phrae"),
    _org("PAO-SNK", "pao", "องค์การบริหารส่วนจังหวัดสกลนคร", "Sakon Nakhon PAO", "Sakon Nakhon"),
    _org("PAO-SPB", "pao", "องค์การบริหารส่วนจังหวัดสุพรรณบุรี", "Suphanburi PAO", "Suphanburi"),
    _org("MUN-SAENSUK", "municipality", "เทศบาลเมืองแสนสุข", "Saen Suk Town Municipality", "Chonburi"),
    _org("MUN-CHONBURI", "municipality", "เทศบาลเมืองชลบุรี", "Chonburi Town Municipality", "Chonburi"),
    _org("MUN-PHATTHALUNG", "municipality", "เทศบาลเมืองพัทลุง", "Phatthalung Town Municipality", "Phatthalung"),
    _org("MUN-PHRAE", "municipality", "เทศบาลเมืองแพร่", "Phrae Town Municipality", "Phrae"),
    _org("MUN-SAKONNAKHON", "municipality", "เทศบาลนครสกลนคร", "Sakon Nakhon City Municipality", "Sakon Nakhon"),
    _org("MUN-SUPHANBURI", "municipality", "เทศบาลเมืองสุพรรณบุรี", "Suphanburi Town Municipality", "Suphanburi"),
    _org("SAO-NONGRI", "sao", "องค์การบริหารส่วนตำบลหนองรี", "Nong Ri SAO", "Chonburi"),
    _org("SAO-KHUANMAPRAO", "sao", "องค์การบริหารส่วนตำบลควนมะพร้าว", "Khuan Maphrao SAO", "Phatthalung"),
    _org("SAO-MAEYOM", "sao", "องค์การบริหารส่วนตำบลแม่ยม", "Mae Yom SAO", "Phrae"),
    _org("SAO-NGIWDON", "sao", "องค์การบริหารส่วนตำบลงิ้วด่อน", "Ngiw Don SAO", "Sakon Nakhon"),
    _org("SAO-SANAMCHAI", "sao", "องค์การบริหารส่วนตำบลสนามชัย", "Sanam Chai SAO", "Suphanburi"),
]
