"""`airtable`: one Airtable base, its tables by alias (records, webhooks, upserts).

`fake.FakeAirtable` is the local fake used by the tests and the `syncd demo` sandbox.
"""

from connectors.airtable.connector import AirtableConnector, AirtableSettings
from connectors.airtable.registry import (
    InMemoryWebhookRegistry,
    WebhookRegistration,
    WebhookRegistry,
)

__all__ = [
    "AirtableConnector",
    "AirtableSettings",
    "InMemoryWebhookRegistry",
    "WebhookRegistration",
    "WebhookRegistry",
]
