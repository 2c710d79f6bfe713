"""A local sandbox for syncd: the connectors' fakes seeded with a realistic account, syncd
configured against them, and a scripted sales story (used by `syncd demo` and tests/e2e).

    with run_sandbox(state_dir) as run:
        run.story.play()
        problems = observe(run.box).differences(expected(run.box))
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd.clock import FakeClock
from syncd.engine import Engine
from syncd_sandbox.world.effects import Effects, observe
from syncd_sandbox.world.fakes import Sandbox
from syncd_sandbox.world.runtime import (
    SHIPPED_MAPPINGS,
    WebhookServer,
    sandbox_config,
    start_engine,
)
from syncd_sandbox.world.story import ACCOUNT_HISTORY, STORY_START, Say, Story, expected

__all__ = [
    "SHIPPED_MAPPINGS",
    "STORY_START",
    "Effects",
    "Sandbox",
    "SandboxRun",
    "Story",
    "WebhookServer",
    "expected",
    "observe",
    "run_sandbox",
    "sandbox_config",
    "start_engine",
]


@dataclass
class SandboxRun:
    box: Sandbox
    engine: Engine
    hooks: WebhookServer
    story: Story


@contextmanager
def run_sandbox(
    state_dir: Path,
    *,
    mappings: Path = SHIPPED_MAPPINGS,
    say: Say = lambda line: None,
    mapping_vars: dict[str, Any] | None = None,
) -> Iterator[SandboxRun]:
    """Fakes started and seeded, the engine on them (store in `state_dir`), the webhook
    endpoint listening; everything stopped on exit."""
    # The accounts have a past: they are seeded months before the story, then syncd is
    # installed on the story's first morning (it goes live with the story's first cycle).
    clock = FakeClock(STORY_START - ACCOUNT_HISTORY)
    with Sandbox(clock, today=STORY_START.date()) as box:
        clock.set(STORY_START)
        config = sandbox_config(state_dir, box.connector_settings(), mappings, mapping_vars)
        engine = start_engine(config, clock)
        try:
            with WebhookServer(engine) as hooks:
                yield SandboxRun(box, engine, hooks, Story(box, engine, hooks, say))
        finally:
            engine.close()
