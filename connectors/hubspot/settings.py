"""The `[hubspot]` table of the config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr

from syncd.sdk import ConnectorSettings

# What rules and templates need of a deal: HubSpot's own properties and the community facts
# delivery needs (seed 004), created as custom deal properties in the portal.
DEFAULT_DEAL_PROPERTIES = [
    "dealname",
    "dealstage",
    "pipeline",
    "amount",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hubspot_owner_id",
    "community_short_name",
    "community_long_name",
    "community_id",
    "website",
    "github_org",
    "github_repos",
    "logo_url",
    "cloud_provider",
    "cloud_region",
    "membership_level",
    "start_date",
    "end_date",
    "num_users",
    "maintenance_tier",
    "delivered",
]
DEFAULT_CONTACT_PROPERTIES = ["firstname", "lastname", "email", "jobtitle", "github_username"]
DEFAULT_COMPANY_PROPERTIES = ["name", "domain", "website", "city", "country"]


class HubSpotSettings(ConnectorSettings):
    base_url: str | None = "https://api.hubapi.com"
    access_token: SecretStr | None = None  # a private app's token (required to run)
    # Webhook signing secret (the app's client secret); None: webhooks are refused.
    app_secret: SecretStr | None = None
    allow_unsigned: bool = False  # accept deliveries without a signature (never in production)
    portal_id: int | None = None  # for links to the HubSpot UI
    ui_domain: str = "app.hubspot.com"
    # v1/v2 carry no timestamp (replayable): accept them only when asked to.
    accept_signature_versions: list[Literal["v1", "v2", "v3"]] = ["v3"]
    # The webhook URL as HubSpot calls it, when syncd is behind a proxy that rewrites it.
    public_webhook_url: str | None = None
    max_webhook_age_seconds: float = 300
    # Client-side rate limits (HubSpot: 100-250 requests / 10 s by tier; search ~4-5/s).
    requests_per_10s: int = Field(100, ge=1)
    search_requests_per_second: int = Field(4, ge=1)
    rate_margin: float = Field(0.9, gt=0, le=1)  # share of each limit syncd uses
    deal_properties: list[str] = DEFAULT_DEAL_PROPERTIES
    extra_properties: list[str] = []
    contact_properties: list[str] = DEFAULT_CONTACT_PROPERTIES
    company_properties: list[str] = DEFAULT_COMPANY_PROPERTIES
    # Context (company, contacts, owner) on polled observations costs ~4 requests a page.
    poll_context: bool = True
    search_page_size: int = Field(200, ge=1, le=200)
    search_result_cap: int = Field(10_000, ge=1)  # HubSpot refuses to page past this

    # Deal fields the loaded rules read (set by the connector on each rules load).
    _rule_properties: list[str] = PrivateAttr(default_factory=list)

    def properties(self) -> list[str]:
        return list(
            dict.fromkeys([*self.deal_properties, *self.extra_properties, *self._rule_properties])
        )
