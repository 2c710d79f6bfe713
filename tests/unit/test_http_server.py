"""The listener's protocol (syncd.http_server) on uvicorn's two HTTP implementations: a
response's head and body leave in one write, and the header clock, restarted by each
response, closes an idle connection only once its own deadline has passed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from syncd.http_server import deadline_protocol

REQUEST = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"


class RecordingTransport(asyncio.Transport):
    """Where the protocol writes: each write() kept as it was made."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def one_body(scope: Any, receive: Any, send: Any) -> None:
    """Answers as the webhook endpoint does: the head, then the whole body."""
    await receive()
    await send({"type": "http.response.start", "status": 202, "headers": [LENGTH_2]})
    await send({"type": "http.response.body", "body": b"ok"})


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    """The head and a first chunk, then a pause, then the last chunk."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [LENGTH_2]})
    await send({"type": "http.response.body", "body": b"o", "more_body": True})
    await asyncio.sleep(0.01)
    await send({"type": "http.response.body", "body": b"k"})


LENGTH_2 = (b"content-length", b"2")


def connect(app: Any, base: type[asyncio.Protocol], header_timeout: float = 60) -> Any:
    config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False)
    config.load()
    protocol_class = deadline_protocol(base, header_timeout, max_connections=10)
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def until(condition: Any, seconds: float = 5) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.mark.parametrize("base", [HttpToolsProtocol, H11Protocol])
def test_the_head_and_body_of_a_response_leave_in_one_write(base: Any) -> None:
    async def run() -> list[bytes]:
        protocol, transport = connect(one_body, base)
        protocol.data_received(REQUEST)
        await until(lambda: any(w.endswith(b"ok") for w in transport.writes))
        return transport.writes

    writes = asyncio.run(run())
    assert len(writes) == 1, writes
    assert writes[0].startswith(b"HTTP/1.1 202 ") and writes[0].endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("base", [HttpToolsProtocol, H11Protocol])
def test_a_streamed_body_is_not_held_past_its_first_chunk(base: Any) -> None:
    async def run() -> list[bytes]:
        protocol, transport = connect(streamed, base)
        protocol.data_received(REQUEST)
        await until(lambda: len(transport.writes) >= 1)
        first = list(transport.writes)
        await until(lambda: b"".join(transport.writes).endswith(b"ok"))
        return first

    first = asyncio.run(run())
    assert len(first) == 1 and first[0].startswith(b"HTTP/1.1 200 "), first
    assert first[0].endswith(b"\r\n\r\no")  # the head and the first chunk, at once


@pytest.mark.parametrize("base", [HttpToolsProtocol, H11Protocol])
def test_the_header_clock_restarts_after_each_response(base: Any) -> None:
    """A request answered shortly before the connection's first deadline moves the
    deadline: the connection is closed one header timeout after that response, not at
    the first deadline, and not never."""
    timeout = 1.0

    async def run() -> tuple[bool, bool]:
        protocol, transport = connect(one_body, base, header_timeout=timeout)
        await asyncio.sleep(timeout * 0.6)
        protocol.data_received(REQUEST)
        await until(lambda: bool(transport.writes))
        await asyncio.sleep(timeout * 0.6)  # past the first deadline, before the second
        open_after_first_deadline = not transport.closed
        await asyncio.sleep(timeout)  # past the second
        return open_after_first_deadline, transport.closed

    open_after_first_deadline, closed_in_the_end = asyncio.run(run())
    assert open_after_first_deadline
    assert closed_in_the_end
