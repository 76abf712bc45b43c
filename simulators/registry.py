"""Simulator of the civil registry (DOPA linkage): people, houses, moves, house numbers, copies."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from .faults import (
    Faults,
    ProblemError,
    Simulator,
    bad_request,
    json_response,
    read_json_object,
    simulator_app,
)
from .registry_data import LOCAL_ORGS, RegistryData, address_text, age_on, generate, national_id_check_digit

PERSON_NOT_FOUND = "national ID not found in the civil registry"
HOUSE_NOT_FOUND = "house ID not found in the civil registry"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _valid_national_id(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 13
        and value.isascii()
        and value.isdigit()
        and national_id_check_digit(value[:12]) == int(value[12])
    )


def _national_id(value: object, field: str = "national_id") -> str:
    if not _valid_national_id(value):
        raise bad_request(f"{field} must be a valid 13-digit Thai national ID (checksum included)")
    assert isinstance(value, str)
    return value


def _house_id(value: object, field: str) -> str:
    if not (isinstance(value, str) and len(value) == 11 and value.isascii() and value.isdigit()):
        raise bad_request(f"{field} must be an 11-digit house ID")
    return value


def _text(body: dict[str, Any], field: str, *, max_len: int = 200) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise bad_request(f"{field} must be a non-empty string of at most {max_len} characters")
    return value.strip()


def _not_found(detail: str) -> ProblemError:
    return ProblemError(404, "Not found", detail, slug="not-found")


def _query_int(request: web.Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise bad_request(f"{name} must be from {lo} to {hi}")
    return value


def _query_bool(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise bad_request(f"{name} must be true or false")


class Registry:
    """The registry's state and its operations; each effect method is synchronous (see Simulator.once)."""

    def __init__(self, data: RegistryData, sim: Simulator) -> None:
        self.data = data
        self.sim = sim
        self.moves: list[dict[str, Any]] = []
        self.copies: list[dict[str, Any]] = []

    def person(self, national_id: str) -> dict[str, Any]:
        person = self.data.people.get(national_id)
        if person is None:
            raise _not_found(PERSON_NOT_FOUND)
        return person

    def house(self, house_id: str) -> dict[str, Any]:
        house = self.data.houses.get(house_id)
        if house is None:
            raise _not_found(HOUSE_NOT_FOUND)
        return house

    def age(self, person: dict[str, Any]) -> int:
        return age_on(date.fromisoformat(person["birth_date"]), datetime.now(UTC).date())

    def move(self, national_id: str, to_house_id: str, move_date: str | None) -> web.Response:
        person = self.person(national_id)
        house = self.house(to_house_id)
        if not person["alive"]:
            raise ProblemError(422, "Person deceased", "a deceased person cannot move house", slug="deceased")
        if person["house_id"] == to_house_id:
            raise ProblemError(
                422, "Already registered", "the person is already registered at that house", slug="same-house"
            )
        move = {
            "move_id": f"DOPA-MV-{len(self.moves) + 1:06d}",
            "national_id": national_id,
            "from_house_id": person["house_id"],
            "to_house_id": to_house_id,
            "move_date": move_date or datetime.now(UTC).date().isoformat(),
            "recorded_at": _now(),
        }
        person["house_id"] = to_house_id
        person["organization"] = house["organization"]
        person["moved_on"] = move["move_date"]
        self.moves.append(move)
        return json_response(move, status=201)

    def allocate_house_number(
        self, owner_national_id: str, permit: str, address: str | dict[str, Any], organization: str
    ) -> web.Response:
        owner = self.person(owner_national_id)
        if not owner["alive"]:
            raise ProblemError(422, "Person deceased", "a deceased person cannot own a new house", slug="deceased")
        org = LOCAL_ORGS.get(organization)
        if org is None:
            raise ProblemError(
                422,
                "Unknown organisation",
                f"{organization} does not register houses (only known municipalities and SAOs do)",
                slug="unknown-organization",
            )
        house_id = self.data.allocate_house_id(organization)
        parts = address if isinstance(address, dict) else {}
        structured = {
            "house_no": str(parts.get("house_no") or self._next_house_no(organization)),
            "moo": parts.get("moo") if org.has_moo else None,
            "road": parts.get("road"),
            "tambon": parts.get("tambon") or org.tambons_th[0],
            "amphoe": org.amphoe_th,
            "province": org.province_th,
            "postcode": org.postcode,
        }
        house = {
            "house_id": house_id,
            "address": structured,
            "address_th": address if isinstance(address, str) else address_text(structured),
            "owner_national_id": owner_national_id,
            "organization": organization,
            "building_permit_no": permit,
        }
        self.data.houses[house_id] = house
        return json_response(house, status=201)

    def _next_house_no(self, organization: str) -> int:
        numbers = [
            int(h["address"]["house_no"].split("/")[0])
            for h in self.data.houses.values()
            if h["organization"] == organization and h["address"]["house_no"].split("/")[0].isdigit()
        ]
        return max(numbers, default=0) + 1

    def certified_copy(self, national_id: str, document: str, copies: int) -> web.Response:
        self.person(national_id)
        copy = {
            "document_ref": f"DOPA-CC-{len(self.copies) + 1:06d}",
            "national_id": national_id,
            "document": document,
            "copies": copies,
            "issued_at": _now(),
        }
        self.copies.append(copy)
        return json_response(copy, status=201)

    def verify(self, national_id: str) -> web.Response:
        person = self.data.people.get(national_id)
        if person is None:
            return json_response(
                {
                    "national_id": national_id,
                    "found": False,
                    "alive": None,
                    "name_th": None,
                    "birth_date": None,
                    "house_id": None,
                    "organization": None,
                    "reason": "not_found",
                }
            )
        return json_response(
            {
                "national_id": national_id,
                "found": True,
                "alive": person["alive"],
                "name_th": f"{person['first_name_th']} {person['last_name_th']}",
                "birth_date": person["birth_date"],
                "house_id": person["house_id"],
                "organization": person["organization"],
                "reason": None if person["alive"] else "deceased",
            }
        )


    def status(self, national_id: str) -> dict[str, Any]:
        """What the bulk status check says of one person: alive or dead (and when), and the
        organisation of their house registration (and when they last moved)."""
        person = self.data.people.get(national_id)
        if person is None:
            return {"national_id": national_id, "found": False, "alive": None, "died_on": None, "organization": None, "moved_on": None}
        return {
            "national_id": national_id, "found": True, "alive": person["alive"], "died_on": person.get("died_on"),
            "organization": person["organization"], "moved_on": person.get("moved_on"),
        }


