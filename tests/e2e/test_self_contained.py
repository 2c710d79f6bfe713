"""syncd reads nothing outside its own tree: the demo (with the GitHub fake validating against
its OpenAPI subsets) runs from a copy of the repository in an empty temporary folder, and an
audit hook records every file the process opens. Both distributions of the tree run from the
copy: syncd, and the sandbox (sandbox/: the fakes and `syncd demo`, found by entry point)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What a user's clone holds; .venv, caches and state are not part of it.
TREE = [
    "pyproject.toml",
    "setup.py",
    "syncd",
    "connectors",
    "mappings",
    "config.example.toml",
    "sandbox",
]

# Runs in the child: every `open` of a path is written down, then the demo runs from the copy.
CHILD = textwrap.dedent("""\
    import json, os, sys
    copy, report = sys.argv[1], sys.argv[2]
    sys.path[:0] = [copy, os.path.join(copy, "sandbox")]
    opened = set()
    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.add(os.path.abspath(os.fsdecode(args[0])))
    sys.addaudithook(hook)
    import syncd
    from syncd.cli import main
    try:
        main(["demo", "--once", "--state-dir", sys.argv[3]], standalone_mode=False)
        code = 0
    except SystemExit as stop:
        code = stop.code or 0
    with open(report, "w") as out:
        json.dump({"code": code, "syncd": syncd.__file__, "opened": sorted(opened),
                   "sandbox": sys.modules["syncd_sandbox"].__file__}, out)
""")


def _allowed_roots(*mine: Path) -> list[str]:
    """Where a process may legitimately read: its own tree and state, the interpreter and its
    packages, and the operating system's files (certificates, time zones, /proc)."""
    roots = {str(p) for p in mine}
    roots |= {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        "/usr",
        "/etc",
        "/dev",
        "/proc",
        "/sys",
        "/lib",
        "/lib64",
        "/bin",
    }
    return sorted(os.path.realpath(r) for r in roots)


def test_demo_runs_from_a_copy_of_the_tree_and_opens_nothing_outside(tmp_path: Path) -> None:
    copy = tmp_path / "clone" / "syncd"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in TREE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            copy.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    state, report, scratch = tmp_path / "state", tmp_path / "report.json", tmp_path / "tmp"
    scratch.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(copy), str(report), str(state)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(scratch)},
    )
    assert run.returncode == 0 and report.exists(), run.stderr[-3000:]
    result = json.loads(report.read_text())
    assert result["code"] == 0, run.stdout[-3000:]
    assert "OK: every expected effect happened exactly once" in run.stdout
    assert result["syncd"].startswith(str(copy)), "the copy's package was not the one imported"
    assert result["sandbox"].startswith(str(copy / "sandbox")), "the copy's sandbox was not used"

    allowed = _allowed_roots(copy, state, tmp_path)
    outside = [
        p
        for p in result["opened"]
        if not any(os.path.realpath(p).startswith(root + os.sep) for root in allowed)
    ]
    # The development checkout (and a `shared/` folder beside it) is on this machine but not
    # in the allowed roots, so reading from it fails here as it would on a user's machine.
    assert outside == [], f"opened outside the tree: {outside[:20]}"
