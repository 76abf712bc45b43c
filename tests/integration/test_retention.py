"""Retention: people whose every request closed longer ago than its service's period are
listed by the report and erased by the sweep; anyone with an open or younger request is kept."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import AsyncIterator

import pytest

from application.ports import Clock
from onestop.privacy_commands import retention
from onestop.settings import Settings
from tests.integration.api_harness import CITIZEN, OFFICER, Harness, complaint, serving, token

pytestmark = pytest.mark.postgres

B_ID, C_ID = "1101700230708", "1201700230715"
B, C = token("citizen", B_ID), token("citizen", C_ID)
FLYER = {"description": "ประกาศ", "area": "ตลาด", "start_date": "2026-12-01", "end_date": "2026-12-03", "quantity": 20}


class Later(Clock):
    def __init__(self, years: float) -> None:
        self.at = datetime.now(timezone.utc) + timedelta(days=365.25 * years)

    def now(self) -> datetime:
        return self.at


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Harness]:
    async with serving(settings) as harness:
        yield harness


async def test_the_report_lists_and_the_sweep_erases_only_people_whose_every_request_passed_retention(api: Harness) -> None:
    a = await api.submit()
    assert (await api.act(a["id"], "reject", {"reason": "ซ้ำ"})).status == 200
    b_complaint = await api.submit(complaint(applicant={"national_id": B_ID, "name": "บี"}), headers=B)
    assert (await api.act(b_complaint["id"], "reject", {"reason": "ซ้ำ"})).status == 200
    b_flyer = await api.submit(complaint(service="local.flyer-permit", details=FLYER, applicant={"national_id": B_ID, "name": "บี"}), headers=B)
    assert (await api.client.post(f"/v1/payments/{b_flyer['payment']['id']}/record-cash", json={"amount_satang": 20000}, headers=OFFICER)).status == 200
    for action in ("approve", "complete"):
        assert (await api.act(b_flyer["id"], action, {})).status == 200
    c = await api.submit(complaint(applicant={"national_id": C_ID, "name": "ซี"}), headers=C)  # still open
    await api.client.get(f"/v1/service-requests?min_position={api.event_count()}", headers=OFFICER)

    assert retention(api.settings, sweep=False)["would_erase"] == []  # nothing has passed yet
    in_three_years = retention(api.settings, sweep=False, clock=Later(3))
    assert [e["references"] for e in in_three_years["would_erase"]] == [[a["reference"]]]  # complaints: 2 years
    assert retention(api.settings, sweep=False, clock=Later(3)) == in_three_years  # a report erases nobody

    swept = retention(api.settings, sweep=True, clock=Later(3))
    assert swept["count"] == 1 and swept["erased"][0]["references"] == [a["reference"]]
    await api.client.get(f"/v1/service-requests?min_position={api.event_count()}", headers=OFFICER)
    erased = await (await api.client.get(f"/v1/service-requests/{a['id']}", headers=OFFICER)).json()
    assert erased["applicant"] == {"national_id": "[erased]", "name": "[erased]"}
    kept = await (await api.client.get(f"/v1/service-requests/{b_complaint['id']}", headers=OFFICER)).json()
    assert kept["applicant"]["national_id"] == B_ID  # B's flyer permit is kept 10 years, so B is kept whole

    later = retention(api.settings, sweep=False, clock=Later(11))
    assert [sorted(e["references"]) for e in later["would_erase"]] == [sorted([b_complaint["reference"], b_flyer["reference"]])]
    assert c["reference"] not in str(later)  # C has an open request
    # The erased person's list is empty; the sweep recorded why.
    assert (await (await api.client.get("/v1/service-requests", headers=CITIZEN)).json())["items"] == []
