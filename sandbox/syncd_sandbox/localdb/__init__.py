"""`localdb`: a connector whose "remote service" is a SQLite file on this machine.

It exercises the engine end to end without any SaaS (webhooks, polling, fetch, actions with
an idempotency finder) and survives the process being killed, which is what the crash tests
need: the remote side's state is in the file, not in the daemon's memory. It is also the
smallest complete example of a connector.
"""

from syncd_sandbox.localdb.connector import LocalDbConnector, LocalDbSettings
from syncd_sandbox.localdb.remote import LocalDbRemote

__all__ = ["LocalDbConnector", "LocalDbRemote", "LocalDbSettings"]
