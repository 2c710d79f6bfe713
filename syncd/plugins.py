"""Commands that other distributions add to `syncd` through the entry-point group
`syncd.commands`, such as the sandbox's `syncd demo`.

The product imports none of them by name, so it installs and runs without them. A command the
sandbox provides still answers when the sandbox is absent: it says what to install.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

import click

COMMAND_GROUP = "syncd.commands"
SANDBOX_MISSING = (
    "the sandbox is not installed: install syncd[sandbox] (from a clone: pip install '.[sandbox]')"
)
# The sandbox's commands, listed (and explained) even when it is not installed.
SANDBOX_COMMANDS = {
    "demo": "Run the shipped workflows against a local sandbox (needs syncd[sandbox]).",
}


@lru_cache(maxsize=1)
def available() -> dict[str, EntryPoint]:
    """Installed plug-in commands by name (entry points, not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=COMMAND_GROUP)}


def command_names() -> set[str]:
    return set(available()) | set(SANDBOX_COMMANDS)


def load_command(name: str) -> click.Command | None:
    """The command registered as `name`; for a sandbox command without the sandbox, one that
    fails with the install hint; None for a name nobody provides."""
    entry = available().get(name)
    if entry is None:
        return missing_sandbox_command(name) if name in SANDBOX_COMMANDS else None
    command = entry.load()
    if not isinstance(command, click.Command):
        raise TypeError(
            f"entry point {COMMAND_GROUP}:{name} ({entry.value}) is not a click command"
        )
    return command


def require_sandbox() -> None:
    """For any code path that needs the sandbox (the demo, a run without credentials):
    a clear error naming the extra, instead of an ImportError."""
    if "demo" not in available():
        raise click.ClickException(SANDBOX_MISSING)


def missing_sandbox_command(name: str) -> click.Command:
    def explain(args: tuple[str, ...]) -> None:
        raise click.ClickException(f"syncd {name}: {SANDBOX_MISSING}")

    return click.Command(
        name,
        callback=explain,
        help=SANDBOX_COMMANDS[name],
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
