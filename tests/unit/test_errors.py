"""One error tree: every error OneStop defines is an OneStopError, under its layer's root."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from application.errors import ApplicationError
from domain.errors import DomainError, InvalidValue, OneStopError
from domain.land_tax import LandTaxRates, land_building_tax_satang
from domain.organizations import Organization, OrganizationKind
from domain.promptpay import InvalidPromptPayPayload, parse_payload
from infrastructure.errors import InfrastructureError, ProjectorBusy
from workers.broker import make_broker
from workers.errors import NotDueYet, UnsupportedBroker, WorkerError

LAYERS = ("domain", "application", "infrastructure", "api", "workers", "simulators", "onestop")


def _errors() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for layer in LAYERS:
        package = importlib.import_module(layer)
        names = [layer] + [info.name for info in pkgutil.walk_packages(package.__path__, f"{layer}.")]
        for name in names:
            module = importlib.import_module(name)
            for value in vars(module).values():
                if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == name:
                    found[f"{name}.{value.__qualname__}"] = value
    return list(found.values())


def test_the_walk_finds_the_errors_of_every_layer() -> None:
    errors = set(_errors())
    assert {DomainError, ApplicationError, InfrastructureError, WorkerError, ProjectorBusy, NotDueYet} <= errors


@pytest.mark.parametrize("error", _errors(), ids=lambda e: f"{e.__module__}.{e.__qualname__}")
def test_every_error_is_a_onestop_error_with_a_one_line_docstring(error: type[BaseException]) -> None:
    assert issubclass(error, OneStopError)
    doc = error.__doc__ or ""
    assert doc.strip() and "\n" not in doc.strip(), f"{error.__qualname__} needs a one-line docstring"


def test_a_negative_assessed_value_is_a_domain_error_that_callers_may_still_catch_as_value_error() -> None:
    with pytest.raises(InvalidValue) as raised:
        land_building_tax_satang(-1, "residential", LandTaxRates())
    assert isinstance(raised.value, DomainError) and isinstance(raised.value, ValueError)


def test_an_organisation_code_with_the_wrong_prefix_is_an_invalid_value() -> None:
    with pytest.raises(InvalidValue, match="must start with"):
        Organization(code="XXX-1", kind=OrganizationKind.PAO, name_th="x", name_en="x", province="x")


def test_a_malformed_promptpay_payload_is_an_invalid_value() -> None:
    with pytest.raises(InvalidPromptPayPayload) as raised:
        parse_payload("not a payload")
    assert isinstance(raised.value, InvalidValue)


def test_a_broker_url_of_another_scheme_is_refused_as_a_worker_error() -> None:
    with pytest.raises(UnsupportedBroker):
        make_broker("kafka://127.0.0.1:9092")
