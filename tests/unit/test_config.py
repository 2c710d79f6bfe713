"""syncd.config.load_config: validation, environment overrides, secrets from files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.config import Config, load_config
from syncd.errors import ConfigError

SECRET = "hunter2-do-not-print"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SYNCD_") or name in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syncd.toml"
    path.write_text(text)
    return path


def problems_of(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value


def test_defaults_from_an_empty_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={})
    assert config.http.port == 8080
    assert config.executor.max_attempts == 8
    assert config.connectors == {}


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[syncd]
mappings = 5
[http]
port = "eighty"
[executor]
workers = 0
[nosuch]
x = 1
[localdb]
page_size = "many"
""",
    )
    error = problems_of(path)
    assert len(error.problems) == 5, error.problems
    text = str(error)
    for expected in (
        "[syncd] mappings:",
        "[http] port:",
        "[executor] workers:",
        "[nosuch]: unknown section",
        "[localdb] page_size:",
    ):
        assert expected in text
    assert all(p.startswith(f"{path}: ") for p in error.problems)


def test_unknown_key_is_a_problem(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, "[http]\nprot = 80\n"))
    assert error.problems == [
        f"{tmp_path / 'syncd.toml'}: [http] prot: Extra inputs are not permitted"
    ]


def test_toml_syntax_error(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, "[http\nport = 1\n"))
    assert "TOML syntax" in str(error)


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    error = problems_of(write(tmp_path, 'http = "fast"\n'))
    assert "[http]: expected a table" in str(error)


def test_env_overrides_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[http]
port = 8080
host = "127.0.0.1"
[localdb]
path = "remote.sqlite3"
webhook_secret = "from-the-file"
""",
    )
    config = load_config(
        path,
        env={
            "SYNCD_HTTP_PORT": "9001",
            "SYNCD_LOCALDB_WEBHOOK_SECRET": SECRET,
            "SYNCD_EXECUTOR_BACKOFF_BASE_SECONDS": "2.5",
            "OTHER_VARIABLE": "ignored",
        },
    )
    assert config.http.port == 9001
    assert config.http.host == "127.0.0.1"
    assert config.executor.backoff_base_seconds == 2.5
    settings = config.connectors["localdb"]
    assert settings.webhook_secret.get_secret_value() == SECRET
    assert SECRET not in repr(config)
    assert config.secret_values() == [SECRET]


def test_env_can_configure_a_section_absent_from_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={"SYNCD_LOCALDB_PATH": "x.sqlite3"})
    assert config.connectors["localdb"].path == "x.sqlite3"


def test_lists_from_env_are_json(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, '[syncd]\nmappings = ["m"]\n'),
        env={
            "SYNCD_SYNCD_MAPPINGS": '["a", "b"]',
            "SYNCD_ALERTS_TO": '["ops@example.org", "pm@example.org"]',
            "SYNCD_LOCALDB_OBJECT_TYPES": '["item", "deal"]',
        },
    )
    assert config.syncd.mappings == ["a", "b"]
    assert config.mapping_paths == [tmp_path / "a", tmp_path / "b"]
    assert config.alerts.to == ["ops@example.org", "pm@example.org"]
    assert config.connectors["localdb"].object_types == ["item", "deal"]


def test_bad_env_value_is_reported(tmp_path: Path) -> None:
    error = problems_of(
        write(tmp_path, ""), env={"SYNCD_HTTP_PORT": "not-a-port", "SYNCD_HTTP_PROT": "80"}
    )
    assert "[http] port:" in str(error)
    assert "[http] prot:" in str(error)


def test_secret_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text(SECRET + "\n")
    path = write(tmp_path, f'[localdb]\nwebhook_secret_file = "{secret_file}"\n')
    settings = load_config(path, env={}).connectors["localdb"]
    assert settings.webhook_secret.get_secret_value() == SECRET  # newline stripped


def test_secret_file_problems(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text(SECRET)
    error = problems_of(
        write(
            tmp_path,
            f"""
[localdb]
webhook_secret = "inline"
webhook_secret_file = "{secret_file}"
path_file = "{secret_file}"
[http]
port = 1
""",
        )
    )
    text = str(error)
    assert "[localdb] webhook_secret: given both inline and as webhook_secret_file" in text
    assert "[localdb] path_file: path is not a secret setting" in text
    assert SECRET not in text


def test_unreadable_secret_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.secret"
    error = problems_of(write(tmp_path, f'[localdb]\nwebhook_secret_file = "{missing}"\n'))
    assert f"[localdb] webhook_secret_file: cannot read {missing}" in str(error)


def test_secret_from_systemd_credentials(tmp_path: Path, monkeypatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "localdb_webhook_secret").write_text(SECRET + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = write(tmp_path, '[localdb]\npath = "r.sqlite3"\n')
    settings = load_config(path, env={}).connectors["localdb"]
    assert settings.webhook_secret.get_secret_value() == SECRET


def test_env_secret_wins_over_systemd_credential(tmp_path: Path, monkeypatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "localdb_webhook_secret").write_text("from-credentials")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    path = write(tmp_path, '[localdb]\npath = "r.sqlite3"\n')
    config = load_config(path, env={"SYNCD_LOCALDB_WEBHOOK_SECRET": SECRET})
    assert config.connectors["localdb"].webhook_secret.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("toml", "env"),
    [
        (f'[localdb]\nwebhook_secret = ["{SECRET}"]\n', {}),
        (f'[localdb]\nwebhook_secret = {{ value = "{SECRET}" }}\n', {}),
        ("[localdb]\n", {"SYNCD_LOCALDB_WEBHOOK_SECRET": f'["{SECRET}"]'}),
        ("[localdb]\n", {"SYNCD_LOCALDB_WEBHOOK_SECRET": f'{{"k": "{SECRET}"}}'}),
        (f'[localdb]\nwebhook_secrett = "{SECRET}"\n', {}),
        (f'[localdb]\nwebhook_secret = "{SECRET}\n', {}),  # TOML syntax error on its line
        (f"[localdb]\nwebhook_secret = {SECRET}\n", {}),  # unquoted
    ],
)
def test_secret_never_appears_in_the_error(tmp_path: Path, toml: str, env: dict) -> None:
    error = problems_of(write(tmp_path, toml + "[http]\nport = -1\n"), env=env)
    assert SECRET not in str(error)
    assert all(SECRET not in p for p in error.problems)
    assert SECRET not in repr(error)


def test_default_store_url_is_sqlite_under_state_dir(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[syncd]\nstate_dir = "state"\n'), env={})
    assert config.state_dir == tmp_path / "state"
    assert config.store_url == f"sqlite:///{tmp_path / 'state' / 'syncd.sqlite3'}"


def test_systemd_state_directory_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/syncd")
    config = load_config(write(tmp_path, '[syncd]\nstate_dir = "state"\n'), env={})
    assert config.store_url == "sqlite:////var/lib/syncd/syncd.sqlite3"


def test_explicit_store_url_wins(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[store]\nurl = "postgresql://db/syncd"\n'), env={})
    assert config.store_url == "postgresql://db/syncd"


def test_config_path_from_env_var(tmp_path: Path, monkeypatch) -> None:
    path = write(tmp_path, "[http]\nport = 1234\n")
    monkeypatch.setenv("SYNCD_CONFIG", str(path))
    config = load_config(None, env={})
    assert isinstance(config, Config)
    assert config.http.port == 1234
    assert config.path == path
