"""Seeded, deterministic people and houses for the civil-registry simulator.

The same seed and reference date always give the same data. Ages are computed against the
reference date (today in UTC by default), so a person generated aged 72 stays 72 whenever the
simulator starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

KNOWN_NATIONAL_ID = "3100600445635"
KNOWN_AGE = 72


@dataclass(frozen=True)
class LocalOrg:
    """Where houses are registered: a municipality or SAO, with its registration office code."""

    code: str
    province_th: str
    amphoe_th: str
    tambons_th: tuple[str, ...]
    postcode: str
    office_code: str  # first four digits of its house IDs
    has_moo: bool  # villages (หมู่) are used in SAOs; municipal addresses use roads instead


# Provincial organisations register no houses; only municipalities and SAOs do.
PAO_CODES = ("PAO-CBI", "PAO-PLG", "PAO-PRE", "PAO-SNK", "PAO-SPB")

LOCAL_ORGS: dict[str, LocalOrg] = {
    o.code: o
    for o in (
        LocalOrg("MUN-SAENSUK", "ชลบุรี", "เมืองชลบุรี", ("แสนสุข",), "20130", "2098", False),
        LocalOrg("MUN-CHONBURI", "ชลบุรี", "เมืองชลบุรี", ("บางปลาสร้อย", "มะขามหย่ง", "บ้านโขด"), "20000", "2099", False),
        LocalOrg("MUN-PHATTHALUNG", "พัทลุง", "เมืองพัทลุง", ("คูหาสวรรค์",), "93000", "9399", False),
        LocalOrg("MUN-PHRAE", "แพร่", "เมืองแพร่", ("ในเวียง",), "54000", "5499", False),
        LocalOrg("MUN-SAKONNAKHON", "สกลนคร", "เมืองสกลนคร", ("ธาตุเชิงชุม",), "47000", "4799", False),
        LocalOrg("MUN-SUPHANBURI", "สุพรรณบุรี", "เมืองสุพรรณบุรี", ("ท่าพี่เลี้ยง", "รั้วใหญ่"), "72000", "7299", False),
        LocalOrg("SAO-NONGRI", "ชลบุรี", "เมืองชลบุรี", ("หนองรี",), "20000", "2001", True),
        LocalOrg("SAO-KHUANMAPRAO", "พัทลุง", "เมืองพัทลุง", ("ควนมะพร้าว",), "93000", "9301", True),
        LocalOrg("SAO-MAEYOM", "แพร่", "เมืองแพร่", ("แม่ยม",), "54000", "5401", True),
        LocalOrg("SAO-NGIWDON", "สกลนคร", "เมืองสกลนคร", ("งิ้วด่อน",), "47000", "4701", True),
        LocalOrg("SAO-SANAMCHAI", "สุพรรณบุรี", "เมืองสุพรรณบุรี", ("สนามชัย",), "72000", "7201", True),
    )
}

ROADS_TH = ("ถนนสุขุมวิท", "ถนนราษฎร์ประสงค์", "ถนนเจริญราษฎร์", "ถนนนิตโย", "ถนนมาลัยแมน", "ถนนยันตรกิจโกศล")

# (Thai, romanised) pairs.
MALE_NAMES = (
    ("สมชาย", "Somchai"), ("สมศักดิ์", "Somsak"), ("วิชัย", "Wichai"), ("สุรชัย", "Surachai"),
    ("อนุชา", "Anucha"), ("ธนพล", "Thanaphon"), ("ชัยวัฒน์", "Chaiwat"), ("ประเสริฐ", "Prasoet"),
    ("บุญมี", "Bunmi"), ("สมบัติ", "Sombat"), ("กิตติ", "Kitti"), ("ณัฐพล", "Nattaphon"),
    ("วีระ", "Wira"), ("สุเทพ", "Suthep"), ("ทองใบ", "Thongbai"),
)
FEMALE_NAMES = (
    ("สมศรี", "Somsri"), ("มาลี", "Mali"), ("สุดา", "Suda"), ("วันเพ็ญ", "Wanphen"),
    ("นภา", "Napha"), ("พรทิพย์", "Phonthip"), ("กัญญา", "Kanya"), ("อรุณี", "Aruni"),
    ("บุญเรือน", "Bunruean"), ("ประไพ", "Prapai"), ("จันทร์เพ็ญ", "Chanphen"), ("ศิริพร", "Siriphon"),
    ("สุนิสา", "Sunisa"), ("ปราณี", "Prani"), ("รัตนา", "Rattana"),
)
SURNAMES = (
    ("สุขสวัสดิ์", "Suksawat"), ("ศรีสุข", "Srisuk"), ("วงศ์สวัสดิ์", "Wongsawat"), ("แก้วมณี", "Kaewmanee"),
    ("ทองดี", "Thongdee"), ("บุญมา", "Boonma"), ("จันทร์แก้ว", "Chankaew"), ("ศรีวงศ์", "Sriwong"),
    ("สายทอง", "Saithong"), ("พรหมมา", "Phromma"), ("อินทร์แก้ว", "Inkaew"), ("ทองคำ", "Thongkham"),
    ("มีสุข", "Meesuk"), ("รักไทย", "Rakthai"), ("ใจดี", "Jaidee"), ("แสงทอง", "Saengthong"),
    ("ปัญญาดี", "Panyadee"), ("เพชรรัตน์", "Phetcharat"), ("บุญเกิด", "Boonkoet"), ("สมบูรณ์", "Somboon"),
    ("ชัยมงคล", "Chaimongkhon"), ("รุ่งเรือง", "Rungrueang"), ("ศรีสวัสดิ์", "Srisawat"),
    ("คงสมบูรณ์", "Khongsomboon"), ("นาคสวัสดิ์", "Naksawat"), ("เรืองศรี", "Ruangsri"),
    ("ทองประเสริฐ", "Thongprasoet"), ("วัฒนา", "Watthana"), ("พึ่งบุญ", "Phuengboon"), ("หอมจันทร์", "Homchan"),
)

# Ages forced to occur whatever the seed, so that every allowance band and the extremes exist.
FIXED_AGES = (20, 21, 59, 60, 61, 69, 70, 79, 80, 89, 90, 95)


def national_id_check_digit(first_twelve: str) -> int:
    """Check digit of a Thai national ID: (11 − Σ dᵢ·(14−i) mod 11) mod 10 over digits 1..12."""
    total = sum(int(d) * (14 - i) for i, d in enumerate(first_twelve, start=1))
    return (11 - total % 11) % 10


def house_id_check_digit(first_ten: str) -> int:
    """Check digit of the simulator's 11-digit house IDs (the same mod-11 scheme over 10 digits)."""
    total = sum(int(d) * (12 - i) for i, d in enumerate(first_ten, start=1))
    return (11 - total % 11) % 10


