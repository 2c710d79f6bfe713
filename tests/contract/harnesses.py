"""One harness per connector: what the shared contract tests need to know about it.

A harness starts the connector against its fake (the sandbox's pytest fixtures), changes
an object there as a user would, signs a webhook delivery for it, names one action, and
makes the fake fail the next call with a given kind of error. The contract tests in this
folder use nothing else, so a new connector joins by adding a harness here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from syncd.clock import FakeClock, to_ms
from syncd.connector import Connector
from syncd.model import ActionContext, ActionResult, ObjectRef, WebhookRequest
from syncd_sandbox.fakeserver import FakeApp, FakeRequest, FakeResponse

HOOK_URL = "https://syncd.example.org/webhooks/{name}"

# The kinds of failure a fake can be told to answer with, and the class each must map to.
RATE_LIMITED = "429"
SERVER_ERROR = "5xx"
REFUSED = "4xx"


def answer_next(app: FakeApp, status: int, method: str) -> None:
    """The next `method` request to `app` is answered `status` without being applied. For fakes
    whose own fault injection lacks that status; runs before the fake's own hooks."""
    fired: list[bool] = []

    def hook(request: FakeRequest) -> FakeResponse | None:
        if fired or request.method != method:
            return None
        fired.append(True)
        return FakeResponse(status, {"message": f"injected {status}"}, {"Retry-After": "1"})

    app.before.insert(0, hook)


class Harness:
    """The base: capabilities a connector lacks say why, and the contract test skips."""

    name: ClassVar[str]
    object_type: ClassVar[str] = ""
    action_method: ClassVar[str] = "POST"  # the HTTP method of the action's write

    # Why a poll from a returned cursor deliberately lists recent objects again (None: it
    # does not). Such a repeat must carry the same version, so the engine drops it.
    poll_overlap: ClassVar[str | None] = None
    # capability -> None when supported, or the reason the check does not apply.
    missing: ClassVar[dict[str, str]] = {}

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.request = request
        self.clock: FakeClock = request.getfixturevalue("fake_clock")
        self.connector: Connector = self.start()
        request.addfinalizer(self.connector.close)

    def require(self, capability: str) -> None:
        reason = self.missing.get(capability)
        if reason is not None:
            pytest.skip(f"{self.name}: {reason}")

    # -- what each connector supplies ----------------------------------------------------

    def start(self) -> Connector:
        raise NotImplementedError

    def create(self) -> ObjectRef:
        """A new object at the source, made as a user would."""
        raise NotImplementedError

    def change(self, ref: ObjectRef) -> None:
        """Change the object as a user would, a little later in (fake) time."""
        raise NotImplementedError

    def delete(self, ref: ObjectRef) -> None:
        raise NotImplementedError

    def missing_ref(self) -> ObjectRef:
        raise NotImplementedError

    def delivery(self, ref: ObjectRef) -> WebhookRequest:
        """A correctly signed delivery about the last change of `ref`."""
        raise NotImplementedError

    def signed(self, body: bytes) -> WebhookRequest:
        """Any body, correctly signed (to check the shape is refused on its own)."""
        raise NotImplementedError

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        """One action with its params, about `ref`."""
        raise NotImplementedError

    def effects(self, ref: ObjectRef) -> int:
        """How many effects of `action` the source holds (to see a retry adds none)."""
        raise NotImplementedError

    def fail_next(self, kind: str, method: str) -> None:
        """The fake fails the next `method` call with `kind` (RATE_LIMITED, SERVER_ERROR,
        REFUSED): GET for reads, `action_method` for the action."""
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------

    def webhook_request(self, headers: dict[str, str], body: bytes) -> WebhookRequest:
        return WebhookRequest(
            method="POST",
            url=HOOK_URL.format(name=self.name),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            received_at_ms=to_ms(self.clock.now()),
        )

    def perform(self, ref: ObjectRef, key: str, attempt: int = 1) -> ActionResult:
        name, params = self.action(ref)
        spec = self.connector.actions[name]
        ctx = ActionContext(key=key, rule_id="contract", attempt=attempt, ref=ref)
        return spec.perform(self.connector, spec.params.model_validate(params), ctx)

    def find(self, ref: ObjectRef, key: str) -> ActionResult | None:
        name, params = self.action(ref)
        spec = self.connector.actions[name]
        assert spec.find_existing is not None
        ctx = ActionContext(key=key, rule_id="contract", attempt=2, ref=ref)
        return spec.find_existing(self.connector, spec.params.model_validate(params), ctx)


# -- HubSpot ----------------------------------------------------------------------------


