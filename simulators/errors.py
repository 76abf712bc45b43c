"""The simulators' errors."""

from __future__ import annotations

from domain.errors import OneStopError


class SimulatorError(OneStopError):
    """Root of the simulators' errors."""


class InvalidSimulatorSetting(SimulatorError, ValueError):
    """A fault or a setting given to a simulator that it cannot take."""
