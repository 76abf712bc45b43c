"""A stored event the views cannot apply is set aside; the views go on with the rest, and
`onestop projector --retry-failed` applies it once the cause is fixed.

The scenario: an older release of OneStop wrote `ServiceRequest.Assigned` with the officer under
`assignee` (the field is `officer` today). The log accepted it, so the views must cope: they set
it aside and go on. The fix deployed is a projection that also reads the older name (simulated by
patching the fold), and then the operator runs `--retry-failed`.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from infrastructure.views.projection_failures import count_projection_failures
from tests.conftest import KEY_ENV
from tests.integration.api_harness import OFFICER, Harness, eventually, write_an_old_style_assignment

pytestmark = pytest.mark.postgres


def _rows(harness: Harness, sql: str, *args: Any) -> list[tuple]:
    with psycopg.connect(harness.settings.database.conninfo()) as conn:
        return conn.execute(sql, args).fetchall()


async def test_an_event_the_views_cannot_apply_is_set_aside_the_views_go_on_and_retry_failed_applies_it_after_the_fix(
    api: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    template = await api.submit()
    response = await api.act(template["id"], "assign", {"officer": "officer.b"})
    assert response.status == 200, await response.text()
    target = await api.submit()
    poison = write_an_old_style_assignment(api, template["id"], target["id"])
    after = await api.submit()

    # The views went past the bad event: the request filed after it is there.
    async def seen() -> bool:
        return (await api.client.get(f"/v1/service-requests/{after['id']}?min_position={after['position']}", headers=OFFICER)).status == 200
    await eventually(seen, 10, what="the views to apply the events after the bad one")
    [(view, position, topic, error)] = _rows(api, "SELECT view, position, topic, error FROM projection_failures")
    assert (view, position, topic) == ("views", poison, "onestop:ServiceRequest.Assigned")
    assert "officer" in error
    assert _rows(api, "SELECT assigned_to, version FROM request_summaries WHERE id = %s", target["id"]) == [(None, target["version"])]
    with psycopg.connect(api.settings.database.conninfo()) as conn:
        assert count_projection_failures(conn) == 1
    # Set aside once, never retried by the projector on its own.
    more = await api.submit()
    await api.client.get(f"/v1/service-requests/{more['id']}?min_position={more['position']}", headers=OFFICER)
    assert _rows(api, "SELECT retried_at FROM projection_failures") == [(None,)]
    counts_before = _rows(api, "SELECT organization, day, service, submitted FROM daily_counts ORDER BY 1, 2, 3")

    # The fix: the projection reads the older field name too.
    import infrastructure.views.recorder as views_module

    fold = views_module.fold_request

    def fixed_fold(row: dict[str, Any] | None, event: Any, position: int) -> dict[str, Any]:
        if type(event).__name__ == "Assigned" and not hasattr(event, "officer"):
            object.__setattr__(event, "officer", event.assignee)
        return fold(row, event, position)

    monkeypatch.setattr(views_module, "fold_request", fixed_fold)
    monkeypatch.setenv("ONESTOP_DATABASE_URL", api.settings.database_url or "")
    for name, value in KEY_ENV.items():  # the projector needs the personal-data keys
        monkeypatch.setenv(name, value)
    from onestop.cli import main

    # Beside the live projector: both take the views' write lock.
    with pytest.raises(SystemExit) as exited:
        main(["projector", "--retry-failed"])
    assert exited.value.code == 0
    assert f"applied 1 set-aside events (positions {poison})" in capsys.readouterr().out
    assert _rows(api, "SELECT count(*) FROM projection_failures") == [(0,)]
    assert _rows(api, "SELECT assigned_to, version, position FROM request_summaries WHERE id = %s", target["id"]) == [
        ("officer.old-release", target["version"] + 1, poison)
    ]
    assert _rows(api, "SELECT assigned_to FROM work_queue WHERE request_id = %s", target["id"]) == [("officer.old-release",)]
    # Nothing counted twice.
    assert _rows(api, "SELECT organization, day, service, submitted FROM daily_counts ORDER BY 1, 2, 3") == counts_before


async def test_a_rebuild_lists_the_events_it_set_aside_and_retry_failed_reports_those_still_failing(
    api: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    template = await api.submit()
    await api.act(template["id"], "assign", {"officer": "officer.b"})
    target = await api.submit()
    poison = write_an_old_style_assignment(api, template["id"], target["id"])
    last = await api.submit()
    await api.client.get(f"/v1/service-requests/{last['id']}?min_position={last['position']}", headers=OFFICER)
    api.stop_projector()
    monkeypatch.setenv("ONESTOP_DATABASE_URL", api.settings.database_url or "")
    for name, value in KEY_ENV.items():  # the projector needs the personal-data keys
        monkeypatch.setenv(name, value)
    from onestop.cli import main

    main(["projector", "--rebuild"])
    out = capsys.readouterr().out
    assert "1 events set aside" in out and f"views position {poison} (onestop:ServiceRequest.Assigned)" in out
    assert _rows(api, "SELECT position FROM projection_failures") == [(poison,)]
    assert _rows(api, "SELECT count(*) FROM request_summaries") == [(3,)]
    # Not fixed yet: the retry says so, and keeps the row.
    with pytest.raises(SystemExit) as exited:
        main(["projector", "--retry-failed"])
    assert exited.value.code == 1
    assert "still set aside" in capsys.readouterr().out
    assert _rows(api, "SELECT count(*) FROM projection_failures WHERE retried_at IS NOT NULL") == [(1,)]