class HubSpotHarness(Harness):
    name = "hubspot"
    object_type = "deal"
    poll_overlap = "deals at the cursor's timestamp come again (hs_lastmodifieddate GTE ts)"

    def start(self) -> Connector:
        from connectors.hubspot import HubSpotConnector, HubSpotSettings

        served = self.request.getfixturevalue("fake_hubspot")
        self.fake = served.fake
        settings = HubSpotSettings(
            access_token=self.fake.token,
            app_secret=self.fake.app_secret,
            base_url=served.url,
            portal_id=62515,
            timeout_seconds=5,
        )
        return HubSpotConnector(settings, self.clock)

    def create(self) -> ObjectRef:
        return ObjectRef("hubspot", "deal", self.fake.create_deal(dealname="Contract deal"))

    def change(self, ref: ObjectRef) -> None:
        self.fake.move_deal(ref.id, "qualified")

    def delete(self, ref: ObjectRef) -> None:
        self.fake.portal.archive("deals", ref.id)

    def missing_ref(self) -> ObjectRef:
        return ObjectRef("hubspot", "deal", "987654321")

    def delivery(self, ref: ObjectRef) -> WebhookRequest:
        headers, body = self.fake.webhook(HOOK_URL.format(name=self.name))
        return self.webhook_request(headers, body)

    def signed(self, body: bytes) -> WebhookRequest:
        from connectors.hubspot.signing import (
            SIGNATURE_V3_HEADER,
            TIMESTAMP_HEADER,
            sign,
        )

        stamp = to_ms(self.clock.now())
        url = HOOK_URL.format(name=self.name)
        text = body.decode("utf-8", "replace")
        headers = {
            SIGNATURE_V3_HEADER: sign(self.fake.app_secret, "v3", text, url, "POST", stamp),
            TIMESTAMP_HEADER: str(stamp),
        }
        return self.webhook_request(headers, body)

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        return "add_note", {"deal_id": ref.id, "body": "Contract note"}

    def effects(self, ref: ObjectRef) -> int:
        return len(self.fake.notes_of(ref.id))

    def fail_next(self, kind: str, method: str) -> None:
        status = {RATE_LIMITED: 429, SERVER_ERROR: 503, REFUSED: 400}[kind]
        self.fake.fail_next(1, status, method=method, retry_after=1 if status == 429 else None)


# -- GitHub -----------------------------------------------------------------------------

GITHUB_REPO = "acme/infrastructure"
GITHUB_SECRET = "contract-webhook-secret"


class GitHubHarness(Harness):
    name = "github"
    object_type = "issue"

    def start(self) -> Connector:
        from connectors.github import GitHubConnector, GitHubSettings

        self.fake = self.request.getfixturevalue("fake_github").fake
        self.fake.add_repo(GITHUB_REPO)
        settings = GitHubSettings(
            token=self.fake.token,
            base_url=self.fake.base_url,
            repositories=[GITHUB_REPO],
            webhook_secret=GITHUB_SECRET,
            timeout_seconds=5,
        )
        return GitHubConnector(settings, clock=self.clock)

    @staticmethod
    def _number(ref: ObjectRef) -> int:
        return int(ref.id.rsplit("#", 1)[1])

    def create(self) -> ObjectRef:
        issue = self.fake.open_issue(GITHUB_REPO, "Contract issue")
        return ObjectRef("github", "issue", f"{GITHUB_REPO}#{issue.number}")

    def change(self, ref: ObjectRef) -> None:
        self.clock.advance(60)
        self.fake.touch_issue(GITHUB_REPO, self._number(ref), title="Contract issue, edited")

    def delete(self, ref: ObjectRef) -> None:
        self.fake.delete_issue(GITHUB_REPO, self._number(ref))

    def missing_ref(self) -> ObjectRef:
        return ObjectRef("github", "issue", f"{GITHUB_REPO}#9999")

    def delivery(self, ref: ObjectRef) -> WebhookRequest:
        payload = self.fake.issue_payload(GITHUB_REPO, self._number(ref), "edited")
        headers, body = self.fake.signed_webhook("issues", payload, GITHUB_SECRET, "delivery-1")
        return self.webhook_request(headers, body)

    def signed(self, body: bytes) -> WebhookRequest:
        from connectors.github.webhooks import sign

        headers = {
            "X-GitHub-Event": "issues",
            "X-GitHub-Delivery": "delivery-2",
            "X-Hub-Signature-256": sign(GITHUB_SECRET, body),
        }
        return self.webhook_request(headers, body)

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        return "comment", {
            "repo": GITHUB_REPO,
            "issue_number": self._number(ref),
            "body": "Contract comment",
        }

    def effects(self, ref: ObjectRef) -> int:
        issue = self.fake.repos[GITHUB_REPO].issues[self._number(ref)]
        return len(issue.comments)

    def fail_next(self, kind: str, method: str) -> None:
        # The fake GitHub injects only ambiguous writes; a plain status comes from the app.
        answer_next(
            self.fake.app, {RATE_LIMITED: 429, SERVER_ERROR: 503, REFUSED: 422}[kind], method
        )