REGISTRY = web.AppKey("registry", Registry)
MAX_STATUS_BATCH = 10_000


def _registry(request: web.Request) -> Registry:
    return request.app[REGISTRY]


async def list_people(request: web.Request) -> web.Response:
    """GET /people?limit=&alive=&min_age=&max_age=&organization=."""
    reg = _registry(request)
    limit = _query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    alive = _query_bool(request, "alive")
    min_age = _query_int(request, "min_age", None, 0, 150)
    max_age = _query_int(request, "max_age", None, 0, 150)
    organization = request.query.get("organization") or None
    items = []
    for person in reg.data.people.values():
        if alive is not None and person["alive"] is not alive:
            continue
        if organization is not None and person["organization"] != organization:
            continue
        if min_age is not None or max_age is not None:
            age = reg.age(person)
            if (min_age is not None and age < min_age) or (max_age is not None and age > max_age):
                continue
        items.append(person)
        if len(items) >= (limit or DEFAULT_LIMIT):
            break
    return json_response({"items": items})


async def get_person(request: web.Request) -> web.Response:
    """GET /people/{national_id}."""
    return json_response(_registry(request).person(_national_id(request.match_info["national_id"])))


async def list_houses(request: web.Request) -> web.Response:
    """GET /houses?limit=&organization=."""
    reg = _registry(request)
    limit = _query_int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) or DEFAULT_LIMIT
    organization = request.query.get("organization") or None
    items = [h for h in reg.data.houses.values() if organization is None or h["organization"] == organization]
    return json_response({"items": items[:limit]})


async def get_house(request: web.Request) -> web.Response:
    """GET /houses/{house_id}."""
    return json_response(_registry(request).house(_house_id(request.match_info["house_id"], "house_id")))


async def post_move(request: web.Request) -> web.Response:
    """POST /moves {national_id, to_house_id, move_date?} (effect "move")."""
    reg = _registry(request)
    body = await read_json_object(request)
    national_id = _national_id(body.get("national_id"))
    to_house_id = _house_id(body.get("to_house_id"), "to_house_id")
    move_date = body.get("move_date")
    if move_date is not None:
        try:
            move_date = date.fromisoformat(move_date).isoformat() if isinstance(move_date, str) else None
        except ValueError:
            move_date = None
        if move_date is None:
            raise bad_request("move_date must be a date as YYYY-MM-DD")
    return reg.sim.once(request, "move", lambda: reg.move(national_id, to_house_id, move_date))


