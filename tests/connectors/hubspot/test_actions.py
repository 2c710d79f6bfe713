"""update_deal, add_note (once, even after an ambiguous failure), and stage labels."""

from __future__ import annotations

import pytest

from syncd.errors import PermanentError, UncertainError
from syncd.model import ActionContext, ObjectRef


def run(connector, name, key="rule-1:deal:1", attempt=1, **params):
    spec = connector.actions[name]
    return spec.perform(connector, spec.params(**params), ActionContext(key, "rule-1", attempt))


def find(connector, name, key="rule-1:deal:1", **params):
    spec = connector.actions[name]
    return spec.find_existing(connector, spec.params(**params), ActionContext(key, "rule-1", 2))


def test_update_deal_sets_properties_and_a_stage_by_label(fake, connector):
    deal = fake.create_deal(dealname="Ocean", num_users=1500)
    result = run(
        connector,
        "update_deal",
        deal_id=deal,
        properties={"maintenance_tier": "tier 2", "delivered": True, "dealstage": "Closed Won"},
    )
    record = fake.portal.get("deals", deal)
    assert record.properties["maintenance_tier"] == "tier 2"
    assert record.properties["delivered"] == "true"
    assert record.properties["dealstage"] == "closedwon"
    assert result.external_id == deal
    assert result.url.endswith(f"/record/0-3/{deal}")
    assert connector.actions["update_deal"].idempotent is True

    # Same values again: nothing changes at HubSpot, no new history entry.
    history_length = len(record.history["dealstage"])
    run(connector, "update_deal", deal_id=deal, properties={"dealstage": "closedwon"})
    assert len(record.history["dealstage"]) == history_length


def test_update_deal_refuses_an_unknown_stage_or_property(fake, connector):
    deal = fake.create_deal(dealname="Ocean")
    with pytest.raises(PermanentError, match="unknown deal stage"):
        run(connector, "update_deal", deal_id=deal, properties={"dealstage": "Signed"})
    with pytest.raises(PermanentError, match="HTTP 400"):
        run(connector, "update_deal", deal_id=deal, properties={"no_such_property": "x"})


def test_add_note_after_an_ambiguous_failure_is_found_not_repeated(fake, connector):
    deal = fake.create_deal(dealname="Ocean")
    other_deal = fake.create_deal(dealname="Other")
    run(connector, "add_note", key="another-key", deal_id=deal, body="unrelated note")
    assert find(connector, "add_note", deal_id=deal, body="Capacity?") is None

    # HubSpot stores the note, then the answer is lost (502).
    fake.fail_next(1, 502, method="POST", path="/objects/notes$", applied_first=True)
    with pytest.raises(UncertainError):
        run(connector, "add_note", deal_id=deal, body="Capacity?")

    # What the executor does before retrying: look for the effect by key.
    found = find(connector, "add_note", deal_id=deal, body="Capacity?")
    assert found is not None
    assert len(fake.notes_of(deal)) == 2
    assert "Capacity?" in fake.notes_of(deal)[1]
    assert found.external_id == sorted(fake.portal.associated("deals", deal, "notes"), key=int)[1]
    assert find(connector, "add_note", deal_id=other_deal, body="Capacity?") is None


def test_add_note_is_associated_with_the_deal_and_carries_a_hidden_marker(fake, connector):
    deal = fake.create_deal(dealname="Ocean")
    result = run(connector, "add_note", key="k-<!-- -->", deal_id=deal, body="Hello")
    body = fake.notes_of(deal)[0]
    assert body.startswith("Hello\n<!-- syncd:key=")
    assert body.count("-->") == 1  # the key cannot close the comment early
    assert result.external_id in fake.portal.associated("deals", deal, "notes")


def test_stage_aliases_by_label_and_refresh_on_a_miss(fake, connector):
    aliases = connector.value_aliases("deal", "dealstage")
    assert aliases == {
        "Lead": "lead",
        "Qualified": "qualified",
        "Proposal": "proposal",
        "Negotiation": "negotiation",
        "Contract Admin": "contractadmin",
        "Closed Won": "closedwon",
        "Closed Lost": "closedlost",
    }
    assert connector.stage_labels()["contractadmin"] == "Contract Admin"
    assert connector.value_aliases("deal", "amount") == {}

    pipeline_reads = sum(1 for r in fake.app.log if "/pipelines/" in r.path)
    fake.portal.pipelines[0]["stages"].append(
        {**fake.portal.pipelines[0]["stages"][0], "id": "onhold", "label": "On Hold"}
    )
    connector.clock.advance(120)
    assert connector.resolve_stage("On Hold") == "onhold"  # a miss reloads the pipelines
    assert sum(1 for r in fake.app.log if "/pipelines/" in r.path) == pipeline_reads + 1
    assert connector.resolve_stage("Nope") is None  # a second miss right away: no reload
    assert sum(1 for r in fake.app.log if "/pipelines/" in r.path) == pipeline_reads + 1


def test_query_lists_deals_in_a_stage_given_by_label(fake, connector):
    won = [fake.create_deal(dealname=f"w{i}", dealstage="closedwon") for i in range(3)]
    fake.create_deal(dealname="open", dealstage="proposal")
    found = list(connector.query("deal", {"where": {"dealstage": "Closed Won"}}))
    assert [o.ref for o in found] == [ObjectRef("hubspot", "deal", d) for d in won]
