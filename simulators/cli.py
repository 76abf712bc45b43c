"""Command-line entry points that run the simulators as HTTP servers."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable

from aiohttp import web

from .faults import Faults

CALLBACK_SECRET_ENV = "ONESTOP_BANK_CALLBACK_SECRET"
# Only for a developer's machine; a deployment sets ONESTOP_BANK_CALLBACK_SECRET on both sides.
DEV_CALLBACK_SECRET = "onestop-dev-bank-secret"


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be a number from 0 to 1")
    return value


def _common_parser(prog: str, description: str, port: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--seed", type=int, default=42, help="random seed for data and faults (default 42)")
    parser.add_argument("--latency-ms", type=int, default=0, help="latency added to every call")
    parser.add_argument("--error-rate", type=_rate, default=0.0, help="share of calls refused with 503")
    parser.add_argument(
        "--timeout-rate", type=_rate, default=0.0, help="share of calls applied but answered only after --timeout-seconds"
    )
    parser.add_argument("--timeout-seconds", type=float, default=30.0)
    parser.add_argument("--outage", action="store_true", help="answer 503 to everything but /health and /admin")
    parser.add_argument("--no-access-log", dest="access_log", action="store_false",
                        help="do not log every request (benches: the log line costs more than the answer); "
                             "GET /admin/stats counts calls by route either way")
    return parser


def _faults(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Faults:
    try:
        return Faults(
            latency_ms=args.latency_ms,
            error_rate=args.error_rate,
            timeout_rate=args.timeout_rate,
            timeout_seconds=args.timeout_seconds,
            outage=args.outage,
        )
    except ValueError as exc:
        parser.error(str(exc))


def _access_log(args: argparse.Namespace) -> dict[str, object]:
    """aiohttp's request log is on unless --no-access-log."""
    return {} if args.access_log else {"access_log": None}


def _announce(label: str, host: str, port: int) -> Callable[[str], None]:
    def announce(message: str) -> None:
        # aiohttp's own message carries the bound address, which differs from --port when it is 0.
        match = re.search(r"https?://\S+", message)
        url = match.group(0).rstrip(",") if match else f"http://{host}:{port}"
        print(f"{label} simulator listening on {url}", flush=True)

    return announce


def run_registry(argv: list[str]) -> None:
    """Run the civil-registry simulator until interrupted (flags: see --help)."""
    from .registry import build_registry_app

    parser = _common_parser("onestop simulate registry", "Civil registry (DOPA linkage) simulator.", 8091)
    args = parser.parse_args(argv)
    app = build_registry_app(seed=args.seed, faults=_faults(args, parser))
    web.run_app(app, host=args.host, port=args.port, print=_announce("registry", args.host, args.port), **_access_log(args))


def run_bank(argv: list[str]) -> None:
    """Run the bank bill-payment gateway simulator until interrupted (flags: see --help)."""
    from .bank import build_bank_app

    parser = _common_parser("onestop simulate bank", "Bank bill-payment gateway simulator.", 8092)
    parser.add_argument("--callback-url", default=None, help="where payment notices are POSTed")
    parser.add_argument(
        "--callback-secret",
        default=os.environ.get(CALLBACK_SECRET_ENV),
        help=f"HMAC key of X-Bank-Signature (default ${CALLBACK_SECRET_ENV})",
    )
    parser.add_argument("--duplicate-rate", type=_rate, default=0.2, help="share of notices sent twice")
    parser.add_argument("--late-rate", type=_rate, default=0.2, help="share of notices delayed by --late-seconds")
    parser.add_argument("--late-seconds", type=float, default=2.0)
    parser.add_argument(
        "--biller-id", action="append", dest="biller_ids", default=None, help="accepted biller ID (repeatable)"
    )
    args = parser.parse_args(argv)
    for biller_id in args.biller_ids or ():
        if not (len(biller_id) == 15 and biller_id.isdigit()):
            parser.error(f"--biller-id {biller_id}: must be 15 digits")
    secret = args.callback_secret
    if not secret:
        secret = DEV_CALLBACK_SECRET
        print(
            f"warning: {CALLBACK_SECRET_ENV} is not set; signing notices with the development secret",
            file=sys.stderr,
        )
    app = build_bank_app(
        seed=args.seed,
        faults=_faults(args, parser),
        callback_url=args.callback_url,
        callback_secret=secret,
        duplicate_rate=args.duplicate_rate,
        late_rate=args.late_rate,
        late_seconds=args.late_seconds,
        biller_ids=tuple(args.biller_ids) if args.biller_ids else None,
    )
    web.run_app(app, host=args.host, port=args.port, print=_announce("bank", args.host, args.port), **_access_log(args))


def run_oidc(argv: list[str]) -> None:
    """Run the OpenID Connect provider simulator until interrupted (flags: see --help)."""
    from .oidc import ALGORITHMS, OidcProvider, build_oidc_app

    parser = argparse.ArgumentParser(prog="onestop simulate oidc", description="OpenID Connect provider simulator (ThaiD-shaped for citizens, or a staff IdP).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--kind", choices=["citizen", "staff"], default="citizen", help="citizen: pid and ial claims (ThaiD); staff: onestop_role and onestop_org")
    parser.add_argument("--issuer", help="the iss of its tokens (default: the address it is reached at)")
    parser.add_argument("--audience", default="onestop", help="aud of access tokens (default onestop)")
    parser.add_argument("--client-id", default="onestop", help="the client registered for browser sign-in (aud of ID tokens)")
    parser.add_argument("--client-secret", default=None, help="that client's secret (default: a public client, PKCE only)")
    parser.add_argument("--ial", default="2.3", help="identity assurance level of citizens' tokens (default 2.3)")
    parser.add_argument("--alg", choices=ALGORITHMS, default="RS256")
    parser.add_argument("--token-ttl", type=int, default=3600, help="seconds tokens live (default 3600)")
    args = parser.parse_args(argv)
    provider = OidcProvider(kind=args.kind, audience=args.audience, client_id=args.client_id, client_secret=args.client_secret,
                            issuer=args.issuer, ial=args.ial, alg=args.alg, token_ttl_seconds=args.token_ttl)
    web.run_app(build_oidc_app(provider), host=args.host, port=args.port, print=_announce(f"oidc ({args.kind})", args.host, args.port))


if __name__ == "__main__":
    commands = {"registry": run_registry, "bank": run_bank, "oidc": run_oidc}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit("usage: python -m simulators.cli registry|bank|oidc [flags]")
    commands[sys.argv[1]](sys.argv[2:])
