"""Reads that see their writes: a GET right after a 201 answers from the event store when the
views have not caught up, in the same shape as the views give it."""

from __future__ import annotations

import dataclasses
import uuid

from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN, CITIZEN_ID, OFFICER, OTHER_CITIZEN, ProjectorThread, complaint, eventually, start_harness


def paid_filing() -> dict:
    """A filing whose 201 already names a payment: a flyer permit has a flat fee and needs no
    registry check (a certified copy opens its payment only after the registry answered)."""
    return complaint(service="local.flyer-permit", channel="web", details={
        "description": "ประกาศงานวัด", "area": "ตลาดหนองมน", "start_date": "2026-12-01", "end_date": "2026-12-07", "quantity": 200})


async def test_twenty_submissions_each_read_at_once_with_its_payment_never_miss_while_the_projector_is_stopped(settings: Settings) -> None:
    # No projector: the views stay empty. Sixty requests by one citizen in a second or two pass
    # the subject's burst (40, then 20 a second): the limits are not what this test is about.
    harness = await start_harness(dataclasses.replace(settings, rate_limits=False))
    try:
        misses = []
        for _ in range(20):
            response = await harness.client.post("/v1/service-requests", json=paid_filing(),
                                                  headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4())})
            assert response.status == 201, await response.text()
            created = await response.json()
            assert response.headers["OneStop-Position"] == str(created["position"])
            got = await harness.client.get(response.headers["Location"], headers=CITIZEN)
            if got.status != 200 or (await got.json())["version"] != created["version"]:
                misses.append(("request", got.status))
            payment = await harness.client.get(f"/v1/payments/{created['payment']['id']}", headers=CITIZEN)
            if payment.status != 200 or (await payment.json())["request_id"] != created["id"]:
                misses.append(("payment", payment.status))
        assert misses == []
        with ProjectorThread(settings):
            assert (await harness.client.get("/v1/service-requests?min_position=1", headers=CITIZEN)).status == 200
    finally:
        await harness.client.close()


async def test_a_request_and_payment_from_the_event_store_look_exactly_as_the_views_show_them(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        created = await harness.submit(paid_filing())
        request_url, payment_url = f"/v1/service-requests/{created['id']}", f"/v1/payments/{created['payment']['id']}"
        from_store = [await (await harness.client.get(url, headers=CITIZEN)).json() for url in (request_url, payment_url)]
        with ProjectorThread(settings):
            async def views_have_it() -> bool:
                listed = await harness.client.get(f"/v1/service-requests?applicant={CITIZEN_ID}&min_position={created['position']}", headers=CITIZEN)
                return listed.status == 200 and len((await listed.json())["items"]) == 1

            await eventually(views_have_it, 10, "the views to reach the submission")
            from_views = [await (await harness.client.get(url, headers=CITIZEN)).json() for url in (request_url, payment_url)]
        assert from_store == from_views
    finally:
        await harness.client.close()


async def test_the_event_store_fallback_keeps_the_access_checks_and_404s_what_does_not_exist(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        created = await harness.submit(paid_filing())
        assert (await harness.client.get(f"/v1/service-requests/{created['id']}", headers=OTHER_CITIZEN)).status == 404
        assert (await harness.client.get(f"/v1/payments/{created['payment']['id']}", headers=OTHER_CITIZEN)).status == 404
        assert (await harness.client.get(f"/v1/service-requests/{uuid.uuid4()}", headers=CITIZEN)).status == 404
        # A payment's id is not a request's, and the other way round.
        assert (await harness.client.get(f"/v1/service-requests/{created['payment']['id']}", headers=CITIZEN)).status == 404
        assert (await harness.client.get(f"/v1/payments/{created['id']}", headers=CITIZEN)).status == 404
    finally:
        await harness.client.close()


async def test_a_list_with_min_position_waits_for_the_views_and_a_bad_one_is_refused_naming_the_field(settings: Settings) -> None:
    harness = await start_harness(settings)
    try:
        created = await harness.submit(paid_filing())
        with ProjectorThread(settings):
            listed = await harness.client.get(f"/v1/service-requests?min_position={created['position']}", headers=CITIZEN)
            assert listed.status == 200
            assert [item["id"] for item in (await listed.json())["items"]] == [created["id"]]
        from tests.integration.api_harness import OFFICER

        bad = await harness.client.get("/v1/organizations/MUN-SAENSUK/work-queue?min_position=x", headers=OFFICER)
        assert bad.status == 400 and (await bad.json())["errors"][0]["field"] == "min_position"
    finally:
        await harness.client.close()


async def test_a_receipt_verifies_the_moment_it_is_issued_before_the_views_have_it(settings: Settings) -> None:
    # No projector: a receipt's QR scanned at once is answered from the event store.
    harness = await start_harness(settings)
    try:
        response = await harness.client.post("/v1/service-requests", json=paid_filing(), headers={**CITIZEN, "Idempotency-Key": str(uuid.uuid4())})
        assert response.status == 201, await response.text()
        payment = (await response.json())["payment"]
        paid = await harness.client.post(f"/v1/payments/{payment['id']}/record-cash", json={"amount_satang": payment["amount_satang"]},
                                         headers=OFFICER)
        assert paid.status == 200, await paid.text()
        receipt = (await paid.json())["receipt"]
        verified = await harness.client.get(f"/v1/receipts/{receipt['id']}/verify")
        shown = await verified.json()
        assert verified.status == 200, shown
        assert shown["number"] == receipt["number"] and shown["amount_satang"] == payment["amount_satang"] and shown["status"] == "issued"
        assert "payer" not in shown and CITIZEN_ID not in str(shown)
        missing = await harness.client.get(f"/v1/receipts/{uuid.uuid4()}/verify")
        assert missing.status == 404
    finally:
        await harness.client.close()
