"""The product stands without its sandbox: nothing in syncd/ or connectors/ imports
syncd_sandbox (the fakes, localdb, the demo), and `syncd demo` without the sandbox installed
says which extra to install instead of failing on an import."""

from __future__ import annotations

import ast
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from syncd import plugins
from syncd.cli import main

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ["syncd", "connectors"]


def _imported_modules(source: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_product_module_imports_the_sandbox() -> None:
    files = [f for top in PRODUCT for f in sorted((REPO / top).rglob("*.py"))]
    assert len(files) > 50  # the walk found the product
    offenders = {
        str(f.relative_to(REPO)): sorted(
            m for m in _imported_modules(f) if m.split(".")[0] == "syncd_sandbox"
        )
        for f in files
    }
    assert {f: m for f, m in offenders.items() if m} == {}


def test_no_fake_code_is_left_in_the_product_tree() -> None:
    fakes = [
        str(f.relative_to(REPO))
        for top in PRODUCT
        for f in (REPO / top).rglob("*")
        if f.name.startswith("fake") or f.name in {"localdb", "specs", "openapi"}
    ]
    assert fakes == []


def test_demo_without_the_sandbox_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "available", lambda: {})
    result = CliRunner().invoke(main, ["demo", "--once", "--state-dir", "x"])
    assert result.exit_code == 1
    assert "install syncd[sandbox]" in result.output
    assert "demo" in CliRunner().invoke(main, ["--help"]).output


def test_demo_comes_through_the_entry_point_when_installed() -> None:
    assert plugins.available()["demo"].value == "syncd_sandbox.demo:demo"
    command = plugins.load_command("demo")
    assert command is not None and command.callback is not None
    assert command.callback.__module__ == "syncd_sandbox.demo"


def test_require_sandbox_is_a_clear_error_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins.require_sandbox()  # installed here: nothing to say
    monkeypatch.setattr(plugins, "available", lambda: {})
    with pytest.raises(click.ClickException, match=r"install syncd\[sandbox\]"):
        plugins.require_sandbox()