# -- Jira -------------------------------------------------------------------------------

JIRA_SECRET = "contract-jira-secret"


class JiraHarness(Harness):
    name = "jira"
    object_type = "issue"
    poll_overlap = "JQL dates are minutes, and the cursor reaches back poll_overlap_minutes"

    def start(self) -> Connector:
        from pydantic import SecretStr

        from connectors.jira import JiraConnector, JiraSettings

        served = self.request.getfixturevalue("fake_jira")
        self.fake = served.fake
        settings = JiraSettings(
            base_url=served.url,
            email=self.fake.email,
            api_token=SecretStr(self.fake.api_token),
            projects=["OPS"],
            webhook_secret=SecretStr(JIRA_SECRET),
            timeout_seconds=5.0,
            rate_limit_per_second=1000,
        )
        return JiraConnector(settings, clock=self.clock)

    def create(self) -> ObjectRef:
        return ObjectRef("jira", "issue", self.fake.user_create("OPS", "Contract issue").key)

    def change(self, ref: ObjectRef) -> None:
        self.clock.advance(60)
        self.fake.user_update(ref.id, status="In Progress")

    def delete(self, ref: ObjectRef) -> None:
        self.fake.user_delete(ref.id)

    def missing_ref(self) -> ObjectRef:
        return ObjectRef("jira", "issue", "OPS-9999")

    def delivery(self, ref: ObjectRef) -> WebhookRequest:
        headers, body = self.fake.webhook_request(ref.id, secret=JIRA_SECRET, identifier="wh-1")
        return self.webhook_request(headers, body)

    def signed(self, body: bytes) -> WebhookRequest:
        digest = hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"x-atlassian-webhook-identifier": "wh-2", "x-hub-signature": f"sha256={digest}"}
        return self.webhook_request(headers, body)

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        return "comment", {"issue": ref.id, "body": "Contract comment"}

    def effects(self, ref: ObjectRef) -> int:
        return len(self.fake.issues[ref.id].comments)

    def fail_next(self, kind: str, method: str) -> None:
        if kind == REFUSED:  # the fake's faults are 429, 503 and resets only
            answer_next(self.fake.app, 400, method)
        else:
            self.fake.fail_next(method, ".*", {RATE_LIMITED: "429", SERVER_ERROR: "503"}[kind])


# -- Airtable ---------------------------------------------------------------------------


class AirtableHarness(Harness):
    name = "airtable"
    object_type = "lead"
    action_method = "PATCH"  # performUpsert
    poll_overlap = "the next listing starts poll_overlap_seconds before the last one began"
    missing: ClassVar[dict[str, str]] = {
        "finder": "its actions are idempotent upserts/updates: a retry repeats the same write"
    }

    def start(self) -> Connector:
        from connectors.airtable import AirtableConnector, AirtableSettings

        served = self.request.getfixturevalue("fake_airtable")
        self.fake = served.fake
        self.fake.create_table(
            "Leads",
            {
                "Name": "singleLineText",
                "Status": "singleSelect",
                "Seats": "number",
                "Last Modified": "lastModifiedTime",  # where versions come from
            },
        )
        settings = AirtableSettings(
            token=self.fake.token,
            base_id=self.fake.base_id,
            tables={"lead": "Leads"},
            base_url=served.url,
            timeout_seconds=5,
        )
        connector = AirtableConnector(settings, clock=self.clock)
        self.hooks = connector.ensure_webhooks(HOOK_URL.format(name=self.name))
        return connector

    def create(self) -> ObjectRef:
        record = self.fake.user_create("Leads", {"Name": "Contract lead", "Status": "New"})
        return ObjectRef("airtable", "lead", record)

    def change(self, ref: ObjectRef) -> None:
        self.clock.advance(60)
        self.fake.user_update("Leads", ref.id, {"Status": "Active"})

    def delete(self, ref: ObjectRef) -> None:
        self.fake.user_delete("Leads", ref.id)

    def missing_ref(self) -> ObjectRef:
        return ObjectRef("airtable", "lead", "rec99999999999999")

    def delivery(self, ref: ObjectRef) -> WebhookRequest:
        return self.webhook_request(*self.fake.signed_ping(self.hooks["lead"]))

    def signed(self, body: bytes) -> WebhookRequest:
        secret = self.fake.webhooks.hooks[self.hooks["lead"]].mac_secret_base64
        mac = hmac.new(base64.b64decode(secret), body, hashlib.sha256).hexdigest()
        return self.webhook_request({"x-airtable-content-mac": f"hmac-sha256={mac}"}, body)

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        return "upsert", {
            "table": "lead",
            "merge_on": ["Name"],
            "fields": {"Name": "Upserted lead", "Seats": 3},
        }

    def effects(self, ref: ObjectRef) -> int:
        return sum(1 for r in self.fake.records("Leads") if r["fields"]["Name"] == "Upserted lead")

    def fail_next(self, kind: str, method: str) -> None:
        if kind == RATE_LIMITED:
            self.fake.force_rate_limit()
        else:
            status = {SERVER_ERROR: 503, REFUSED: 422}[kind]
            self.fake.fail_next(method, ".*", status=status, applied=False)