def make_house_id(office_code: str, number: int) -> str:
    """An 11-digit house ID: 4-digit registration office, 6-digit running number, check digit."""
    first_ten = f"{office_code}{number:06d}"
    return first_ten + str(house_id_check_digit(first_ten))


def birth_date_for_age(reference: date, age: int, days_past_birthday: int) -> date:
    """A birth date so that the person is exactly ``age`` on ``reference``.

    ``days_past_birthday`` (0..364) says how long ago the last birthday was.
    """
    try:
        anniversary = reference.replace(year=reference.year - age)
    except ValueError:  # 29 February in a year without one
        anniversary = reference.replace(year=reference.year - age, day=28)
    return anniversary - timedelta(days=days_past_birthday)


def age_on(birth: date, reference: date) -> int:
    """Completed years of age on ``reference``."""
    return reference.year - birth.year - ((reference.month, reference.day) < (birth.month, birth.day))


def address_text(address: dict[str, Any]) -> str:
    """A Thai one-line address from its parts."""
    parts = [str(address["house_no"])]
    if address.get("moo"):
        parts.append(f"หมู่ {address['moo']}")
    if address.get("road"):
        parts.append(str(address["road"]))
    parts += [f"ตำบล{address['tambon']}", f"อำเภอ{address['amphoe']}", f"จังหวัด{address['province']}"]
    if address.get("postcode"):
        parts.append(str(address["postcode"]))
    return " ".join(parts)


def _new_national_id(rng: random.Random, office_code: str, born_before_1984: bool, taken: set[str]) -> str:
    while True:
        # 3: entered in a house register before 1984; 1: birth registered in time after it.
        first = "3" if born_before_1984 else rng.choice("11112")
        first_twelve = first + office_code + f"{rng.randrange(10**7):07d}"
        nid = first_twelve + str(national_id_check_digit(first_twelve))
        if nid not in taken:
            taken.add(nid)
            return nid


@dataclass
class RegistryData:
    """All people and houses of the simulated civil registry, keyed by ID."""

    reference_date: date
    people: dict[str, dict[str, Any]]
    houses: dict[str, dict[str, Any]]
    next_house_number: dict[str, int]

    def allocate_house_id(self, organization: str) -> str:
        """A new, unused house ID in the registration office of ``organization``."""
        office = LOCAL_ORGS[organization].office_code
        while True:
            number = self.next_house_number[organization]
            self.next_house_number[organization] = number + 1
            house_id = make_house_id(office, number)
            if house_id not in self.houses:
                return house_id


