"""The access table: one source of truth, printed in the README."""

from __future__ import annotations

import re

import pytest

from application.access import (
    ACCESS, ACTIONS, ON_BEHALF, ON_BEHALF_FIELD, RELATIONS, YES, check_can_act, check_can_submit, markdown_table, permission,
)
from application.errors import Forbidden, NotFound
from domain.actors import Actor
from domain.errors import InvalidCommand
from tests.conftest import ROOT

REQUEST = {"organization": "MUN-SAENSUK", "filed_at": "PAO-CBI", "applicant_national_id": "3100600445635"}
APPLICANT = Actor(sub="3100600445635", role="citizen", pid="3100600445635")
OTHER_CITIZEN = Actor(sub="1101700230705", role="citizen", pid="1101700230705")
COUNTER = Actor(sub="officer.cbi", role="officer", org="PAO-CBI")
RESPONSIBLE = Actor(sub="officer.saensuk", role="officer", org="MUN-SAENSUK")
UNRELATED = Actor(sub="officer.phrae", role="officer", org="MUN-PHRAE")
AUDITOR = Actor(sub="auditor.oag", role="auditor")
INTEGRATOR = Actor(sub="pdc", role="integrator")


def test_the_readme_prints_the_table_the_code_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- access-table -->\n(.*?)\n<!-- /access-table -->", readme, re.S)
    assert found is not None, "README.md has no access table between <!-- access-table --> markers"
    assert found.group(1).strip() == markdown_table()


def test_the_table_names_only_known_roles_relations_actions_and_permissions() -> None:
    for (role, relation), actions in ACCESS.items():
        assert role in ("citizen", "officer", "auditor", "dpo", "admin") and relation in RELATIONS
        assert set(actions) <= set(ACTIONS) and set(actions.values()) <= {YES, ON_BEHALF}


@pytest.mark.parametrize("action", ["withdraw", "provide-info"])
def test_staff_take_the_applicants_actions_only_when_they_say_it_is_for_the_applicant(action: str) -> None:
    for officer in (COUNTER, RESPONSIBLE):
        with pytest.raises(Forbidden) as refused:
            check_can_act(officer, action, REQUEST)
        assert refused.value.errors[0][0] == ON_BEHALF_FIELD
        check_can_act(officer, action, REQUEST, on_behalf_of_applicant=True)
    check_can_act(APPLICANT, action, REQUEST)
    with pytest.raises(InvalidCommand):
        check_can_act(APPLICANT, action, REQUEST, on_behalf_of_applicant=True)
    with pytest.raises(NotFound):
        check_can_act(UNRELATED, action, REQUEST, on_behalf_of_applicant=True)
    with pytest.raises(NotFound):
        check_can_act(OTHER_CITIZEN, action, REQUEST)
    # An admin belongs to no counter: reads the request, but takes no applicant's action.
    admin = Actor(sub="admin.lao", role="admin")
    for flag in (False, True):
        with pytest.raises(Forbidden):
            check_can_act(admin, action, REQUEST, on_behalf_of_applicant=flag)


def test_only_the_responsible_organisation_decides_and_either_counter_takes_cash() -> None:
    assert permission(RESPONSIBLE, "approve", REQUEST) == YES
    assert permission(COUNTER, "approve", REQUEST) is None
    with pytest.raises(Forbidden):
        check_can_act(COUNTER, "approve", REQUEST)
    assert permission(COUNTER, "record-cash", REQUEST) == permission(RESPONSIBLE, "record-cash", REQUEST) == YES
    assert permission(APPLICANT, "record-cash", REQUEST) is None


def test_auditors_read_everything_and_change_nothing_and_integrators_read_no_request() -> None:
    assert permission(AUDITOR, "read", REQUEST) == YES
    assert all(permission(AUDITOR, action, REQUEST) is None for action in ACTIONS if action != "read")
    with pytest.raises(NotFound):
        check_can_act(INTEGRATOR, "read", REQUEST)


def test_submission_is_for_oneself_as_a_citizen_or_at_ones_own_counter_as_an_officer() -> None:
    check_can_submit(APPLICANT, "3100600445635", "MUN-SAENSUK", "web")
    check_can_submit(COUNTER, "3100600445635", "PAO-CBI", "counter")
    for actor, filed_at, channel in ((OTHER_CITIZEN, "MUN-SAENSUK", "web"), (COUNTER, "MUN-SAENSUK", "counter"),
                                     (APPLICANT, "MUN-SAENSUK", "counter"), (AUDITOR, "MUN-SAENSUK", "web")):
        with pytest.raises(Forbidden):
            check_can_submit(actor, "3100600445635", filed_at, channel)


def test_the_role_lists_handlers_use_are_the_roles_the_access_table_grants() -> None:
    from application.access import FILERS, READERS, ROLES, STAFF, roles_that

    assert READERS == ("citizen", "officer", "auditor", "admin", "dpo") == roles_that("read")
    assert FILERS == ("citizen", "officer", "admin") == roles_that("submit")
    assert STAFF == ("officer", "admin") == roles_that("record-cash")
    assert "system" not in ROLES and set(READERS) <= set(ROLES)


def test_no_handler_spells_out_a_tuple_of_roles() -> None:
    import re

    spelled = re.compile(r'\(\s*"(citizen|officer|auditor|integrator|admin)",\s*"(citizen|officer|auditor|integrator|admin)"')
    api = ROOT / "api"
    found = [path.name for path in api.glob("*.py") if spelled.search(path.read_text(encoding="utf-8"))]
    assert found == []
