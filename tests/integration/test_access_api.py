"""Who may do what, over HTTP: the applicant's own actions and staff acting for the applicant."""

from __future__ import annotations

from typing import Any

from tests.integration.api_harness import CITIZEN, OFFICER, OTHER_OFFICER, PAO_OFFICER, Harness, complaint


async def _filed_at_another_counter(api: Harness) -> dict[str, Any]:
    """A complaint to MUN-SAENSUK, filed at PAO-CBI's counter: PAO_OFFICER is its filing counter."""
    return await api.submit(complaint(channel="counter", organization="MUN-SAENSUK"), headers=PAO_OFFICER)


async def _info_requested(api: Harness) -> dict[str, Any]:
    state = await _filed_at_another_counter(api)
    asked = await api.act(state["id"], "request-info", {"message": "แนบสำเนาทะเบียนบ้าน"}, headers=OFFICER)
    assert asked.status == 200, await asked.text()
    return await asked.json()


async def _events(api: Harness, request_id: str) -> list[dict[str, Any]]:
    return (await (await api.client.get(f"/v1/service-requests/{request_id}/events", headers=CITIZEN)).json())["items"]


async def _refused_naming_the_flag(response: Any) -> None:
    assert response.status == 403 and response.content_type == "application/problem+json"
    assert [e["field"] for e in (await response.json())["errors"]] == ["on_behalf_of_applicant"]


async def test_an_officer_of_the_filing_counter_cannot_withdraw_without_saying_it_is_for_the_applicant(api: Harness) -> None:
    state = await _filed_at_another_counter(api)
    count = api.event_count()
    await _refused_naming_the_flag(await api.act(state["id"], "withdraw", {"reason": "ผู้ยื่นขอยกเลิก"}, headers=PAO_OFFICER))
    await _refused_naming_the_flag(await api.act(state["id"], "withdraw", {"on_behalf_of_applicant": False}, headers=PAO_OFFICER))
    assert api.event_count() == count


async def test_an_officer_of_the_filing_counter_withdraws_for_the_applicant_and_the_event_says_so(api: Harness) -> None:
    state = await _filed_at_another_counter(api)
    done = await api.act(state["id"], "withdraw", {"reason": "ผู้ยื่นขอยกเลิก", "on_behalf_of_applicant": True}, headers=PAO_OFFICER)
    assert done.status == 200 and (await done.json())["status"] == "withdrawn"
    last = (await _events(api, state["id"]))[-1]
    assert last["type"] == "ServiceRequest.Withdrawn" and last["data"]["on_behalf_of_applicant"] is True
    assert last["actor"] == {"sub": "officer.cbi", "role": "officer", "org": "PAO-CBI", "issuer": "onestop"}


async def test_an_officer_of_the_filing_counter_provides_information_only_for_the_applicant_saying_so(api: Harness) -> None:
    state = await _info_requested(api)
    count = api.event_count()
    await _refused_naming_the_flag(await api.act(state["id"], "provide-info", {"message": "แนบแล้ว"}, headers=PAO_OFFICER))
    assert api.event_count() == count
    done = await api.act(state["id"], "provide-info", {"message": "แนบแล้ว", "on_behalf_of_applicant": True}, headers=PAO_OFFICER)
    assert done.status == 200 and (await done.json())["status"] == "in_review"
    last = (await _events(api, state["id"]))[-1]
    assert last["type"] == "ServiceRequest.InfoProvided" and last["data"]["on_behalf_of_applicant"] is True


async def test_an_officer_of_the_responsible_organisation_also_needs_the_flag_to_withdraw(api: Harness) -> None:
    state = await api.submit()
    count = api.event_count()
    await _refused_naming_the_flag(await api.act(state["id"], "withdraw", {}, headers=OFFICER))
    assert api.event_count() == count
    done = await api.act(state["id"], "withdraw", {"on_behalf_of_applicant": True}, headers=OFFICER)
    assert done.status == 200 and (await done.json())["status"] == "withdrawn"


async def test_an_officer_of_an_unrelated_organisation_cannot_take_the_applicants_actions_even_saying_so(api: Harness) -> None:
    state = await _info_requested(api)
    count = api.event_count()
    withdraw = await api.act(state["id"], "withdraw", {"on_behalf_of_applicant": True}, headers=OTHER_OFFICER)
    provide = await api.act(state["id"], "provide-info", {"message": "x", "on_behalf_of_applicant": True}, headers=OTHER_OFFICER)
    assert (withdraw.status, provide.status) == (404, 404)
    assert api.event_count() == count


async def test_the_applicant_takes_their_own_actions_and_the_events_say_not_on_anyones_behalf(api: Harness) -> None:
    state = await _info_requested(api)
    provided = await api.act(state["id"], "provide-info", {"message": "แนบแล้ว"}, headers=CITIZEN)
    assert provided.status == 200
    withdrawn = await api.act(state["id"], "withdraw", {"reason": "ไม่ต้องการแล้ว"}, headers=CITIZEN)
    assert withdrawn.status == 200 and (await withdrawn.json())["status"] == "withdrawn"
    events = await _events(api, state["id"])
    assert [e["data"]["on_behalf_of_applicant"] for e in events if e["type"] in ("ServiceRequest.InfoProvided", "ServiceRequest.Withdrawn")] == [False, False]
    count = api.event_count()
    saying = await api.act(state["id"], "withdraw", {"on_behalf_of_applicant": True}, headers=CITIZEN)
    assert saying.status == 422 and api.event_count() == count


async def test_tokens_of_another_issuer_or_too_long_a_life_get_401_problem_with_invalid_token(api: Harness) -> None:
    import time

    import jwt

    from tests.conftest import JWT_SECRET

    now = int(time.time())
    claims = {"sub": "dev-admin", "role": "admin", "iss": "onestop", "iat": now, "exp": now + 600}
    assert (await api.client.get("/v1/service-requests", headers={"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET)}"})).status == 200
    for bad in ({**claims, "iss": "elsewhere"}, {**claims, "exp": now + 13 * 3600}):
        response = await api.client.get("/v1/service-requests", headers={"Authorization": f"Bearer {jwt.encode(bad, JWT_SECRET)}"})
        assert response.status == 401 and response.content_type == "application/problem+json"
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    missing = await api.client.get("/v1/service-requests")
    assert missing.status == 401 and "invalid_token" not in missing.headers["WWW-Authenticate"]
