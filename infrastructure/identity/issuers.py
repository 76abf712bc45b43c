"""The trusted issuers, from the TOML file named by ONESTOP_OIDC_ISSUERS, and how each one's
claims become an Actor."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from application.errors import InvalidToken
from domain.actors import Actor, assurance_level
from domain.national_id import is_valid_national_id
from infrastructure.errors import IssuersFileError

KINDS = ("citizen", "staff")
# Asymmetric algorithms only: "none" and the HMAC family (HS*) would let anyone who knows the
# audience, or the client secret, forge tokens.
SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
STAFF_ROLES = ("officer", "auditor", "integrator", "admin")
_FIELDS = {"name", "url", "audience", "kind", "national_id_claim", "ial_claim", "role_claim", "org_claim", "role_map",
           "algorithms", "client_id", "client_secret", "scope"}


@dataclass(frozen=True)
class IssuerConfig:
    """One trusted issuer: where it is, whom its tokens are for, and how its claims map."""

    name: str
    url: str  # the tokens' `iss`; discovery at url + "/.well-known/openid-configuration"
    audience: str  # the `aud` an access token must carry to be accepted here
    kind: str  # "citizen" (ThaiD-shaped: national ID and assurance level) or "staff"
    national_id_claim: str = "pid"
    ial_claim: str = "ial"
    role_claim: str | None = None
    org_claim: str | None = None
    # The provider's role names (Entra app roles, Keycloak realm roles...) to OneStop's roles.
    role_map: Mapping[str, str] = field(default_factory=dict)
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    # Browser sign-in (backend-for-frontend): the client registered at the provider.
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scope: str = "openid"

    @property
    def discovery_url(self) -> str:
        return self.url.rstrip("/") + "/.well-known/openid-configuration"

    def actor(self, claims: Mapping[str, Any]) -> Actor:
        """The actor the verified ``claims`` name; InvalidToken when a required claim is missing."""
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("the token has no sub claim")
        if self.kind == "citizen":
            pid = claims.get(self.national_id_claim)
            if not is_valid_national_id(pid):
                raise InvalidToken(f"the {self.national_id_claim} claim is not a valid 13-digit national ID")
            raw_ial = claims.get(self.ial_claim)
            level = assurance_level(raw_ial)
            if level is None:
                raise InvalidToken(f"the {self.ial_claim} claim (identity assurance level) is missing or not a number")
            return Actor(sub=sub, role="citizen", pid=str(pid), issuer=self.url, ial=str(raw_ial).strip())
        role = self._role(claims.get(self.role_claim or ""))
        org = claims.get(self.org_claim) if self.org_claim else None
        if org is not None and (not isinstance(org, str) or not org):
            raise InvalidToken(f"the {self.org_claim} claim must be an organisation code")
        if role == "officer" and not org:
            raise InvalidToken(f"an officer's token must carry the {self.org_claim or 'organisation'} claim")
        return Actor(sub=sub, role=role, org=org, issuer=self.url)

    def _role(self, value: object) -> str:
        names = [value] if isinstance(value, str) else list(value) if isinstance(value, list) else []
        for name in names:
            role = self.role_map.get(name, name) if isinstance(name, str) else None
            if role in STAFF_ROLES:
                return role
        raise InvalidToken(f"the {self.role_claim} claim names no OneStop role ({', '.join(STAFF_ROLES)})")


def load_issuers(path: Path) -> list[IssuerConfig]:
    """The issuers of the file at ``path``; IssuersFileError naming the entry when it is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise IssuersFileError(f"ONESTOP_OIDC_ISSUERS: cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise IssuersFileError(f"ONESTOP_OIDC_ISSUERS: {path} is not TOML: {error}") from None
    return parse_issuers(data)


def parse_issuers(data: Mapping[str, Any]) -> list[IssuerConfig]:
    unknown = set(data) - {"issuer"}
    if unknown:
        raise IssuersFileError(f"ONESTOP_OIDC_ISSUERS: unknown tables {', '.join(sorted(unknown))}; only [[issuer]]")
    entries = data.get("issuer", [])
    if not isinstance(entries, list):
        raise IssuersFileError("ONESTOP_OIDC_ISSUERS: issuers are [[issuer]] tables")
    issuers = [_issuer(i, entry) for i, entry in enumerate(entries)]
    for attribute in ("name", "url"):
        seen: set[str] = set()
        for issuer in issuers:
            value = getattr(issuer, attribute)
            if value in seen:
                raise IssuersFileError(f"ONESTOP_OIDC_ISSUERS: two issuers have {attribute} {value!r}")
            seen.add(value)
    return issuers


def _issuer(index: int, entry: Any) -> IssuerConfig:
    where = f"ONESTOP_OIDC_ISSUERS: issuer[{index}]"
    if not isinstance(entry, dict):
        raise IssuersFileError(f"{where} is not a table")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise IssuersFileError(f"{where}: unknown fields {', '.join(sorted(unknown))}")
    for required in ("name", "url", "audience", "kind"):
        if not isinstance(entry.get(required), str) or not entry[required]:
            raise IssuersFileError(f"{where}: {required} is required (a string)")
    name = entry["name"]
    if not (name.replace("-", "").isalnum() and name.isascii() and name == name.lower()):
        raise IssuersFileError(f"{where}: name {name!r} must be lowercase letters, digits and '-' (it appears in URLs)")
    where = f"ONESTOP_OIDC_ISSUERS: issuer {name!r}"
    if entry["kind"] not in KINDS:
        raise IssuersFileError(f"{where}: kind must be citizen or staff, not {entry['kind']!r}")
    if not entry["url"].startswith(("https://", "http://")):
        raise IssuersFileError(f"{where}: url must be an http(s) URL (the tokens' iss)")
    algorithms = tuple(entry.get("algorithms", DEFAULT_ALGORITHMS))
    refused = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
    if refused or not algorithms:
        raise IssuersFileError(f"{where}: algorithms {', '.join(map(str, refused)) or '(none)'} not accepted;"
                               f" choose from {', '.join(SUPPORTED_ALGORITHMS)} (never none or HS*)")
    if entry["kind"] == "staff" and not entry.get("role_claim"):
        raise IssuersFileError(f"{where}: a staff issuer needs role_claim (and org_claim for officers)")
    role_map = entry.get("role_map", {})
    if not isinstance(role_map, dict) or any(v not in STAFF_ROLES for v in role_map.values()):
        raise IssuersFileError(f"{where}: role_map values must be OneStop staff roles ({', '.join(STAFF_ROLES)})")
    for text in ("national_id_claim", "ial_claim", "role_claim", "org_claim", "client_id", "client_secret", "scope"):
        if text in entry and (not isinstance(entry[text], str) or not entry[text]):
            raise IssuersFileError(f"{where}: {text} must be a non-empty string")
    default_scope = "openid pid name ial" if entry["kind"] == "citizen" else "openid profile"
    return IssuerConfig(
        name=name, url=entry["url"], audience=entry["audience"], kind=entry["kind"],
        national_id_claim=entry.get("national_id_claim", "pid"), ial_claim=entry.get("ial_claim", "ial"),
        role_claim=entry.get("role_claim"), org_claim=entry.get("org_claim"), role_map=dict(role_map),
        algorithms=algorithms, client_id=entry.get("client_id"), client_secret=entry.get("client_secret"),
        scope=entry.get("scope", default_scope),
    )
