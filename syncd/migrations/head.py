"""The newest migration, read from the version files without importing alembic.

A daemon that starts on a store already at the newest revision has nothing to migrate, and
then alembic (with mako and pygments, about 10 MB of modules) is never imported: idle
memory is issue 17's target too. Any doubt (an unreadable file, several heads, no table)
means "not at head": alembic runs and decides, as before.
"""

from __future__ import annotations

import ast
from pathlib import Path

VERSIONS = Path(__file__).with_name("versions")


def _revisions(path: Path) -> tuple[str | None, tuple[str, ...]]:
    """(revision, down revisions) assigned at the top level of a version file."""
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            found[target.id] = ast.literal_eval(value)
    revision = found.get("revision")
    down = found.get("down_revision")
    downs = tuple(down) if isinstance(down, (list, tuple)) else (() if down is None else (down,))
    return (revision if isinstance(revision, str) else None), tuple(str(d) for d in downs)


def head_revision() -> str | None:
    """The one revision no other revises; None when there is not exactly one."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in VERSIONS.glob("*.py"):
        revision, downs = _revisions(path)
        if revision is None:
            return None
        revisions.add(revision)
        revised.update(downs)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None
