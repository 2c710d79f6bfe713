"""The layers' import rules (pyproject.toml, [tool.importlinter]) hold, and breaking one fails.

The rules: the engine (`syncd`) imports no connector and no sandbox module; connectors import
only `syncd.sdk` from syncd; nothing outside `syncd.store` imports the schema. The contracts
name every `syncd` module, so a new module that is missing from them fails here too, instead
of slipping past the rules.
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import syncd

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}  # the tree under test comes first
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_the_import_rules_hold() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_name_every_engine_module() -> None:
    modules = {f"syncd.{m.name}" for m in pkgutil.iter_modules(syncd.__path__)}
    modules.discard("syncd.sdk")
    by_id = contracts()
    assert set(by_id["connectors-sdk-only"]["forbidden_modules"]) == modules
    assert set(by_id["engine-no-sandbox"]["source_modules"]) == modules
    store_sources = set(by_id["schema-inside-store"]["source_modules"])
    assert store_sources == (modules - {"syncd.store"}) | {"connectors"}


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        (
            "connectors/github/poll.py",
            "from syncd.errors import ConfigError",
            "Connectors import only syncd.sdk from syncd",
        ),
        (
            "connectors/hubspot/cli.py",
            "from syncd.engine import Engine",
            "Connectors import only syncd.sdk from syncd",
        ),
        (
            "syncd/retry.py",
            "from connectors.github import GitHubConnector",
            "The engine imports no connector",
        ),
        (
            "syncd/engine.py",
            "from syncd_sandbox.world import fakes",
            "The engine imports no sandbox module",
        ),
        (
            "syncd/executor.py",
            "from syncd.store.schema import actions",
            "Nothing outside syncd.store imports syncd.store.schema",
        ),
    ],
)
def test_a_forbidden_import_breaks_the_rules(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    for package in ("syncd", "connectors", "sandbox/syncd_sandbox"):
        shutil.copytree(
            ROOT / package,
            tmp_path / Path(package).name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n\ndef _forbidden() -> None:\n    {line}\n")
    result = lint_imports(cwd=tmp_path)
    assert result.returncode != 0, result.stdout
    assert f"{broken} BROKEN" in result.stdout, result.stdout
