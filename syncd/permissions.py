"""Start-up check of file modes: who else could change our rules or read our secrets.

Anyone who can write the config or a mapping file can make the daemon act with its tokens;
anyone who can read a secret file has the token. Each problem comes with the command that
fixes it. Files systemd passed as credentials ($CREDENTIALS_DIRECTORY) are skipped: systemd
already made them readable by this service only.
"""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

StrPath = str | os.PathLike[str]


def check_file_permissions(
    config_path: StrPath,
    mapping_paths: Iterable[StrPath],
    secret_paths: Iterable[StrPath],
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Problems found, each a sentence ending with its fix; empty when all is well.

    Missing paths are not reported here: loading the config says what is missing.
    """
    env = os.environ if environ is None else environ
    credentials_dir = env.get("CREDENTIALS_DIRECTORY")
    config = Path(config_path)
    problems: list[str] = []

    # The config's directory counts too: whoever can write it can replace the file.
    for path in [config.parent, config, *_walk(Path(p) for p in mapping_paths)]:
        problem = _writable_by_others(path)
        if problem:
            problems.append(problem)
    for path in map(Path, secret_paths):
        if credentials_dir and _is_within(path, Path(credentials_dir)):
            continue
        problem = _readable_by_others(path)
        if problem:
            problems.append(problem)
    return list(dict.fromkeys(problems))  # a path listed twice is one problem


def _walk(paths: Iterable[Path]) -> Iterator[Path]:
    """Each path, and for a directory everything below it (templates live there too)."""
    for path in paths:
        yield path
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                for name in sorted(dirs) + sorted(files):
                    yield Path(root) / name


def _mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode
    except FileNotFoundError:
        return None


def _writable_by_others(path: Path) -> str | None:
    mode = _mode(path)
    if mode is None or not mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    who = _who(mode & stat.S_IWGRP, mode & stat.S_IWOTH)
    kind = "directory" if stat.S_ISDIR(mode) else "file"
    return (
        f"{kind} {path} is writable by {who} (mode {_octal(mode)}), so they could change "
        f"what syncd does: run `chmod go-w {shlex.quote(str(path))}`"
    )


def _readable_by_others(path: Path) -> str | None:
    mode = _mode(path)
    if mode is None or not mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        return None
    who = _who(mode & (stat.S_IRGRP | stat.S_IWGRP), mode & (stat.S_IROTH | stat.S_IWOTH))
    return (
        f"secret file {path} is accessible to {who} (mode {_octal(mode)}): "
        f"run `chmod 600 {shlex.quote(str(path))}`"
    )


def _who(group: int, others: int) -> str:
    return " and ".join(name for name, flag in (("group", group), ("others", others)) if flag)


def _octal(mode: int) -> str:
    return f"{stat.S_IMODE(mode):04o}"


def _is_within(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False
