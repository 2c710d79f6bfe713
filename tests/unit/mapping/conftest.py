"""Helpers for mapping tests: write mapping files and a config into tmp_path, load them."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from syncd.mapping.loader import MappingError, Problem, load_rules
from syncd.mapping.rules import RuleSet

WriteFile = Callable[..., Path]
# The repository's own mappings/ (this file is tests/unit/mapping/conftest.py).
SHIPPED_MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"


@pytest.fixture
def mapping_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    folder.mkdir()
    return folder


@pytest.fixture
def write_mapping(mapping_dir: Path) -> WriteFile:
    """write_mapping(yaml_text, name="rules.yaml") -> path of the written file."""

    def write(text: str, name: str = "rules.yaml") -> Path:
        path = mapping_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def load_ok(mapping_dir: Path) -> Callable[[], RuleSet]:
    return lambda: load_rules([mapping_dir])


@pytest.fixture
def load_problems(mapping_dir: Path) -> Callable[[], list[Problem]]:
    """Load the mapping folder, expecting it to be rejected; the problems it reports."""

    def load() -> list[Problem]:
        with pytest.raises(MappingError) as caught:
            load_rules([mapping_dir])
        return caught.value.problems

    return load


@pytest.fixture
def config_file(tmp_path: Path, mapping_dir: Path) -> Path:
    """A syncd config using the mapping folder and a localdb remote inside tmp_path."""
    path = tmp_path / "syncd.toml"
    path.write_text(
        "[syncd]\n"
        f'mappings = ["{mapping_dir}"]\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        "[localdb]\n"
        f'path = "{tmp_path / "remote.sqlite3"}"\n'
    )
    return path


@pytest.fixture(autouse=True)
def _no_syncd_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads os.environ: keep a developer's SYNCD_* settings out of the tests."""
    for name in list(os.environ):
        if name.startswith("SYNCD_") or name in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"):
            monkeypatch.delenv(name)
