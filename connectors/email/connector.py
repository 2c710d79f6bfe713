"""The email connector: one action, `email.send`, over SMTP.

A mail server cannot look up "did I already get this?", so there is no finder: the action's
guarantee decides what a lost answer to DATA means. at_least_once (default) sends again,
with the same Message-ID, so mail clients can thread or drop the copy; at_most_once turns
the uncertainty into a dead letter for a human to check.
"""

from __future__ import annotations

from connectors.email.message import SendParams, build_message
from connectors.email.settings import EmailSettings
from connectors.email.transport import send_message
from syncd.sdk import ActionContext, ActionResult, Connector, PermanentError, UncertainError, action

AT_MOST_ONCE_REFUSAL = "uncertain delivery; not repeated (at-most-once)"


class EmailConnector(Connector):
    name = "email"
    Settings = EmailSettings
    settings: EmailSettings

    @action("send", SendParams)
    def send(self, params: SendParams, ctx: ActionContext) -> ActionResult:
        """Send an email (text, optional HTML, text attachments); Message-ID from the key."""
        msg = build_message(params, ctx.key, self.settings, date=self.clock.now())
        guarantee = params.guarantee or self.settings.guarantee
        try:
            message_id = send_message(msg, self.settings)
        except UncertainError as exc:
            if guarantee == "at_most_once":
                raise PermanentError(f"{AT_MOST_ONCE_REFUSAL}: {exc}") from None
            raise
        return ActionResult(external_id=message_id)
