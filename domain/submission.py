"""The rules a new request must meet before it is filed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from domain.actors import CHANNELS
from domain.catalogue import SERVICES, Service
from domain.errors import InvalidCommand
from domain.national_id import is_valid_national_id
from domain.organizations import Directory, Organization

# Checks a value against a JSON Schema and names the bad fields: ``(schema, value, path) ->
# [(field, problem)]``. The application hands in its validator (a library the domain does not
# import).
SchemaCheck = Callable[[dict[str, Any], Any, str], list[tuple[str, str]]]

# A citizen as a request or a booking names them: the 13-digit national ID (its check digit is
# checked apart) and the name.
APPLICANT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "national_id": {"type": "string", "pattern": "^[0-9]{13}$"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "required": ["national_id", "name"],
    "additionalProperties": False,
}
SUBMISSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        # Only services that take new submissions (civil.appointment is replaced by /v1/appointments).
        "service": {"type": "string", "enum": sorted(code for code, s in SERVICES.items() if s.accepts_submissions)},
        "organization": {"type": "string", "minLength": 1, "maxLength": 40},
        "filed_at": {"type": "string", "minLength": 1, "maxLength": 40},
        "channel": {"type": "string", "enum": [c for c in CHANNELS if c != "system"]},
        "applicant": APPLICANT_SCHEMA,
        "details": {"type": "object"},
    },
    "required": ["service", "organization", "channel", "applicant", "details"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class Submission:
    """A checked request to file: everything the aggregate needs."""

    service: Service
    organization: Organization
    filed_at: Organization
    channel: str
    applicant: dict[str, str]
    details: dict[str, Any]


def check_submission(body: Any, directory: Directory, check: SchemaCheck) -> Submission:
    """Check a submission body against the catalogue and the directory, naming each bad field."""
    errors = check(SUBMISSION_SCHEMA, body, "")
    if errors:
        raise InvalidCommand("the request body is not a valid submission", errors)
    service = SERVICES[body["service"]]
    org = directory.get(body["organization"])
    if org is None:
        raise InvalidCommand("unknown organisation", [("organization", f"{body['organization']} is not a known organisation")])
    filed_at = directory.get(body.get("filed_at") or org.code)
    if filed_at is None:
        raise InvalidCommand("unknown organisation", [("filed_at", f"{body['filed_at']} is not a known organisation")])
    if not service.offered_at(org):
        raise InvalidCommand(
            "the organisation does not offer this service",
            [("organization", f"{org.code} ({org.kind.value}) does not offer {service.code}")],
        )
    if not is_valid_national_id(body["applicant"]["national_id"]):
        raise InvalidCommand("invalid Thai national ID", [("applicant.national_id", "checksum digit does not match")])
    details = body["details"]
    errors = check(service.details_schema, details, "details")
    if not errors and service.code == "local.flyer-permit" and details["end_date"] < details["start_date"]:
        errors.append(("details.end_date", "must not be before start_date"))
    if errors:
        raise InvalidCommand(f"details do not fit {service.code}", errors)
    return Submission(
        service=service,
        organization=org,
        filed_at=filed_at,
        channel=body["channel"],
        applicant={"national_id": body["applicant"]["national_id"], "name": body["applicant"]["name"]},
        details=details,
    )
