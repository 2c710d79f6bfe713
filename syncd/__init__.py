"""syncd: keeps a team's SaaS tools in step (webhooks + polling -> rules -> idempotent actions)."""

__version__ = "0.1.0"
