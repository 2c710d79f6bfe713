"""Templates are compiled once, not on every render (issue 17: compiling was 3.9% of the
daemon's samples under load)."""

from __future__ import annotations

import uuid

import pytest

from syncd.mapping import templates
from syncd.mapping.templates import TemplateProblem, render_string


def test_a_template_rendered_many_times_is_compiled_once() -> None:
    source = "Deal won: {{ deal.id }} " + uuid.uuid4().hex  # a source no other test compiled
    before = templates.compilations
    out = [render_string(source, {"deal": {"id": str(i)}}) for i in range(20)]
    assert templates.compilations - before == 1
    assert out[3].startswith("Deal won: 3 ")


def test_an_edited_template_is_compiled_again() -> None:
    before = templates.compilations
    render_string("a {{ x }} " + uuid.uuid4().hex, {"x": 1})
    render_string("b {{ x }} " + uuid.uuid4().hex, {"x": 1})
    assert templates.compilations - before == 2


def test_the_sandbox_and_strict_names_still_hold_for_a_reused_template() -> None:
    source = "{{ missing_name }} " + uuid.uuid4().hex
    for _ in range(2):
        with pytest.raises(TemplateProblem):
            render_string(source, {})
    escape = "{{ ''.__class__.__mro__ }} " + uuid.uuid4().hex
    for _ in range(2):
        with pytest.raises(TemplateProblem):
            render_string(escape, {})