async def post_house_number(request: web.Request) -> web.Response:
    """POST /house-numbers {owner_national_id, building_permit_no, address, organization} (effect "house_number")."""
    reg = _registry(request)
    body = await read_json_object(request)
    owner = _national_id(body.get("owner_national_id"), "owner_national_id")
    permit = _text(body, "building_permit_no", max_len=50)
    organization = _text(body, "organization", max_len=50)
    address = body.get("address")
    if isinstance(address, str):
        address = _text(body, "address", max_len=500)
    elif not isinstance(address, dict):
        raise bad_request("address must be a Thai address string or an object (house_no?, moo?, road?, tambon?)")
    return reg.sim.once(request, "house_number", lambda: reg.allocate_house_number(owner, permit, address, organization))


async def post_certified_copy(request: web.Request) -> web.Response:
    """POST /certified-copies {national_id, document, copies} (effect "certified_copy")."""
    reg = _registry(request)
    body = await read_json_object(request)
    national_id = _national_id(body.get("national_id"))
    document = _text(body, "document", max_len=100)
    copies = body.get("copies", 1)
    if not (isinstance(copies, int) and not isinstance(copies, bool) and 1 <= copies <= 100):
        raise bad_request("copies must be an integer from 1 to 100")
    return reg.sim.once(request, "certified_copy", lambda: reg.certified_copy(national_id, document, copies))


async def post_verification(request: web.Request) -> web.Response:
    """POST /verifications {national_id} (effect "verification": a read, counted for benchmarks)."""
    reg = _registry(request)
    body = await read_json_object(request)
    national_id = _national_id(body.get("national_id"))
    return reg.sim.once(request, "verification", lambda: reg.verify(national_id))


async def post_people_status(request: web.Request) -> web.Response:
    """POST /people/status {national_ids: [...]} (at most 10,000): deaths and moves in bulk, for
    the monthly allowance run. A read: no idempotency key needed."""
    reg = _registry(request)
    body = await read_json_object(request)
    ids = body.get("national_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MAX_STATUS_BATCH:
        raise bad_request(f"national_ids must be a list of 1 to {MAX_STATUS_BATCH} national IDs")
    checked = [_national_id(i, "national_ids[]") for i in ids]
    reg.sim.record_effect("status_check", f"batch:{reg.sim.calls}")
    return json_response({"people": [reg.status(i) for i in checked]})


async def post_admin_people(request: web.Request) -> web.Response:
    """POST /admin/people {people: [{national_id, birth_date, organization, house_id?, alive?,
    died_on?, moved_on?}]}: add or change people (tests and benchmarks seed the registry)."""
    reg = _registry(request)
    body = await read_json_object(request)
    people = body.get("people")
    if not isinstance(people, list):
        raise bad_request("people must be a list")
    for p in people:
        if not isinstance(p, dict):
            raise bad_request("each person is an object")
        nid = _national_id(p.get("national_id"), "people[].national_id")
        current = reg.data.people.get(nid, {
            "national_id": nid, "first_name_th": "ทดสอบ", "last_name_th": "ระบบ", "first_name_en": "Test", "last_name_en": "System",
            "sex": "female", "house_id": None, "alive": True, "died_on": None,
        })
        current.update({k: p[k] for k in ("birth_date", "organization", "house_id", "alive", "died_on", "moved_on") if k in p})
        if not current.get("birth_date") or not current.get("organization"):
            raise bad_request("a new person needs birth_date and organization")
        reg.data.people[nid] = current
    return json_response({"count": len(people)})


def build_registry_app(*, seed: int = 42, faults: Faults | None = None) -> web.Application:
    """The civil-registry simulator as an aiohttp app, with data generated from ``seed``."""
    sim = Simulator(name="civil registry", seed=seed, faults=faults or Faults())
    app = simulator_app(sim)
    app[REGISTRY] = Registry(generate(seed, reference_date=datetime.now(UTC).date()), sim)
    app.router.add_get("/people", list_people)
    app.router.add_get("/people/{national_id}", get_person)
    app.router.add_get("/houses", list_houses)
    app.router.add_get("/houses/{house_id}", get_house)
    app.router.add_post("/moves", post_move)
    app.router.add_post("/house-numbers", post_house_number)
    app.router.add_post("/certified-copies", post_certified_copy)
    app.router.add_post("/verifications", post_verification)
    app.router.add_post("/people/status", post_people_status)
    app.router.add_post("/admin/people", post_admin_people)
    return app
