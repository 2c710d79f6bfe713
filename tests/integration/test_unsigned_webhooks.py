"""Unsigned deliveries (issue 14 items 3 and 4): every receiver refuses them unless its table
says `allow_unsigned = true`; that choice is logged at warning level at start and reported
by `syncd check`; a non-ASCII signature header gets a 401, never a 500."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from syncd.cli import main
from syncd.clock import FakeClock
from syncd.errors import WebhookRejected
from syncd.webapp import build_app
from tests.helpers import ServedApp, make_engine
from tests.integration.daemon_helpers import (
    RECORD_ON_DONE,
    Daemon,
    free_port,
    post_webhook,
    write_daemon_config,
)
from tests.receiver_cases import (
    RECEIVERS,
    SIGNATURE_HEADERS,
    make_receiver,
    request,
    sign,
    valid_delivery,
)

CLOCK = FakeClock()


def _unsigned(name: str) -> tuple[dict[str, str], bytes]:
    headers, body = valid_delivery(name, 1, CLOCK)
    return {k: v for k, v in headers.items() if k not in SIGNATURE_HEADERS[name]}, body


@pytest.mark.parametrize("name", RECEIVERS)
@pytest.mark.parametrize("secret", [True, False], ids=["secret", "no-secret"])
def test_unsigned_deliveries_are_refused_by_default(
    name: str, secret: bool, tmp_path: Path
) -> None:
    if name == "airtable" and not secret:
        pytest.skip("Airtable secrets are per webhook: an unknown webhook is a 404")
    connector = make_receiver(
        name, CLOCK, secret=secret, localdb_path=str(tmp_path / "remote.sqlite3")
    )
    headers, body = _unsigned(name)
    with pytest.raises(WebhookRejected) as refused:
        connector.verify_webhook(request(name, headers, body, CLOCK))
    assert refused.value.status == 401
    assert "allow_unsigned" in refused.value.reason


@pytest.mark.parametrize("name", RECEIVERS)
def test_allow_unsigned_accepts_unsigned_but_never_a_bad_signature(
    name: str, tmp_path: Path
) -> None:
    connector = make_receiver(
        name, CLOCK, allow_unsigned=True, localdb_path=str(tmp_path / "remote.sqlite3")
    )
    headers, body = _unsigned(name)
    assert connector.verify_webhook(request(name, headers, body, CLOCK))
    forged = sign(name, headers, body + b" ", CLOCK)  # signed, but another body
    with pytest.raises(WebhookRejected) as refused:
        connector.verify_webhook(request(name, forged, body, CLOCK))
    assert refused.value.status == 401


@pytest.mark.parametrize("value", ["hmac-sha256=é", "hmac-sha256=\xff" * 30, "\xa0"])
def test_a_non_ascii_airtable_mac_gets_401_over_http(
    value: str, tmp_path: Path, store_url: str
) -> None:
    engine = make_engine(tmp_path, store_url, CLOCK)
    connectors = {"airtable": make_receiver("airtable", CLOCK)}
    app = build_app(
        connectors=connectors,
        writer=engine.writer,
        clock=CLOCK,
        max_body_bytes=65536,
        public_url="https://hooks.example.org",
    )
    try:
        with ServedApp(app) as server:
            _, body = valid_delivery("airtable", 1, CLOCK)
            answer = requests.post(
                f"{server.url}/webhooks/airtable",
                data=body,
                timeout=10,
                headers={"X-Airtable-Content-MAC": value.encode("latin-1")},
            )
        assert answer.status_code == 401, answer.text
    finally:
        engine.close()


def test_allow_unsigned_is_logged_at_start_and_unsigned_deliveries_flow(tmp_path: Path) -> None:
    port = free_port()
    config = write_daemon_config(
        tmp_path, port, secret="whsec_start_0123456789", extra="allow_unsigned = true\n"
    )
    with Daemon(config, port) as daemon:
        daemon.wait_ready()
        warning = daemon.wait_for_log("webhooks.unsigned_allowed")
        assert warning["level"] == "warning"
        assert "[localdb] allow_unsigned = true" in warning["detail"]
        body = json.dumps({"type": "item", "id": "1"}).encode()
        unsigned = requests.post(
            f"{daemon.url}/webhooks/localdb",
            data=body,
            timeout=10,
            headers={"x-localdb-delivery": "u-1"},
        )
        assert unsigned.status_code == 202
        forged = post_webhook(daemon.url, "a-guess", {"type": "item", "id": "1"}, "u-2")
        assert forged.status_code == 401
        assert daemon.terminate() == 0


@pytest.mark.parametrize("allow", [True, False])
def test_syncd_check_warns_about_allow_unsigned(tmp_path: Path, allow: bool) -> None:
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "rules.yaml").write_text(textwrap.dedent(RECORD_ON_DONE))
    config = tmp_path / "syncd.toml"
    config.write_text(
        textwrap.dedent(f"""\
        [syncd]
        state_dir = "{tmp_path / "state"}"
        mappings = ["{mappings}"]
        [localdb]
        path = "{tmp_path / "remote.sqlite3"}"
        allow_unsigned = {str(allow).lower()}
        """)
    )
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    warned = "warning: [localdb] allow_unsigned = true" in result.stderr
    assert warned is allow, result.stderr
