"""Query strings are checked before any handler reads them: a parameter the operation does not
take (per the OpenAPI document) or a control character is a 400 naming it, on literal and
templated routes alike; a documented parameter passes; no query string, nothing to check."""

from __future__ import annotations

import uuid

from tests.integration.api_harness import CITIZEN, OFFICER, Harness, complaint


async def _refused(api: Harness, path: str, name: str, headers: dict[str, str] = CITIZEN) -> None:
    response = await api.client.get(path, headers=headers)
    assert response.status == 400, (path, response.status, await response.text())
    problem = await response.json()
    assert problem["title"] == "Bad query parameter"
    assert name in str(problem.get("errors") or problem["detail"])


async def test_an_undocumented_parameter_is_refused_on_literal_and_templated_routes(api: Harness) -> None:
    created = await api.submit(complaint())
    await _refused(api, "/v1/service-requests?statuz=submitted", "statuz")
    await _refused(api, f"/v1/service-requests/{created['id']}?page=2", "page")
    await _refused(api, f"/v1/service-requests/{created['id']}/events?verbose=1", "verbose")
    # HEAD is checked as GET.
    assert (await api.client.head("/v1/service-requests?statuz=1", headers=CITIZEN)).status == 400


async def test_documented_parameters_pass_and_requests_without_a_query_are_not_checked(api: Harness) -> None:
    created = await api.submit(complaint())
    assert (await api.client.get("/v1/service-requests?status=in_review&limit=5", headers=OFFICER)).status == 200
    assert (await api.client.get(f"/v1/service-requests/{created['id']}?min_position=1", headers=CITIZEN)).status == 200
    assert (await api.client.get(f"/v1/service-requests/{created['id']}", headers=CITIZEN)).status == 200
    assert (await api.client.get(f"/v1/service-requests/{created['id']}?", headers=CITIZEN)).status == 200


async def test_a_control_character_in_a_query_is_refused_naming_the_parameter(api: Harness) -> None:
    await _refused(api, "/v1/service-requests?status=a%01b", "status")


async def test_an_unrouted_path_with_a_query_is_still_a_404(api: Harness) -> None:
    response = await api.client.get(f"/v1/nothing-here/{uuid.uuid4()}?x=1", headers=CITIZEN)
    assert response.status == 404
