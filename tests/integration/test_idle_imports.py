"""What a daemon holds in memory before it needs it (issue 17: idle RSS <= 80 MB).

The SDK parts are imported on first use: PyGithub (with cryptography, PyNaCl and PyJWT)
when GitHub is first called, HubSpot's generated packages when their API is first called
(notes, owners, properties: not by polling), croniter with the first cron rule, and only
the SQL dialect in use. Each check runs in a fresh interpreter: this one has them all."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from syncd.store.db import open_store
from syncd_sandbox.github.fake import FakeGitHub
from syncd_sandbox.hubspot.fake import FakeHubSpot
from syncd_sandbox.pytest_plugin import Served

ROOT = Path(__file__).resolve().parents[2]
WATCHED = (
    "github",
    "jwt",
    "nacl",
    "hubspot.crm.objects.notes",
    "hubspot.crm.owners",
    "hubspot.crm.properties",
    "croniter",
    "sqlalchemy.dialects.postgresql",
)


def _run(code: str) -> Any:
    prelude = f"import json, sys\nWATCHED = {WATCHED!r}\n"
    prelude += "def loaded():\n    return sorted(m for m in WATCHED if m in sys.modules)\n"
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_connectors_import_their_sdk_parts_on_first_use(
    fake_github: Served[FakeGitHub], fake_hubspot: Served[FakeHubSpot], tmp_path: Path
) -> None:
    github, hubspot = fake_github.fake, fake_hubspot.fake
    github.add_repo("acme/idle")
    store_url = f"sqlite:///{tmp_path / 'syncd.db'}"
    open_store(store_url).dispose()  # migrated here: a restart opens a store at head
    steps = _run(f"""
        from connectors.github import GitHubConnector, GitHubSettings
        from connectors.hubspot import HubSpotConnector, HubSpotSettings
        from syncd.store.db import open_store

        steps = {{}}
        open_store({store_url!r}).dispose()
        gh = GitHubConnector(GitHubSettings(token={github.token!r}, base_url={github.base_url!r}))
        hs = HubSpotConnector(HubSpotSettings(
            access_token={hubspot.token!r}, app_secret={hubspot.app_secret!r},
            base_url={fake_hubspot.url!r}, portal_id=62515,
        ))
        steps["built"] = loaded()
        hs.poll("deal", None)
        steps["polled"] = loaded()
        steps["login"] = gh.login()
        steps["github called"] = loaded()
        hs.api.notes
        steps["notes used"] = loaded()
        gh.close()
        hs.close()
        print(json.dumps(steps))
    """)
    assert steps["built"] == []
    assert steps["polled"] == []
    assert steps["login"] == github.login
    assert steps["github called"] == ["github", "jwt", "nacl"]
    assert steps["notes used"] == ["github", "hubspot.crm.objects.notes", "jwt", "nacl"]


def test_the_scheduler_imports_croniter_with_the_first_cron_rule() -> None:
    steps = _run("""
        import syncd.scheduler, syncd.daemon
        print(json.dumps(loaded()))
    """)
    assert steps == []
