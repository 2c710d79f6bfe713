"""`{template: file}` reads only files inside the mapping folder (issue 14, item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.mapping.planner import Change
from syncd.mapping.planner import explain_change as evaluate_change
from syncd.model import ObjectRef

RULE = """
    rules:
      - id: mail-out
        when: {{source: localdb, object: deal, field: stage, to: won}}
        do:
          - localdb.record:
              title: "x"
              body: {{template: "{name}"}}
"""
WON = Change(ObjectRef("localdb", "deal", "1"), {"stage": "won"}, {"stage": "open"})


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "credentials" / "hubspot_token"
    path.parent.mkdir()
    path.write_text("pat-na1-SECRET\n")
    return path


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "symlinked-dir"])
def test_check_refuses_a_template_file_outside_the_mapping_folder(
    how: str, secret: Path, mapping_dir: Path, write_mapping, load_problems
) -> None:
    if how == "absolute":
        name = str(secret)
    elif how == "dotdot":
        name = "../credentials/hubspot_token"
    elif how == "symlink":
        (mapping_dir / "body.j2").symlink_to(secret)
        name = "body.j2"
    else:
        (mapping_dir / "templates").symlink_to(secret.parent)
        name = "templates/hubspot_token"
    write_mapping(RULE.format(name=name))
    (problem,) = load_problems()
    assert problem.rule_id == "mail-out"
    assert "outside the mapping folder" in problem.message
    assert "SECRET" not in str(problem)


def test_check_refuses_a_device_or_fifo_as_template(
    write_mapping, load_problems, mapping_dir: Path
) -> None:
    import os

    os.mkfifo(mapping_dir / "pipe.j2")
    write_mapping(RULE.format(name="pipe.j2"))
    (problem,) = load_problems()
    assert "not a regular file" in problem.message


def test_a_symlink_swapped_after_check_is_refused_at_run_time(
    secret: Path, mapping_dir: Path, write_mapping, load_ok
) -> None:
    (mapping_dir / "real.j2").write_text("Hello {{ deal.stage }}")
    link = mapping_dir / "body.j2"
    link.symlink_to(mapping_dir / "real.j2")
    write_mapping(RULE.format(name="body.j2"))
    ruleset = load_ok()
    (verdict,) = evaluate_change(ruleset, WON)
    assert verdict.actions[0].params["body"] == "Hello won"

    link.unlink()
    link.symlink_to(secret)  # changed under a running daemon
    (verdict,) = evaluate_change(ruleset, WON)
    (planned,) = verdict.actions
    assert planned.params == {}
    assert planned.error is not None and "outside the mapping folder" in planned.error
    assert "SECRET" not in planned.error


def test_a_template_file_in_a_subfolder_is_read(mapping_dir: Path, write_mapping, load_ok) -> None:
    (mapping_dir / "templates").mkdir()
    (mapping_dir / "templates" / "body.j2").write_text("Stage {{ deal.stage }}")
    write_mapping(RULE.format(name="templates/body.j2"))
    (verdict,) = evaluate_change(load_ok(), WON)
    assert verdict.actions[0].params["body"] == "Stage won"
