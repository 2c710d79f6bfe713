"""`email`: sends mail over SMTP (`email.send`), plus the pieces the engine's alert mailer
reuses: `build_message` (pure) and `send_message` (one SMTP session, errors sorted into
Transient / Permanent / Uncertain). `syncd_sandbox.email.fake` is a local SMTP server for tests
and the demo sandbox.
"""

from connectors.email.addresses import InvalidHeaderValue
from connectors.email.connector import AT_MOST_ONCE_REFUSAL, EmailConnector
from connectors.email.message import Attachment, SendParams, build_message, message_id_for
from connectors.email.settings import EmailSettings
from connectors.email.transport import send_message

__all__ = [
    "AT_MOST_ONCE_REFUSAL",
    "Attachment",
    "EmailConnector",
    "EmailSettings",
    "InvalidHeaderValue",
    "SendParams",
    "build_message",
    "message_id_for",
    "send_message",
]