# -- localdb (the reference connector; its "remote" is a SQLite file, no HTTP) -----------

LOCALDB_SECRET = "contract-localdb-secret"


class LocalDbHarness(Harness):
    name = "localdb"
    object_type = "item"
    missing: ClassVar[dict[str, str]] = {
        "read_faults": "its remote is a local SQLite file: faults are injected on actions only"
    }

    def start(self) -> Connector:
        from pydantic import SecretStr

        from syncd_sandbox.localdb.connector import LocalDbConnector, LocalDbSettings

        path = self.request.getfixturevalue("tmp_path") / "remote.sqlite3"
        settings = LocalDbSettings(path=str(path), webhook_secret=SecretStr(LOCALDB_SECRET))
        connector = LocalDbConnector(settings, self.clock)
        self.remote = connector.remote
        self._next = 0
        return connector

    def create(self) -> ObjectRef:
        self._next += 1
        ref = ObjectRef("localdb", "item", f"item-{self._next}")
        self.remote.put("item", ref.id, name="Contract item")
        return ref

    def change(self, ref: ObjectRef) -> None:
        self.remote.put("item", ref.id, name="Contract item, edited")

    def delete(self, ref: ObjectRef) -> None:
        self.remote.delete("item", ref.id)

    def missing_ref(self) -> ObjectRef:
        return ObjectRef("localdb", "item", "never-made")

    def delivery(self, ref: ObjectRef) -> WebhookRequest:
        return self.signed(json.dumps({"type": ref.type, "id": ref.id}).encode())

    def signed(self, body: bytes) -> WebhookRequest:
        from syncd_sandbox.localdb.connector import sign

        headers = {"x-localdb-signature": sign(LOCALDB_SECRET, body), "x-localdb-delivery": "d-1"}
        return self.webhook_request(headers, body)

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        return "record", {"title": "Contract effect"}

    def effects(self, ref: ObjectRef) -> int:
        return len(self.remote.effects("record"))

    def fail_next(self, kind: str, method: str) -> None:
        remote_kind = "permanent" if kind == REFUSED else "transient"
        self.remote.fail_next("record", remote_kind)


# -- email (actions only) ---------------------------------------------------------------


class EmailHarness(Harness):
    name = "email"
    missing: ClassVar[dict[str, str]] = {
        "webhooks": "email has actions only (no webhooks)",
        "poll": "email has actions only (nothing to poll)",
        "fetch": "email has actions only (nothing to fetch)",
        "finder": "SMTP cannot be asked what it received: no finder (the Message-ID from the "
        "key lets mail clients drop a copy)",
        "read_faults": "email has actions only (no reads)",
        "rate_limit": "SMTP has no rate-limit reply of its own (a busy server says 451: 5xx)",
    }

    def start(self) -> Connector:
        from connectors.email import EmailConnector

        self.smtp = self.request.getfixturevalue("fake_smtp")
        return EmailConnector(self.smtp.settings(), self.clock)

    def create(self) -> ObjectRef:
        return ObjectRef("email", "message", "contract")

    def action(self, ref: ObjectRef) -> tuple[str, dict[str, Any]]:
        return "send", {"to": ["ops@example.org"], "subject": "Contract", "body": "Hi.\n"}

    def effects(self, ref: ObjectRef) -> int:
        return len(self.smtp.messages)

    def fail_next(self, kind: str, method: str) -> None:
        # SMTP's 451 ("try again later") is the server error; 550 is a refusal.
        self.smtp.fail_next("permanent" if kind == REFUSED else "transient", at="rcpt")


HARNESSES: dict[str, Callable[[pytest.FixtureRequest], Harness]] = {
    h.name: h
    for h in (
        HubSpotHarness,
        GitHubHarness,
        JiraHarness,
        AirtableHarness,
        LocalDbHarness,
        EmailHarness,
    )
}
