"""The one import surface for connectors: everything a connector may use from syncd.

A connector module imports `syncd.sdk` and nothing else from `syncd` (an import-linter
contract in pyproject.toml enforces it), so the engine can change behind this list without
touching a connector, and a connector cannot reach into the store, the executor or the CLI.

- the contract: `Connector`, `ConnectorSettings`, `ParamsModel`, `action`
- what crosses the line: `ObjectRef`, `Observation`, `PollPage`, `Hint`, `WebhookRequest`,
  `ActionContext`, `ActionResult`
- errors by what happens next: `TransientError`, `UncertainError`, `PermanentError`, ...
- time: `Clock`, `SystemClock`, `to_ms`, `from_ms`
- rate limits and the HTTP door: `Governor`, `Limit`, `governor_for`, `account_id`, the
  request kinds `READ`/`WRITE`/`SEARCH`; `GovernedAdapter`, `GovernedConnection`,
  `govern_session`, `govern_urllib3`; HTTP answers to errors: `error_for_answer`,
  `error_for_transport`, `error_for_status`, `retry_after_seconds`, `NotFoundError`
- webhook checks, text caps, duration parsing, the fields the rules read
- commands: `CommandHost` (the engine's side of `syncd <connector> ...`), handed to a
  connector's click command by `pass_host`, and the shared `config_option`
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import click

from syncd.cli_support import config_option
from syncd.clock import Clock, SystemClock, from_ms, to_ms
from syncd.connector import ActionSpec, Connector, ConnectorSettings, ParamsModel, action
from syncd.errors import (
    ActionError,
    ConfigError,
    PermanentError,
    SyncdError,
    TransientError,
    UncertainError,
    WebhookRejected,
)
from syncd.governor import READ, SEARCH, WRITE, Governor, Limit, account_id, governor_for
from syncd.http_door import (
    GovernedAdapter,
    GovernedConnection,
    by_method,
    exchange_together,
    govern_session,
    govern_urllib3,
)
from syncd.http_errors import (
    NotFoundError,
    error_for_answer,
    error_for_status,
    error_for_transport,
    retry_after_seconds,
)
from syncd.mapping.durations import parse_offset
from syncd.model import (
    JSON,
    ActionContext,
    ActionResult,
    Hint,
    ObjectRef,
    Observation,
    PollPage,
    WebhookRequest,
)
from syncd.textcap import EMAIL_SUBJECT_MAX, GITHUB_TITLE_MAX, JIRA_SUMMARY_MAX, cap
from syncd.webhook_checks import (
    MALFORMED_INPUT_ERRORS,
    load_json,
    refuse_unsigned,
    signature_matches,
    unsigned_allowed,
)

__all__ = [
    "EMAIL_SUBJECT_MAX",
    "GITHUB_TITLE_MAX",
    "JIRA_SUMMARY_MAX",
    "JSON",
    "MALFORMED_INPUT_ERRORS",
    "READ",
    "SEARCH",
    "WHOLE_OBJECT",
    "WRITE",
    "ActionContext",
    "ActionError",
    "ActionResult",
    "ActionSpec",
    "Clock",
    "CommandHost",
    "ConfigError",
    "Connector",
    "ConnectorSettings",
    "GovernedAdapter",
    "GovernedConnection",
    "Governor",
    "Hint",
    "Limit",
    "NotFoundError",
    "ObjectRef",
    "Observation",
    "ParamsModel",
    "PermanentError",
    "PollPage",
    "SyncdError",
    "SystemClock",
    "TransientError",
    "UncertainError",
    "WebhookRejected",
    "WebhookRequest",
    "account_id",
    "action",
    "by_method",
    "cap",
    "config_option",
    "error_for_answer",
    "error_for_status",
    "error_for_transport",
    "exchange_together",
    "from_ms",
    "govern_session",
    "govern_urllib3",
    "governor_for",
    "load_json",
    "parse_offset",
    "pass_host",
    "refuse_unsigned",
    "retry_after_seconds",
    "rule_fields",
    "signature_matches",
    "to_ms",
    "unsigned_allowed",
]


# What `rule_fields` holds for a rule that uses an object whole (`deal | tojson`): any field
# may be read. The value of syncd.mapping.fields.WHOLE_OBJECT (too heavy to import here).
WHOLE_OBJECT = "*"


def rule_fields(compiled_rule: Any) -> dict[tuple[str, str], set[str]]:
    """{(source, object): the field names one compiled rule reads}: what a connector must
    ask its API for (HubSpot leaves an unasked property out of its answer)."""
    from syncd.mapping.fields import _rule_fields  # the mapping package is heavy: load on use

    return _rule_fields(compiled_rule)


class CommandHost:
    """What `syncd` lends a connector's command (`syncd airtable webhooks ensure`): the
    loaded config and the connector built the way the daemon builds it.

    The `syncd` group puts one in click's context (`ctx.obj`); a command receives it with
    `@pass_host`, so connector code never imports the engine or the CLI."""

    def load_config(self, config_path: str | None) -> Any:
        """The config (exit 2 with every problem), with quiet logging set up."""
        raise NotImplementedError

    def engine_for(
        self, config: Any, connector_name: str, label: str
    ) -> AbstractContextManager[tuple[Any, Any]]:
        """(engine, the named connector) for one command, closed afterwards; SyncdError
        becomes a CLI message `label: ...`."""
        raise NotImplementedError

    def connector_for(
        self, config: Any, connector_name: str, label: str
    ) -> AbstractContextManager[Any]:
        """The named connector alone (no store opened), closed afterwards; SyncdError
        becomes a CLI message `label: ...`."""
        raise NotImplementedError


# `@pass_host` before a click command's function: its first argument is the CommandHost.
pass_host = click.make_pass_decorator(CommandHost)
