"""What finding a person's records costs in the access and portability export: the sections
that existed before (requests, payments, events) read the old way (by the national ID the views
hold) and the new way (also by the blind index through the person's key sets), and the whole
export with the new sections, in the same run.

A throwaway database on the real PostgreSQL at 127.0.0.1:5432 is filled with SQL (no API):
``--people`` people with two requests each, a payment for one, their stored events (three a
request, two a payment) and their key sets and links. Each round exports ``--sample`` people
with the old queries and with the new sources, alternating which goes first.

    .venv/bin/python bench/subject_export.py [--people 20000] [--sample 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg  # noqa: E402
import psycopg  # noqa: E402

import _harness as h  # noqa: E402
from _harness import national_id  # noqa: E402
from tests.conftest import SUBJECT_INDEX, create_database, drop_database, settings_for  # noqa: E402

SERVER = h.PG_ADMIN_DSN

# The three sections as they were before this change (infrastructure/privacy/subject_data.py):
# the same documents, read by the national ID the views hold only.
_OLD_AGGREGATES = (
    "SELECT id FROM request_summaries WHERE applicant_national_id = $1"
    " UNION ALL SELECT p.id FROM payments_view p JOIN request_summaries r ON r.id = p.request_id WHERE r.applicant_national_id = $1"
)


def old_sources(pool: asyncpg.Pool) -> list[Any]:
    from infrastructure.privacy.subject_data import EventsSource, PaymentsSource, RequestsSource
    from infrastructure.views.read_models import REQUEST_SELECT

    class OldRequests(RequestsSource):
        sql = REQUEST_SELECT + " WHERE applicant_national_id = $1 ORDER BY submitted_at, id"

    class OldPayments(PaymentsSource):
        sql = ("SELECT p.id::text AS id, p.request_id::text AS request_id, p.reference, p.organization, p.amount_satang, p.status,"
               " p.promptpay_payload, p.expires_at, p.version, p.position, p.method, p.updated_at, p.discrepancies,"
               " p.notice_id::text AS notice_id, p.instalment FROM payments_view p JOIN request_summaries r ON r.id = p.request_id"
               " WHERE r.applicant_national_id = $1 ORDER BY p.position, p.id")

    class OldEvents(EventsSource):
        sql = ("SELECT notification_id, originator_id::text AS aggregate_id, originator_version, topic, state"
               f" FROM onestop_events WHERE originator_id IN ({_OLD_AGGREGATES}) ORDER BY notification_id")

    old = [OldRequests(pool, SUBJECT_INDEX.reference), OldPayments(pool, SUBJECT_INDEX.reference), OldEvents(pool, SUBJECT_INDEX.reference)]
    for source in old:
        source.arguments = lambda national_id: (national_id,)  # type: ignore[method-assign]
    return old


def fill(conninfo: str, people: int) -> None:
    ids = [national_id(n, first="3") for n in range(people)]
    indexes = [SUBJECT_INDEX.reference(i) for i in ids]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE people (n int, nid text, idx text, subject uuid, r1 uuid, r2 uuid, pay uuid)")
        with conn.cursor().copy("COPY people (n, nid, idx, subject, r1, r2, pay) FROM STDIN") as copy:
            for n, (nid, idx) in enumerate(zip(ids, indexes)):
                copy.write_row((n, nid, idx, _uuid(n, 1), _uuid(n, 2), _uuid(n, 3), _uuid(n, 4)))
        conn.execute(
            "INSERT INTO request_summaries (id, reference, service, organization, filed_at, channel, status, version, position,"
            " applicant_national_id, applicant_name, details, submitted_at, updated_at, due_at, applicant_index)"
            " SELECT r, 'OS69-' || lpad((n * 2 + k)::text, 7, '0'), 'complaint', 'MUN-SAENSUK', 'MUN-SAENSUK', 'web', 'submitted', 3,"
            " n * 10 + k, nid, 'ทดสอบ', '{\"subject\": \"x\"}', now(), now(), now() + interval '15 days', idx"
            " FROM people, LATERAL (VALUES (r1, 0), (r2, 1)) AS t(r, k)")
        conn.execute(
            "INSERT INTO payments_view (id, request_id, reference, organization, amount_satang, status, promptpay_payload, expires_at,"
            " version, position, updated_at, discrepancies)"
            " SELECT pay, r1, 'OS69-' || lpad((n * 2)::text, 7, '0'), 'MUN-SAENSUK', 2000, 'paid', 'x', now(), 2, n * 10 + 5, now(), '[]'"
            " FROM people")
        conn.execute("INSERT INTO subject_keys (subject_id, blind_index, wrapped_key, master_key_id) SELECT subject, idx, 'k', 'm' FROM people")
        conn.execute("INSERT INTO subject_aggregates (aggregate_id, subject_id)"
                     " SELECT a, subject FROM people, LATERAL (VALUES (r1), (r2), (pay)) AS t(a)")
        conn.execute(
            "INSERT INTO onestop_events (originator_id, originator_version, topic, state)"
            " SELECT a, v, 'onestop:ServiceRequest.Submitted', convert_to('{\"_subject_\":\"' || subject || '\",\"x\":' || v || '}', 'UTF8')"
            " FROM people, LATERAL (VALUES (r1, 3), (r2, 3), (pay, 2)) AS t(a, m), generate_series(1, m) AS v"
            " ORDER BY n, a, v")
        conn.execute("ANALYZE")


def _uuid(n: int, k: int) -> str:
    return f"{k:08x}-0000-4000-8000-{n:012x}"


async def new_export(sources: list[Any], nid: str) -> int:
    count = 0
    for source in sources:
        async for _ in source.records(nid):
            count += 1
    return count


async def main(args: argparse.Namespace) -> None:
    from infrastructure.privacy.subject_data import subject_sources
    from onestop.bootstrap import migrate

    url = create_database(SERVER, "onestop_bench")
    try:
        settings = settings_for(url, ONESTOP_POOL_SIZE="2")
        migrate(settings)
        began = time.perf_counter()
        fill(settings.database.conninfo(), args.people)
        print(f"filled {args.people} people ({2 * args.people} requests, {args.people} payments, {8 * args.people} events)"
              f" in {time.perf_counter() - began:.1f} s")
        pool = await asyncpg.create_pool(settings.database.url(), min_size=1, max_size=1)
        try:
            everything = list(subject_sources(pool, SUBJECT_INDEX.reference, None))
            same_sections = [s for s in everything if s.name in ("requests", "payments", "events")]
            old = old_sources(pool)
            step = max(1, args.people // args.sample)
            sample = [national_id(n, first="3") for n in range(0, args.people, step)][: args.sample]
            variants = {
                "old: requests, payments, events": lambda nid: new_export(old, nid),
                "new: requests, payments, events": lambda nid: new_export(same_sections, nid),
                "new: all seven sections": lambda nid: new_export(everything, nid),
            }
            for run in variants.values():  # warm-up
                for nid in sample[:20]:
                    await run(nid)
            timings: dict[str, list[float]] = {name: [] for name in variants}
            counts: dict[str, int] = {}
            for round_ in range(args.rounds):
                order = list(variants) if round_ % 2 == 0 else list(variants)[::-1]
                for name in order:
                    start = time.perf_counter()
                    counts[name] = sum([await variants[name](nid) for nid in sample])
                    timings[name].append((time.perf_counter() - start) * 1000 / len(sample))
        finally:
            await pool.close()
    finally:
        drop_database(SERVER, url)
    print(f"{len(sample)} people exported per round, {args.rounds} rounds; ms per person's export (median of rounds)")
    for name, runs in timings.items():
        print(f"{name:<34}{statistics.median(runs):>8.2f} ms   (rounds {min(runs):.2f}-{max(runs):.2f}; {counts[name]} records a round)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
