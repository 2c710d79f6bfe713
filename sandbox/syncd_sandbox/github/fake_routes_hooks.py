"""The fake GitHub's repository webhook endpoints: hooks, deliveries, redelivery."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from syncd_sandbox.fakeserver import FakeRequest, FakeResponse

if TYPE_CHECKING:
    from syncd_sandbox.github.fake import FakeGitHub
    from syncd_sandbox.github.fake_data import FakeHook, FakeRepo

NOT_FOUND = "Not Found"


def register_hooks(fake: FakeGitHub) -> None:
    route = fake._route
    err = fake._error

    def find_hook(request: FakeRequest) -> tuple[FakeRepo, FakeHook] | None:
        repo = fake._repo(request)
        hook = repo.hooks.get(int(request.params["hook_id"])) if repo else None
        return None if repo is None or hook is None else (repo, hook)

    @route("GET", "/repos/{owner}/{repo}/hooks", spec="hooks")
    def list_hooks(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        shapes = fake._shapes(request)
        return fake._list(request, [shapes.hook(repo, h) for h in repo.hooks.values()])

    @route("POST", "/repos/{owner}/{repo}/hooks", spec="hooks")
    def create_hook(request: FakeRequest) -> FakeResponse:
        repo = fake._repo(request)
        if repo is None:
            return err(404, NOT_FOUND)
        data = request.json()
        config = data.get("config", {})
        hook = fake.add_hook(
            repo.full_name,
            config.get("url", ""),
            config.get("secret"),
            data.get("events") or ["push"],
        )
        hook.active = data.get("active", True)
        return FakeResponse(201, fake._shapes(request).hook(repo, hook))

    @route("GET", "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries", spec="hooks")
    def list_deliveries(request: FakeRequest) -> FakeResponse:
        found = find_hook(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, hook = found
        shapes = fake._shapes(request)
        newest_first = sorted(hook.deliveries, key=lambda d: (d.delivered_at, d.id), reverse=True)
        return fake._list(request, [shapes.delivery_item(repo, d) for d in newest_first])

    @route("GET", "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}", spec="hooks")
    def get_delivery(request: FakeRequest) -> FakeResponse:
        found = find_hook(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, hook = found
        wanted = int(request.params["delivery_id"])
        for delivery in hook.deliveries:
            if delivery.id == wanted:
                item = fake._shapes(request).delivery_item(repo, delivery)
                item["url"] = hook.url
                item["request"] = {
                    "headers": delivery.headers,
                    "payload": json.loads(delivery.body),
                }
                item["response"] = {"headers": {}, "payload": None}
                return FakeResponse(200, item)
        return err(404, NOT_FOUND)

    @route(
        "POST",
        "/repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
        spec="hooks",
    )
    def redeliver(request: FakeRequest) -> FakeResponse:
        found = find_hook(request)
        if found is None:
            return err(404, NOT_FOUND)
        repo, hook = found
        wanted = int(request.params["delivery_id"])
        original = next((d for d in hook.deliveries if d.id == wanted), None)
        if original is None:
            return err(404, NOT_FOUND)
        # Sent after the lock is released, like the webhooks a change causes.
        fake._outbox.items.append(
            (repo, hook, original.event, original.action, original.body, original.guid)
        )
        return FakeResponse(202, {})
