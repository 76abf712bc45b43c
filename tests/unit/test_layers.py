"""The dependency rule, checked by import-linter with the contracts in pyproject.toml:
onestop > (api | workers | infrastructure | simulators) > application > domain."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_every_import_in_the_code_keeps_the_layering_contracts() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_catch_an_import_that_points_up_a_layer(tmp_path: Path) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]
    lines = [f"root_packages = {config['root_packages']!r}".replace("'", '"'), "include_external_packages = true"]
    for contract in config["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        lines.extend(f"{key} = {value!r}".replace("'", '"') for key, value in contract.items())
    (tmp_path / "pyproject.toml").write_text("[tool.importlinter]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    for package in config["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "application" / "use_case.py").write_text("import domain\n", encoding="utf-8")
    assert _lint(tmp_path).returncode == 0
    (tmp_path / "domain" / "rule.py").write_text("from application import use_case\n", encoding="utf-8")
    (tmp_path / "workers" / "actor.py").write_text("import infrastructure\n", encoding="utf-8")

    result = _lint(tmp_path)

    assert result.returncode != 0
    assert "domain.rule -> application.use_case" in result.stdout
    assert "workers.actor -> infrastructure" in result.stdout
