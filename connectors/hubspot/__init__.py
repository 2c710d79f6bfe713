"""`hubspot`: deals from HubSpot's CRM (webhooks v3, search polling, stage history) and
actions on them (update a deal, add a note once). `fake.py` is the local HubSpot used by the
tests and the `syncd demo` sandbox."""

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings

__all__ = ["HubSpotConnector", "HubSpotSettings"]
