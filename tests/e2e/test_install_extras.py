"""What `pip install` puts on a machine, from a copy of the tree, in a fresh virtualenv:

- `pip install .` is the product alone: no sandbox distribution, no fake module, no aiosmtpd
  or jsonschema. `syncd --help`, `syncd check` and `syncd run` (with credentials, here for
  the pytest plugin's fake GitHub) work; `syncd demo` names the extra to install.
- `pip install '.[sandbox]'` adds the sandbox (setup.py names sandbox/ by file URL), and
  `syncd demo --once` passes.

Slow (two real installs, dependencies from the package index or pip's cache): marked `install`
so that `-m "not install"` can leave it out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.pytest_plugin import Served

pytestmark = [pytest.mark.slow, pytest.mark.install]

REPO = Path(__file__).resolve().parents[2]
TREE = [
    "pyproject.toml",
    "setup.py",
    "README.md",
    "syncd",
    "connectors",
    "mappings",
    "config.example.toml",
    "sandbox",
]
REPOSITORY = "acme/infrastructure"
SANDBOX_ONLY = ["syncd-sandbox", "aiosmtpd", "jsonschema"]
INSTALL_SECONDS = 300


def _copy_tree(to: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in TREE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, to / name, ignore=ignore)
        else:
            to.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    return to


def _run(*argv: str | Path, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # The parent's virtualenv and SYNCD_* settings stay out of the fresh one.
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith("SYNCD_")}
    return subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


def _installed(venv: Path, name: str, cwd: Path) -> bool:
    return _run(venv / "bin" / "python", "-m", "pip", "show", name, cwd=cwd).returncode == 0


def _run_config(where: Path, github: Served[FakeGitHub]) -> Path:
    """A production config (no sandbox in it): the GitHub connector with its token."""
    (where / "rules").mkdir()
    config = where / "syncd.toml"
    config.write_text(f"""\
[syncd]
state_dir = "state"
mappings = ["rules"]
allow_empty_rules = true

[github]
token = "{github.fake.token}"
repositories = ["{REPOSITORY}"]
base_url = "{github.url}"
""")
    config.chmod(0o600)
    return config


def test_plain_install_has_no_sandbox_and_the_extra_runs_the_demo(
    tmp_path: Path, fake_github: Served[FakeGitHub]
) -> None:
    tree = _copy_tree(tmp_path / "clone")
    venv = tmp_path / "venv"
    work = tmp_path / "work"
    work.mkdir()
    assert _run(sys.executable, "-m", "venv", venv, cwd=work).returncode == 0
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    syncd = venv / "bin" / "syncd"

    plain = _run(*pip, tree, cwd=work, timeout=INSTALL_SECONDS)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert [n for n in SANDBOX_ONLY if _installed(venv, n, work)] == []
    files = _run(venv / "bin" / "python", "-m", "pip", "show", "-f", "syncd", cwd=work).stdout
    assert [f for f in files.split() if "fake" in f or "localdb" in f or "sandbox" in f] == []

    helped = _run(syncd, "--help", cwd=work)
    assert helped.returncode == 0 and "demo" in helped.stdout, helped.stderr
    no_demo = _run(syncd, "demo", "--once", cwd=work)
    assert no_demo.returncode != 0
    assert "install syncd[sandbox]" in no_demo.stderr, no_demo.stderr

    checked = _run(syncd, "check", "--config", tree / "config.example.toml", cwd=work)
    assert checked.returncode == 0 and checked.stdout.startswith("ok:"), checked.stderr[-2000:]
    fake_github.fake.add_repo(REPOSITORY)
    ran = _run(syncd, "run", "--once", "--config", _run_config(work, fake_github), cwd=work)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "1 streams polled" in ran.stdout, ran.stdout
    assert any(r.path.startswith(f"/repos/{REPOSITORY}") for r in fake_github.fake.app.log)

    extra = _run(*pip, f"{tree}[sandbox]", cwd=work, timeout=INSTALL_SECONDS)
    assert extra.returncode == 0, extra.stderr[-3000:]
    assert [n for n in SANDBOX_ONLY if not _installed(venv, n, work)] == []
    demo = _run(syncd, "demo", "--once", cwd=work, timeout=240)
    assert demo.returncode == 0, (demo.stdout[-2000:], demo.stderr[-2000:])
    assert demo.stdout.splitlines()[-1].startswith("OK: every expected effect happened")
