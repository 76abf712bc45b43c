"""What checking a bearer token costs per request (µs), with the issuer's keys already cached:
a trusted issuer's token (RS256, ES256, EdDSA) through ``OidcTokenVerifier.verify``, against an
HS256 development token through ``api.auth`` in the same run; and the per-request cost once the
API has remembered a verified token (``VerifiedTokens``), which is what most requests pay.

    .venv/bin/python bench/token_verification.py [--rounds 5] [--calls 2000]

The OIDC provider simulator serves discovery and the JWKS on a loopback port; the verifier
fetches them once (the count of JWKS fetches is printed, and must stay 1 per issuer). Each
round times ``--calls`` verifications of one token; the median round is reported. No database.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402

from api.auth import VerifiedTokens, _verify, make_token  # noqa: E402
from infrastructure.identity.issuers import IssuerConfig  # noqa: E402
from infrastructure.identity.verifier import OidcTokenVerifier  # noqa: E402
from simulators.oidc import OidcProvider, build_oidc_app  # noqa: E402

CITIZEN = "3100600445635"
SECRET = "bench-secret-that-is-long-enough-for-hs256-0123456789"


async def _serve(alg: str, port: int) -> tuple[OidcProvider, web.AppRunner]:
    provider = OidcProvider(kind="citizen", alg=alg, issuer=f"http://127.0.0.1:{port}")
    runner = web.AppRunner(build_oidc_app(provider), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return provider, runner


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _time_async(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - started) / calls * 1e6


def _time_sync(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls * 1e6


async def main(rounds: int, calls: int) -> None:
    results: dict[str, list[float]] = {}
    hs = make_token(SECRET, sub=CITIZEN, role="citizen")
    for _ in range(rounds):
        results.setdefault("HS256 development token (baseline)", []).append(_time_sync(lambda: _verify(SECRET, hs, 43_200), calls))
    runners = []
    fetches = {}
    for alg in ("RS256", "ES256", "EdDSA"):
        port = _free_port()
        provider, runner = await _serve(alg, port)
        runners.append(runner)
        issuer = IssuerConfig(name=f"sim-{alg.lower()}", url=provider.issuer or "", audience="onestop", kind="citizen", algorithms=(alg,))
        verifier = OidcTokenVerifier([issuer], max_ttl_seconds=43_200)
        token = provider.sign(provider.claims_for(issuer.url, CITIZEN, "onestop"))
        await verifier.verify(token)  # the one fetch of discovery and keys
        for _ in range(rounds):
            results.setdefault(f"{alg} from a trusted issuer, keys cached", []).append(await _time_async(lambda: verifier.verify(token), calls))
        fetches[alg] = provider.stats["jwks"]
        cache = VerifiedTokens()
        verified = await verifier.verify(token)
        cache.put(token, verified.actor, verified.expires_at)
        for _ in range(rounds):
            results.setdefault(f"{alg} token already verified (VerifiedTokens hit)", []).append(_time_sync(lambda: cache.get(token), calls))
        await verifier.close()
    for runner in runners:
        await runner.cleanup()
    baseline = statistics.median(results["HS256 development token (baseline)"])
    print(f"token verification per call, median of {rounds} rounds x {calls} calls; Python {platform.python_version()}, {platform.machine()}")
    print(f"{'what':58} {'µs/call':>9} {'x HS256':>8}")
    for name, samples in results.items():
        median = statistics.median(samples)
        print(f"{name:58} {median:9.1f} {median / baseline:8.2f}")
    print("JWKS fetches per issuer during the run (must be 1):", fetches)
    if any(count != 1 for count in fetches.values()):
        sys.exit("the keys were fetched more than once: the cache did not hold")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.calls))
