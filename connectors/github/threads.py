"""One PyGithub connection per thread.

PyGithub's Requester keeps one persistent connection object per client, and a request is
two calls on it: `request()` stores the verb, URL and body, `getresponse()` sends what is
stored. Executor workers share the connector's client, so one thread could store its body
over another's before that one sent: the same issue created twice and another never (a
duplicate and a lost issue under load, issue 17). Each thread now gets a connection object
of its own, with its own keep-alive session: bounded by the executor's worker count.
"""

from __future__ import annotations

import threading
from typing import Any

from github.Requester import Requester


class _PerThreadConnectionRequester(Requester):
    """A Requester whose persistent connection is per thread (the attribute PyGithub's code
    reads and sets as `self.__connection`)."""

    _connections: threading.local

    @property
    def _Requester__connection(self) -> Any:
        return getattr(self._connections, "connection", None)

    @_Requester__connection.setter
    def _Requester__connection(self, value: Any) -> None:
        self._connections.connection = value


def connection_per_thread(requester: Requester) -> None:
    """Give each thread using `requester` a connection object of its own."""
    requester._connections = threading.local()  # type: ignore[attr-defined]
    requester.__class__ = _PerThreadConnectionRequester
