"""The console's token: made once (0600, its path logged, never the token), or read from
`[console] token_file`; the cookie and CSRF values derived from it are not the token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from syncd.config import Config, ConsoleSection, SyncdSection
from syncd.console.auth import Keys, load_or_create_token
from syncd.errors import ConfigError


def config(tmp_path: Path, token_file: str = "") -> Config:
    return Config(
        path=None,
        syncd=SyncdSection(state_dir=str(tmp_path / "state")),
        console=ConsoleSection(token_file=token_file),
    )


def test_token_made_once_private_and_kept(tmp_path: Path) -> None:
    first = load_or_create_token(config(tmp_path))
    path = tmp_path / "state" / "console-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert load_or_create_token(config(tmp_path)) == first  # a restart keeps it


def test_token_file_is_read_and_checked(tmp_path: Path) -> None:
    given = tmp_path / "token"
    given.write_text("a-long-enough-console-token\n")
    assert load_or_create_token(config(tmp_path, str(given))) == "a-long-enough-console-token"
    given.write_text("short")
    with pytest.raises(ConfigError, match="fewer than 16"):
        load_or_create_token(config(tmp_path, str(given)))
    with pytest.raises(ConfigError, match="cannot read"):
        load_or_create_token(config(tmp_path, str(tmp_path / "missing")))


def test_derived_values_are_not_the_token() -> None:
    keys = Keys("the-console-token-0123456789")
    assert keys.token not in (keys.session, keys.csrf) and keys.session != keys.csrf
    assert keys.token_ok("the-console-token-0123456789") and not keys.token_ok("the-console")
    assert Keys("another-token-0123456789").csrf != keys.csrf


def test_listen_is_host_and_port() -> None:
    assert (ConsoleSection().host, ConsoleSection().port) == ("127.0.0.1", 8081)
    assert ConsoleSection(listen="[::1]:9000").host == "::1"
    with pytest.raises(ValueError):
        ConsoleSection(listen="127.0.0.1")
