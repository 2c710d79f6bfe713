"""Start-up permission check on real files with real modes."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from syncd.permissions import check_file_permissions


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A tidy /etc/syncd: nothing writable by others, secrets 0600."""
    etc = tmp_path / "etc"
    mappings = etc / "mappings"
    templates = mappings / "templates"
    templates.mkdir(parents=True)
    config = etc / "config.toml"
    config.write_text("[github]\n")
    rules = mappings / "rules.yaml"
    rules.write_text("rules: []\n")
    template = templates / "new-hub.md.j2"
    template.write_text("hello\n")
    secret = etc / "github_token"
    secret.write_text("token\n")
    for directory in (etc, mappings, templates):
        directory.chmod(0o755)
    for file in (config, rules, template):
        file.chmod(0o644)
    secret.chmod(0o600)
    return {
        "etc": etc,
        "config": config,
        "mappings": mappings,
        "templates": templates,
        "rules": rules,
        "template": template,
        "secret": secret,
    }


def check(layout: dict[str, Path], environ: dict[str, str] | None = None) -> list[str]:
    return check_file_permissions(
        layout["config"], [layout["mappings"]], [layout["secret"]], environ=environ or {}
    )


def test_tidy_layout_has_no_problems(layout) -> None:
    assert check(layout) == []


@pytest.mark.parametrize("name", ["config", "rules", "template", "mappings", "templates", "etc"])
@pytest.mark.parametrize(("mode_bits", "who"), [(0o020, "group"), (0o002, "others")])
def test_writable_config_or_mapping_is_reported_with_fix(layout, name, mode_bits, who) -> None:
    path = layout[name]
    path.chmod(path.stat().st_mode & 0o777 | mode_bits)
    problems = check(layout)
    assert len(problems) == 1, problems
    assert str(path) in problems[0]
    assert f"writable by {who}" in problems[0]
    assert problems[0].endswith(f"`chmod go-w {path}`")


def test_fix_command_actually_fixes(layout) -> None:
    layout["rules"].chmod(0o666)
    command = check(layout)[0].rsplit("`", 2)[1]  # the exact command we tell ops to run
    subprocess.run(shlex.split(command), check=True, timeout=10)
    assert check(layout) == []


@pytest.mark.parametrize(
    ("mode", "who"),
    [(0o640, "group"), (0o604, "others"), (0o644, "group and others"), (0o620, "group")],
)
def test_secret_accessible_to_others_is_reported(layout, mode, who) -> None:
    layout["secret"].chmod(mode)
    problems = check(layout)
    assert problems == [
        f"secret file {layout['secret']} is accessible to {who} (mode {mode:04o}): "
        f"run `chmod 600 {layout['secret']}`"
    ]


def test_secret_stricter_than_600_is_fine(layout) -> None:
    layout["secret"].chmod(0o400)
    assert check(layout) == []


def test_systemd_credentials_are_skipped(tmp_path: Path, layout) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    passed = credentials / "github_token"
    passed.write_text("token\n")
    passed.chmod(0o644)
    problems = check_file_permissions(
        layout["config"], [], [passed], environ={"CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert problems == []
    # The same file outside a credentials directory is a problem.
    assert len(check_file_permissions(layout["config"], [], [passed], environ={})) == 1


def test_missing_paths_are_left_to_the_config_loader(tmp_path: Path, layout) -> None:
    gone = tmp_path / "nope"
    assert check_file_permissions(layout["config"], [gone], [gone / "secret"], environ={}) == []


def test_path_with_spaces_gets_a_quoted_fix(tmp_path: Path, layout) -> None:
    odd = layout["mappings"] / "team rules.yaml"
    odd.write_text("rules: []\n")
    odd.chmod(0o646)
    assert check(layout)[0].endswith(f"`chmod go-w '{odd}'`")
