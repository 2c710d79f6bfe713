"""fetch_many: hinted records of a table read by one listing with
`OR(RECORD_ID()=...)` (issue 17), each the same observation `fetch` gives; a deleted record
is left out."""

from __future__ import annotations

from connectors.airtable import AirtableConnector
from syncd.model import ObjectRef
from syncd_sandbox.airtable.fake import FakeAirtable


def _records_requests(fake: FakeAirtable) -> int:
    return sum(1 for r in fake.app.log if f"/v0/{fake.base_id}/" in r.path)


def test_fetch_many_lists_the_records_in_one_request_as_fetch_reads_them(
    connector: AirtableConnector, fake: FakeAirtable
) -> None:
    ids = [fake.user_create("Leads", {"Name": f"lead {i}", "Seats": i}) for i in range(40)]
    fake.user_delete("Leads", ids[7])
    refs = [ObjectRef("airtable", "lead", i) for i in ids]
    connector.fetch(refs[0])  # the schema is read once, before counting
    before = _records_requests(fake)
    found = connector.fetch_many(refs)
    assert _records_requests(fake) - before == 1
    assert set(found) == set(refs) - {refs[7]}
    assert all(found[ref] == connector.fetch(ref) for ref in found)
    assert found[refs[5]].fields["Seats"] == 5
