"""The connection's two waits on one timer: the head's deadline (from the handshake, or a request's
first byte, to the end of its headers) and the keep-alive wait (from an answer sent to the next
byte). Real TLS connections to certbound's protocol on uvicorn, with short timeouts; the timer count
comes from an asyncio loop that counts what is scheduled for the protocol (tests/faults has the 408
and 431 answers on a real ``certbound serve``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest

from certbound.tls.protocol import HttpToolsTLSProtocol
from certbound.tls.server_context import ServerContextFactory
from tests.faults.rawhttp import RawConnection, closed_within, request

from .conftest import TestPKI, serve


async def hello(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    await receive()
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hello"})


class CountingLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, counting the timers scheduled for a connection's protocol."""

    protocol_timers: ClassVar[int] = 0

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
        if isinstance(getattr(callback, "__self__", None), HttpToolsTLSProtocol):
            CountingLoop.protocol_timers += 1
        return super().call_at(when, callback, *args, context=context)


@pytest.fixture(scope="module")
def factory(pki: TestPKI) -> ServerContextFactory:
    return ServerContextFactory(cert_file=str(pki.server_cert), key_file=str(pki.server_key))


@contextmanager
def connected(port: int, pki: TestPKI) -> Iterator[RawConnection]:
    with RawConnection(f"https://127.0.0.1:{port}", pki.server_ca_file) as conn:
        yield conn


def ok(conn: RawConnection) -> bool:
    if not conn.send(request("GET", "/", conn.host)):
        return False
    response = conn.response()
    return response is not None and response.status == 200


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    pki: TestPKI, factory: ServerContextFactory, loop: str
) -> None:
    with serve(factory, hello, loop, timeout_keep_alive=1) as port, connected(port, pki) as conn:
        for _ in range(4):  # requests closer together than the timeout keep it open
            assert ok(conn)
            time.sleep(0.5)
        assert ok(conn)
        started = time.monotonic()
        assert closed_within(conn, 5)
        assert 0.8 <= time.monotonic() - started < 3
        assert conn._buffer == b""  # closed without a word


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_head_deadline_passing_while_idle_does_not_close_a_kept_connection(
    pki: TestPKI, factory: ServerContextFactory, loop: str
) -> None:
    """The timer armed for the first head's deadline fires while the connection waits between
    requests: within the keep-alive wait it must neither answer 408 nor close."""
    with (
        serve(factory, hello, loop, header_timeout=1, timeout_keep_alive=3) as port,
        connected(port, pki) as conn,
    ):
        assert ok(conn)
        time.sleep(2)  # past the first head's deadline, within the keep-alive wait
        assert ok(conn)
        assert not closed_within(conn, 1.5)  # still within the (new) keep-alive wait
        assert closed_within(conn, 5)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_head_still_counts_from_its_first_byte(
    pki: TestPKI, factory: ServerContextFactory, loop: str
) -> None:
    with (
        serve(factory, hello, loop, header_timeout=1, timeout_keep_alive=30) as port,
        connected(port, pki) as conn,
    ):
        assert ok(conn)
        time.sleep(1.5)  # a later request's head counts from its own first byte
        assert conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert closed_within(conn, 5)
        assert 0.8 <= time.monotonic() - started < 3
        assert conn._buffer.startswith(b"HTTP/1.1 408 ")


def test_keep_alive_requests_arm_no_timer_each(pki: TestPKI, factory: ServerContextFactory) -> None:
    """One timer per connection, not four per request (the head's and the keep-alive wait's, each
    armed and cancelled)."""
    loop = f"{__name__}:CountingLoop"  # uvicorn's ``loop`` as an import string: the loop factory
    with serve(factory, hello, loop) as port, connected(port, pki) as conn:
        assert ok(conn)
        before = CountingLoop.protocol_timers
        for _ in range(50):
            assert ok(conn)
        assert CountingLoop.protocol_timers - before <= 2
