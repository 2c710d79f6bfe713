"""Only the store layer touches the tables: nothing outside `syncd/store/` imports
`syncd.store.schema` (it goes through the store modules and their typed rows). Alembic's
`syncd/migrations/env.py` is the store's own: it compares the schema with the database."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def schema_importers(root: Path = ROOT) -> list[str]:
    found = []
    for folder in ("syncd", "connectors"):
        for path in sorted((root / folder).rglob("*.py")):
            if path.is_relative_to(root / "syncd" / "store") or path.is_relative_to(
                root / "syncd" / "migrations"
            ):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                if "syncd.store.schema" in names:
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_nothing_outside_the_store_imports_the_schema() -> None:
    assert schema_importers() == []


def test_the_rule_sees_every_form_of_the_import(tmp_path: Path) -> None:
    (tmp_path / "syncd" / "store").mkdir(parents=True)
    (tmp_path / "syncd" / "migrations").mkdir()
    (tmp_path / "syncd" / "migrations" / "env.py").write_text("import syncd.store.schema\n")
    (tmp_path / "connectors").mkdir()
    (tmp_path / "syncd" / "store" / "actions.py").write_text("from syncd.store import schema\n")
    (tmp_path / "connectors" / "a.py").write_text("from syncd.store import schema\n")
    (tmp_path / "syncd" / "b.py").write_text("x = 1\nimport syncd.store.schema\n")
    (tmp_path / "syncd" / "c.py").write_text("from syncd.store.schema import actions\n")
    assert schema_importers(tmp_path) == ["syncd/b.py:2", "syncd/c.py:1", "connectors/a.py:1"]
