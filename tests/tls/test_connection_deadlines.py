"""The connection's two waits on one timer: the head's deadline (from the handshake, or a request's
first byte, to the end of its headers) and the keep-alive wait (from an answer sent to the next
byte). Real TLS connections to certbound's protocol on uvicorn, with short timeouts; the timer count
comes from an asyncio loop that counts what is scheduled for the protocol (tests/faults has the 408
and 431 answers on a real ``certbound serve``)."""

from __future__ import annotations

import asyncio
import threading
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


def test_a_deadline_reached_early_by_uvloop_is_not_waited_for_in_a_busy_loop(
    pki: TestPKI, factory: ServerContextFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop rounds a timer's delay to whole milliseconds: armed for 1.0004 s (a valid
    ``header_timeout``), the timer fires 0.4 ms before the deadline. It must sleep until then, not
    re-arm itself with ``call_soon`` on every loop iteration until the clock turns (a spy counts
    the real timer's calls)."""
    calls = 0
    real = HttpToolsTLSProtocol._on_timer

    def counting(self: HttpToolsTLSProtocol) -> None:
        nonlocal calls
        calls += 1
        real(self)

    monkeypatch.setattr(HttpToolsTLSProtocol, "_on_timer", counting)
    with serve(factory, hello, "uvloop", header_timeout=1.0004) as port:
        conns = [RawConnection(f"https://127.0.0.1:{port}", pki.server_ca_file) for _ in range(5)]
        try:
            for conn in conns:  # no request ever begins: closed at the head's deadline
                assert closed_within(conn, 5)
        finally:
            for conn in conns:
                conn.close()
    assert calls <= 2 * len(conns)  # early, then at the deadline


def test_a_request_arriving_while_the_timer_waits_out_an_early_firing_is_served(
    pki: TestPKI, factory: ServerContextFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timer fired 0.4 ms before the keep-alive deadline (uvloop's whole milliseconds, above)
    and the next request's first bytes come in the same loop iteration: it must be served, not
    answered 400 because the timer left behind was a ``call_soon`` handle without ``when()``. The
    real connection and loop; the early firing is made by hand, on the loop's thread."""
    protocols: list[HttpToolsTLSProtocol] = []
    real_made = HttpToolsTLSProtocol.connection_made

    def spy(self: HttpToolsTLSProtocol, transport: asyncio.Transport) -> None:
        protocols.append(self)
        real_made(self, transport)

    monkeypatch.setattr(HttpToolsTLSProtocol, "connection_made", spy)
    with (
        serve(factory, hello, "uvloop", timeout_keep_alive=30) as port,
        connected(port, pki) as conn,
    ):
        assert ok(conn)
        [protocol] = protocols
        done = threading.Event()

        def fired_early_then_a_request() -> None:
            try:
                assert protocol._timer is not None
                protocol._timer.cancel()  # this is the timer firing
                protocol._idle_deadline = protocol.loop.time() + 0.0004
                protocol._on_timer()
                protocol.data_received(request("GET", "/", conn.host))
            finally:
                done.set()

        protocol.loop.call_soon_threadsafe(fired_early_then_a_request)
        assert done.wait(5)
        response = conn.response()
        assert response is not None
        assert response.status == 200


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_refused_head_waits_for_every_request_pipelined_before_it(
    pki: TestPKI, factory: ServerContextFactory, loop: str
) -> None:
    """HTTP/1.1 answers in request order: two requests pipelined before a head past the limits (101
    headers) are both answered, then the 431, then the close. The 431 must not go out as soon as the
    first answer is done, in place of the second's (which the server had accepted and is serving)."""
    refused = request("GET", "/", "127.0.0.1", [(f"X-{n}", "v") for n in range(101)])
    with serve(factory, hello, loop) as port, connected(port, pki) as conn:
        assert conn.send(request("GET", "/", conn.host) * 2 + refused)  # one TLS record
        answers = [conn.response() for _ in range(3)]
        assert [answer.status if answer else None for answer in answers] == [200, 200, 431]
        assert closed_within(conn, 5)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_bytes_that_begin_no_request_do_not_extend_the_keep_alive_wait(
    pki: TestPKI, factory: ServerContextFactory, loop: str
) -> None:
    """A slowloris between requests: empty lines (which HTTP/1.1 lets precede a request line) begin
    no request, so no head deadline runs; they must not end the keep-alive wait either, or a byte
    every few seconds would hold the connection open for ever."""
    with (
        serve(factory, hello, loop, header_timeout=1, timeout_keep_alive=1) as port,
        connected(port, pki) as conn,
    ):
        assert ok(conn)
        started = time.monotonic()
        closed = False
        while not closed and time.monotonic() - started < 4:
            closed = not conn.send(b"\r\n") or closed_within(conn, 0.3)
        assert closed
        assert time.monotonic() - started < 2.5
        assert conn._buffer == b""  # closed without a word: nothing was asked


#: uvicorn's methods that `HttpToolsTLSProtocol` copies or relies on (the keep-alive wait, the headers), as of
#: uvicorn 0.55 (SHA-256 of their source, first 16 hex digits).
UVICORN_METHODS = {
    "on_response_complete": "64e254f28e389e76",  # copied, with the wait moved to the one timer
    "_unset_keepalive_if_required": "00a6a4e47214e68e",  # overridden, then called
    "timeout_keep_alive_handler": "8b53bf5f2e202970",  # called when the wait is over
    "on_header": "1e86ebb6cea0458c",  # copied inline, after the head limits' count
}


async def echo_headers(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    body = b"".join(b"%s=[%s]\n" % pair for pair in scope["headers"]) + (await receive())["body"]
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_headers_reach_the_app_as_uvicorn_gives_them(pki: TestPKI, factory: ServerContextFactory) -> None:
    """The protocol's copy of uvicorn's ``on_header``: names in lower case, values without trailing
    whitespace, and ``Expect: 100-continue`` answered with ``100 Continue`` before the body is read."""
    head = request("POST", "/", "127.0.0.1", [("X-Mixed-Case", "Value \t"), ("Expect", "100-Continue")], b"")
    head = head.replace(b"Content-Length: 0", b"Content-Length: 4")
    with serve(factory, echo_headers, "uvloop") as port, connected(port, pki) as conn:
        assert conn.send(head)
        conn.sock.settimeout(5)
        assert conn.sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert conn.send(b"body")
        response = conn.response()
    assert response is not None
    assert response.status == 200
    assert b"x-mixed-case=[Value]\n" in response.body
    assert b"expect=[100-Continue]\n" in response.body
    assert response.body.endswith(b"\nbody")


@pytest.mark.parametrize("name", UVICORN_METHODS)
def test_the_uvicorn_code_the_protocol_copies_is_still_the_same(name: str) -> None:
    """A tripwire: when uvicorn changes one of these, the copy in certbound/tls/protocol.py must be
    compared with the new code (and this digest updated), or the listener drifts from uvicorn."""
    import hashlib
    import inspect

    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    source = inspect.getsource(getattr(HttpToolsProtocol, name))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == UVICORN_METHODS[name], (
        f"uvicorn's HttpToolsProtocol.{name} changed: re-check certbound.tls.protocol's copy"
    )