def _make_houses(rng: random.Random, count: int) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    codes = list(LOCAL_ORGS)
    houses: dict[str, dict[str, Any]] = {}
    next_number = {code: 1 for code in codes}
    next_house_no: dict[tuple[str, int | None], int] = {}
    for i in range(count):
        # Round-robin first so that every organisation has houses, then by chance.
        org = LOCAL_ORGS[codes[i] if i < len(codes) else rng.choice(codes)]
        number = next_number[org.code] + rng.randrange(1, 40)
        next_number[org.code] = number
        moo = rng.randrange(1, 13) if org.has_moo else None
        serial = next_house_no.get((org.code, moo), rng.randrange(1, 60)) + rng.randrange(1, 8)
        next_house_no[(org.code, moo)] = serial
        house_no = f"{serial}/{rng.randrange(1, 20)}" if rng.random() < 0.15 else str(serial)
        address = {
            "house_no": house_no,
            "moo": moo,
            "road": None if org.has_moo else rng.choice(ROADS_TH),
            "tambon": rng.choice(org.tambons_th),
            "amphoe": org.amphoe_th,
            "province": org.province_th,
            "postcode": org.postcode,
        }
        house_id = make_house_id(org.office_code, number)
        houses[house_id] = {
            "house_id": house_id,
            "address": address,
            "address_th": address_text(address),
            "owner_national_id": None,
            "organization": org.code,
            "building_permit_no": None,
        }
    return houses, {code: n + 1 for code, n in next_number.items()}


def _make_person(
    rng: random.Random, reference: date, age: int, house: dict[str, Any], taken: set[str], nid: str | None = None
) -> dict[str, Any]:
    birth = birth_date_for_age(reference, age, rng.randrange(0, 365))
    sex = rng.choice(("male", "female"))
    first_th, first_en = rng.choice(MALE_NAMES if sex == "male" else FEMALE_NAMES)
    last_th, last_en = rng.choice(SURNAMES)
    office = LOCAL_ORGS[house["organization"]].office_code
    return {
        "national_id": nid or _new_national_id(rng, office, birth.year < 1984, taken),
        "first_name_th": first_th,
        "last_name_th": last_th,
        "first_name_en": first_en,
        "last_name_en": last_en,
        "birth_date": birth.isoformat(),
        "sex": sex,
        "house_id": house["house_id"],
        "organization": house["organization"],
        "alive": True,
        "died_on": None,
    }


def generate(seed: int = 42, *, people: int = 300, houses: int = 200, reference_date: date | None = None) -> RegistryData:
    """Generate the registry: ``people`` people (about 5% dead) living in ``houses`` houses."""
    rng = random.Random(seed)
    reference = reference_date or datetime.now(UTC).date()
    house_map, next_number = _make_houses(rng, houses)
    house_list = list(house_map.values())
    taken = {KNOWN_NATIONAL_ID}

    persons: list[dict[str, Any]] = []
    known_house = next(h for h in house_list if h["organization"] == "MUN-SAENSUK")
    known = _make_person(rng, reference, KNOWN_AGE, known_house, taken, nid=KNOWN_NATIONAL_ID)
    known.update(first_name_th="สมชาย", last_name_th="ใจดี", first_name_en="Somchai", last_name_en="Jaidee", sex="male")
    persons.append(known)
    for i in range(people - 1):
        if i < len(FIXED_AGES):
            age = FIXED_AGES[i]
        elif rng.random() < 0.5:
            age = rng.randrange(60, 96)
        else:
            age = rng.randrange(20, 60)
        # The first houses get one resident each so that no house is empty by accident of the draw.
        house = house_list[i] if i < len(house_list) // 2 else rng.choice(house_list)
        persons.append(_make_person(rng, reference, age, house, taken))

    # About 5% dead, mostly among the old; never the known person, whom tests expect alive.
    candidates = persons[1 + len(FIXED_AGES):]
    weights = [3.0 if age_on(date.fromisoformat(p["birth_date"]), reference) >= 60 else 1.0 for p in candidates]
    dead: set[str] = set()
    while len(dead) < max(1, round(people * 0.05)):
        dead.add(rng.choices(candidates, weights)[0]["national_id"])
    for p in persons:
        if p["national_id"] in dead:
            p["alive"] = False
            p["died_on"] = (reference - timedelta(days=rng.randrange(10, 3 * 365))).isoformat()

    by_house: dict[str, list[dict[str, Any]]] = {}
    for p in persons:
        by_house.setdefault(p["house_id"], []).append(p)
    living = [p for p in persons if p["alive"]]
    for house in house_list:
        residents = [p for p in by_house.get(house["house_id"], []) if p["alive"]]
        # An owner need not live in the house; empty houses get an owner from elsewhere.
        owner = min(residents, key=lambda p: p["birth_date"]) if residents else rng.choice(living)
        house["owner_national_id"] = owner["national_id"]

    return RegistryData(
        reference_date=reference,
        people={p["national_id"]: p for p in persons},
        houses=house_map,
        next_house_number=next_number,
    )
