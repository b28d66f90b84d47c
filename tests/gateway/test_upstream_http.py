"""The gateway's HTTP/1.1 upstream client (`Upstream.forward` over `upstream_http`), against raw asyncio
servers written here for the edge cases: real sockets and real TLS on 127.0.0.1, certificates from
certbound's PKI. What goes up (bytes as sent), how answers are framed, when a pooled connection is
reused and when not, the retry of a stale one, the caps and the timeouts. Each test runs on asyncio's
loop and on uvloop (the gateway's, whose transports differ): ``pytest_asyncio_loop_factories`` in
conftest.py."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop

from certbound.gateway.answers import GatewayError
from certbound.gateway.upstream import ClientGone, Upstream, UpstreamPools
from certbound.gateway.upstream_http import Pool
from certbound.pki.issue import create_ca, issue_server_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.tls import whole_response
from tests.tls.uvicorn_cycle import make_cycle


@dataclass
class Request:
    connection: int  # which connection it came on (1, 2, ...)
    head: bytes
    body: bytes


Reply = Callable[[Request, asyncio.StreamWriter], Awaitable[bool]]  # False: close the connection


@dataclass
class Server:
    """A raw HTTP/1.1 server: parses each request (body by length or chunked), lets `reply` answer."""

    reply: Reply
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    closed_by_peer: int = 0  # connections the client (the gateway) closed

    def paths(self) -> list[bytes]:
        return [r.head.split(b" ")[1] for r in self.requests]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lower = head.lower()
    body = b""
    if b"transfer-encoding: chunked" in lower:
        while (size := int((await reader.readuntil(b"\r\n")).strip(), 16)) != 0:
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readuntil(b"\r\n")
    elif b"content-length: " in lower:
        length = int(lower.split(b"content-length: ")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
    return head, body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def start(reply: Reply, ssl_context: ssl.SSLContext | None = None) -> Server:
        state = Server(reply)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            state.connections += 1
            number = state.connections
            try:
                while (got := await _read_request(reader)) is not None:
                    request = Request(number, *got)
                    state.requests.append(request)
                    if not await reply(request, writer):
                        break
                else:
                    state.closed_by_peer += 1
            except ConnectionError:
                state.closed_by_peer += 1
            except asyncio.CancelledError:  # the test is over
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_context)
        servers.append(server)
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server in servers:
        server.close()
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)


def answer(raw: bytes, *, keep: bool = True) -> Reply:
    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return keep

    return reply


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def held_until(release: asyncio.Event, *, only: bytes = b"") -> Reply:
    """`OK`, kept, once `release` is set: for every request, or for those whose head holds `only`
    (the others at once): connections stay busy for as long as a test needs."""

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        if only in request.head:
            await release.wait()
        writer.write(OK)
        return True

    return reply


@dataclass
class Caller:
    """The ASGI side: a request body given in pieces, the messages sent back."""

    body: list[bytes] | None = None
    disconnect: bool = False
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self) -> dict[str, Any]:
        if self.disconnect:
            return {"type": "http.disconnect"}
        parts = self.body or []
        chunk = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(parts)}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0]["headers"])

    @property
    def body_chunks(self) -> list[bytes]:
        return [m["body"] for m in self.sent[1:] if m["body"]]


async def forward(
    upstream: Upstream,
    method: str = "GET",
    target: bytes = b"/x",
    headers: list[tuple[bytes, bytes]] | None = None,
    caller: Caller | None = None,
) -> tuple[Caller, str | None]:
    caller = caller or Caller()
    status, broke = await upstream.forward(
        method, target, headers or [], caller.body is not None, caller.receive, caller.send
    )
    assert status == caller.status
    return caller, broke


def plain(server: Server, pool: Pool | None = None, *, base: str = "", timeout: float = 5.0) -> Upstream:
    url = f"http://127.0.0.1:{server.port}{base}"
    pool = pool or UpstreamPools().pool(url, None)
    return Upstream(url, pool, connect_timeout=timeout, read_timeout=timeout)


async def refused(call: Awaitable[Any]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await call
    return caught.value


# -- the request ---------------------------------------------------------------------------------


async def test_the_request_goes_up_as_given_with_the_upstreams_host(serve: Any) -> None:
    server = await serve(answer(OK))
    upstream = plain(server, base="/base/")
    headers = [(b"x-a", b"1"), (b"X-Mixed", b"v w"), (b"content-length", b"5")]
    caller, broke = await forward(upstream, "PUT", b"/p%2Fq?a=1&b", headers, Caller([b"hel", b"lo"]))
    assert (caller.status, caller.body_chunks, broke) == (200, [b"ok"], None)
    (seen,) = server.requests
    assert seen.head == (
        b"PUT /base/p%2Fq?a=1&b HTTP/1.1\r\nhost: 127.0.0.1:"
        + str(server.port).encode()
        + b"\r\nx-a: 1\r\nX-Mixed: v w\r\ncontent-length: 5\r\n\r\n"
    )
    assert seen.body == b"hello"  # Content-Length as given: the body raw, not chunked


async def test_a_body_without_length_goes_chunked(serve: Any) -> None:
    server = await serve(answer(OK))
    caller, _ = await forward(plain(server), "POST", b"/up", [], Caller([b"up", b"", b"load"]))
    assert caller.status == 200
    (seen,) = server.requests
    assert seen.head.endswith(b"\r\ntransfer-encoding: chunked\r\n\r\n")
    assert seen.body == b"upload"


@pytest.mark.parametrize(
    "headers",
    [
        [(b"x-claim", b"a\r\nx-injected: 1")],
        [(b"x-claim", b"a\nb")],
        [(b"x-claim", b"a\x00b")],
        [(b"x-bad\r\nname", b"v")],
        [(b"x-bad: name", b"v")],
    ],
)
async def test_a_header_that_would_inject_another_is_never_sent(
    serve: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    server = await serve(answer(OK))
    error = await refused(forward(plain(server), headers=headers))
    assert (error.status, error.reason) == (502, "upstream.unavailable")
    assert "CR, LF or NUL" in error.detail
    await asyncio.sleep(0.05)
    assert server.connections == 0  # not even a connection


@pytest.mark.parametrize("name", [b"host", b"Host", b"transfer-encoding", b"Transfer-Encoding"])
async def test_a_header_the_client_writes_itself_is_never_sent_twice(serve: Any, name: bytes) -> None:
    server = await serve(answer(OK))
    error = await refused(forward(plain(server), "POST", headers=[(name, b"chunked")], caller=Caller([b"x"])))
    assert (error.status, error.reason) == (502, "upstream.unavailable")
    assert server.connections == 0


async def test_a_content_length_in_any_case_frames_the_body(serve: Any) -> None:
    server = await serve(answer(OK))
    await forward(plain(server), "POST", headers=[(b"Content-Length", b"5")], caller=Caller([b"hello"]))
    (seen,) = server.requests
    assert b"transfer-encoding" not in seen.head.lower()  # never both
    assert seen.body == b"hello"


async def test_no_cookie_jar_and_no_redirect_followed(serve: Any) -> None:
    server = await serve(
        answer(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nSet-Cookie: s=1\r\nContent-Length: 0\r\n\r\n")
    )
    upstream = plain(server)
    caller, _ = await forward(upstream)
    assert caller.status == 302
    assert (b"location", b"/elsewhere") in caller.headers
    await forward(upstream, target=b"/second")
    assert server.paths() == [b"/x", b"/second"]  # the redirect was the caller's to follow
    assert b"cookie" not in server.requests[1].head.lower()


# -- the answer ----------------------------------------------------------------------------------


async def test_interim_answers_are_skipped(serve: Any) -> None:
    server = await serve(
        answer(
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 100 Continue\r\n\r\n" + OK
        )
    )
    caller, _ = await forward(plain(server))
    assert (caller.status, caller.body_chunks) == (200, [b"ok"])
    assert not any(name == b"link" for name, _ in caller.headers)


@pytest.mark.parametrize(
    ("method", "raw"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"),
    ],
)
async def test_answers_without_a_body_whatever_their_length(serve: Any, method: str, raw: bytes) -> None:
    server = await serve(answer(raw))
    upstream = plain(server)
    caller, broke = await forward(upstream, method)
    assert (caller.body_chunks, broke) == ([], None)
    last = caller.sent[-1]  # the last message, ending the answer (more_body absent means False)
    assert (last["type"], last["body"], last.get("more_body", False)) == ("http.response.body", b"", False)
    await forward(upstream, method)
    # complete: the connection was kept, except after HEAD (a body sent anyway may still come)
    assert server.connections == (2 if method == "HEAD" else 1)


async def test_length_chunked_and_close_delimited_bodies(serve: Any) -> None:
    answers = {
        b"/length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\r\nhello",
        b"/chunked": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"/close": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
        b"/trailer": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nX-Sum: 1\r\n\r\n",
        b"/coded": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot chunked, to the close",
    }

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        path = request.head.split(b" ")[1]
        writer.write(answers[path])
        return path not in (b"/close", b"/coded")

    server = await serve(reply)
    upstream = plain(server)
    caller, _ = await forward(upstream, target=b"/length")
    assert b"".join(caller.body_chunks) == b"hello"
    assert not any(name in (b"x-hop", b"connection") for name, _ in caller.headers)
    caller, _ = await forward(upstream, target=b"/chunked")
    assert (caller.status, b"".join(caller.body_chunks)) == (201, b"abcde")
    caller, _ = await forward(upstream, target=b"/trailer")
    assert b"".join(caller.body_chunks) == b"ab"
    assert not any(name.lower() == b"x-sum" for name, _ in caller.headers)
    caller, broke = await forward(upstream, target=b"/close")
    assert (b"".join(caller.body_chunks), broke) == (b"until the end", None)
    assert server.connections == 1
    await forward(upstream, target=b"/length")
    assert server.connections == 2  # the closed one was not reused
    caller, broke = await forward(upstream, target=b"/coded")
    assert (b"".join(caller.body_chunks), broke) == (b"not chunked, to the close", None)


async def test_the_body_is_streamed_chunk_by_chunk(serve: Any) -> None:
    first_forwarded = asyncio.Event()

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.wait_for(first_forwarded.wait(), 5)  # the gateway passed it on before the rest
        writer.write(b"4\r\nlast\r\n0\r\n\r\n")
        return True

    class Watching(Caller):
        async def send(self, message: dict[str, Any]) -> None:
            await super().send(message)
            if message.get("body") == b"first":
                first_forwarded.set()

    server = await serve(reply)
    caller, broke = await forward(plain(server), caller=Watching())
    assert (caller.body_chunks, broke) == ([b"first", b"last"], None)


async def test_under_uvicorn_an_answer_that_came_whole_goes_back_in_one_write(serve: Any) -> None:
    """uvicorn's own ``send`` (the cycle's): an answer whose body came with its head is written at once
    (certbound.tls.whole_response), one that comes in parts is streamed; the bytes are uvicorn's."""
    whole = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    parts = [whole[:-3], whole[-3:]]

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        for part in [whole] if request.head.startswith(b"GET /whole") else parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(0.05)
        return True

    upstream = plain(await serve(reply))
    written = {}
    for target in (b"/whole", b"/parts"):
        cycle, transport, answered = make_cycle(method="GET")
        status, broke = await upstream.forward("GET", target, [], False, cycle.receive, cycle.send)
        assert (status, broke, answered) == (200, None, [1])
        written[target] = transport.writes
    assert written[b"/whole"] == [
        b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 23:57:33 GMT\r\ncontent-length: 5\r\n"
        b"content-type: text/plain\r\n\r\nhello"
    ]
    assert len(written[b"/parts"]) > 1
    assert b"".join(written[b"/parts"]) == written[b"/whole"][0]


async def test_an_upstreams_head_is_never_kept_in_memory(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its headers may carry the caller's data (a challenge naming the user, a cookie): the one write
    builds its head for that answer alone."""
    heads = whole_response._Heads()
    monkeypatch.setattr(whole_response, "_heads", heads)
    raw = (
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n"
        b'WWW-Authenticate: Bearer error_description="token of alice@example.com expired"\r\n\r\nno'
    )
    upstream = plain(await serve(answer(raw)))
    cycle, transport, _ = make_cycle(method="GET")
    assert await upstream.forward("GET", b"/x", [], False, cycle.receive, cycle.send) == (401, None)
    assert len(transport.writes) == 1
    assert b"alice@example.com" in transport.writes[0]
    assert heads._heads == {}


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (65 * 1024) + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"b" * 70000,
        b"nonsense\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=["head-too-large", "too-many-headers", "head-never-ends", "not-http", "length-and-chunked", "101"],
)
async def test_a_bad_or_oversized_answer_head_is_a_502(serve: Any, raw: bytes) -> None:
    server = await serve(answer(raw))
    error = await refused(forward(plain(server)))
    assert (error.status, error.reason) == (502, "upstream.unavailable")


async def test_a_large_head_within_the_limits_passes(serve: Any) -> None:
    fields = b"".join(b"X-%d: %b\r\n" % (i, b"v" * 600) for i in range(99))  # ~60 KiB, 100 fields
    server = await serve(answer(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n"))
    caller, _ = await forward(plain(server))
    assert caller.status == 200
    assert len(caller.headers) == 100


async def test_an_answer_that_breaks_off_is_reported_and_not_reused(serve: Any) -> None:
    server = await serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", keep=False))
    caller, broke = await forward(plain(server))
    assert caller.status == 200
    assert caller.body_chunks == [b"partial"]
    assert "broke off" in (broke or "")
    assert caller.sent[-1]["more_body"] is True  # never ended as if complete


# -- the pool ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        OK + b"HTTP/1.1 200 OK\r\n",  # bytes after the answer
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok",  # too short to reuse
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokXX",
    ],
    ids=["connection-close", "http-1.0", "extra-answer", "keep-alive-timeout-1", "extra-bytes"],
)
async def test_a_connection_is_reused_only_when_both_sides_keep_it_clean(serve: Any, raw: bytes) -> None:
    server = await serve(answer(raw))
    upstream = plain(server)
    for _ in range(2):
        caller, _ = await forward(upstream)
        assert (caller.status, caller.body_chunks) == (200, [b"ok"])
    assert server.connections == 2


async def test_bytes_arriving_on_an_idle_connection_spoil_it(serve: Any) -> None:
    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(OK)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")  # to nothing
        return True

    server = await serve(reply)
    upstream = plain(server)
    await forward(upstream)
    await asyncio.sleep(0.2)
    caller, _ = await forward(upstream)
    assert caller.status == 200  # not the 408
    assert server.connections == 2


async def test_the_idle_limit_and_keep_alive_timeout(serve: Any) -> None:
    server = await serve(answer(OK))
    url = f"http://127.0.0.1:{server.port}"
    pool = Pool("127.0.0.1", server.port, None, idle_s=0.2)
    upstream = Upstream(url, pool, connect_timeout=5, read_timeout=5)
    await forward(upstream)
    await forward(upstream)
    assert server.connections == 1
    await asyncio.sleep(0.3)  # past the idle limit: a new connection
    await forward(upstream)
    assert server.connections == 2

    honoured = await serve(answer(b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2\r\nContent-Length: 2\r\n\r\nok"))
    upstream = plain(honoured)
    await forward(upstream)
    await forward(upstream)
    assert honoured.connections == 1  # within timeout=2 (less a second)
    await asyncio.sleep(1.1)
    await forward(upstream)
    assert honoured.connections == 2


async def test_an_upstream_closing_an_idle_connection_is_noticed(serve: Any) -> None:
    server = await serve(answer(OK, keep=False))  # says nothing of closing, then closes
    upstream = plain(server)
    await forward(upstream)
    await asyncio.sleep(0.05)
    caller, _ = await forward(upstream)
    assert caller.status == 200
    assert (server.connections, len(server.requests)) == (2, 2)  # not sent on the closed one


def _dies_on_second_request() -> Reply:
    """Answers the first request of a connection, closes on the second without answering (as an
    upstream whose keep-alive timeout fired just as the request arrived)."""

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        if b"/first" in request.head:
            writer.write(OK)
            await writer.drain()
            return True
        if request.connection == 1:
            return False  # closes without a byte
        writer.write(OK)
        return True

    return reply


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])
async def test_a_stale_connection_is_retried_once_for_an_idempotent_request(serve: Any, method: str) -> None:
    server = await serve(_dies_on_second_request())
    upstream = plain(server)
    await forward(upstream, target=b"/first")
    caller, _ = await forward(upstream, method, b"/second")
    assert caller.status == 200
    assert [(r.connection, r.head.split(b" ")[1]) for r in server.requests] == [
        (1, b"/first"), (1, b"/second"), (2, b"/second")
    ]  # fmt: skip


@pytest.mark.parametrize(("method", "body"), [("POST", None), ("PATCH", None), ("PUT", [b"data"])])
async def test_a_request_that_must_not_be_sent_twice_is_not_retried(
    serve: Any, method: str, body: list[bytes] | None
) -> None:
    server = await serve(_dies_on_second_request())
    upstream = plain(server)
    await forward(upstream, target=b"/first")
    error = await refused(forward(upstream, method, b"/second", caller=Caller(body)))
    assert (error.status, error.reason) == (502, "upstream.unavailable")
    assert [r.head.split(b" ")[1] for r in server.requests] == [b"/first", b"/second"]


async def test_a_request_is_retried_only_once(serve: Any) -> None:
    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        if b"/first" in request.head:
            writer.write(OK)
            return True
        return False  # every later request: closed without an answer

    server = await serve(reply)
    upstream = plain(server)
    await forward(upstream, target=b"/first")
    error = await refused(forward(upstream, target=b"/again"))
    assert error.status == 502
    assert len(server.requests) == 3  # the first, the request, its one retry


async def test_connections_are_capped_and_a_request_waits_for_a_free_one(serve: Any) -> None:
    release = asyncio.Event()
    server = await serve(held_until(release, only=b"/hold"))
    pool = Pool("127.0.0.1", server.port, None, max_connections=1)
    upstream = plain(server, pool)
    held = asyncio.create_task(forward(upstream, target=b"/hold"))
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(forward(upstream, target=b"/next"))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    release.set()
    await held
    caller, _ = await waiting
    assert caller.status == 200
    assert server.connections == 1  # handed over, not a second connection
    assert pool.open_connections == 1

    release.clear()
    held = asyncio.create_task(forward(upstream, target=b"/hold"))
    await asyncio.sleep(0.1)
    impatient = Upstream(f"http://127.0.0.1:{server.port}", pool, connect_timeout=0.2, read_timeout=5)
    error = await refused(forward(impatient, target=b"/next"))
    assert (error.status, error.reason) == (504, "upstream.timeout")
    release.set()
    await held


async def test_the_idle_list_is_capped(serve: Any) -> None:
    release = asyncio.Event()
    server = await serve(held_until(release))
    pool = Pool("127.0.0.1", server.port, None, max_idle=1)
    upstream = plain(server, pool)
    calls = [asyncio.create_task(forward(upstream)) for _ in range(3)]
    await asyncio.sleep(0.1)
    assert pool.open_connections == 3
    release.set()
    await asyncio.gather(*calls)
    assert (pool.open_connections, pool.idle_connections) == (1, 1)


async def test_closing_the_pools_closes_every_connection(serve: Any) -> None:
    server = await serve(answer(OK))
    url = f"http://127.0.0.1:{server.port}"
    pools = UpstreamPools()
    upstream = Upstream(url, pools.pool(url, None), connect_timeout=5, read_timeout=5)
    await forward(upstream)
    await pools.aclose()
    await asyncio.sleep(0.1)
    assert server.closed_by_peer == 1


# -- timeouts, cancellation, the caller leaving ----------------------------------------------------


async def test_a_connect_that_does_not_finish_is_a_504(serve: Any) -> None:
    silent = await serve(lambda request, writer: asyncio.sleep(10, True))  # never completes TLS
    url = f"https://127.0.0.1:{silent.port}"
    upstream = Upstream(url, UpstreamPools().pool(url, None), connect_timeout=0.3, read_timeout=5)
    error = await refused(forward(upstream))
    assert (error.status, error.reason, error.detail) == (504, "upstream.timeout", "connect")


async def test_an_upstream_that_stops_reading_the_body_is_a_504(serve: Any) -> None:
    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server = await asyncio.start_server(never_read, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    upstream = Upstream(url, UpstreamPools().pool(url, None), connect_timeout=5, read_timeout=0.3)
    body = [b"x" * (1024 * 1024)] * 256
    try:
        error = await refused(forward(upstream, "POST", caller=Caller(body)))
    finally:
        server.close()
    assert (error.status, error.reason, error.detail) == (504, "upstream.timeout", "write")


async def test_an_answer_head_dripped_past_the_read_timeout_is_a_504(serve: Any) -> None:
    """Each byte arrives well within the read timeout, the head as a whole does not: without a
    deadline for the whole head an upstream could hold a request for 64 KiB x the timeout."""

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 200:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.02)
        return False

    server = await serve(reply)
    error = await refused(forward(plain(server, timeout=0.5)))
    assert (error.status, error.reason, error.detail) == (504, "upstream.timeout", "read")


def stalled_midway(*, keep: bool) -> Reply:
    """A 200 that promises 10 bytes, sends 4 and then nothing for 5 s."""

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await asyncio.sleep(5)
        return keep

    return reply


async def test_an_answer_that_stalls_midway_breaks_off(serve: Any) -> None:
    server = await serve(stalled_midway(keep=False))
    caller, broke = await forward(plain(server, timeout=0.3))
    assert caller.body_chunks == [b"half"]
    assert broke == "TimeoutError"


async def test_a_cancelled_request_closes_its_connection(serve: Any) -> None:
    server = await serve(stalled_midway(keep=True))
    pool = Pool("127.0.0.1", server.port, None)
    task = asyncio.create_task(forward(plain(server, pool)))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (pool.open_connections, pool.idle_connections) == (0, 0)


async def test_a_caller_leaving_during_its_upload(serve: Any) -> None:
    server = await serve(answer(OK))
    pool = Pool("127.0.0.1", server.port, None)
    with pytest.raises(ClientGone):
        await forward(plain(server, pool), "POST", caller=Caller([b"x"], disconnect=True))
    assert pool.open_connections == 0


# -- TLS upstreams -------------------------------------------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    other_ca_file: Path
    context: ssl.SSLContext  # the upstream's, for localhost / 127.0.0.1
    wrong_name: ssl.SSLContext  # a certificate for another name, from the same CA
    server_names: list[str | None]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("upstream-pki")
    ca, ca_key = create_ca("CN=upstream test CA")
    other, _ = create_ca("CN=another CA")
    (directory / "ca.pem").write_bytes(cert_to_pem(ca))
    (directory / "other.pem").write_bytes(cert_to_pem(other))
    names: list[str | None] = []

    def context(name: str, hosts: tuple[str, ...]) -> ssl.SSLContext:
        cert, key = issue_server_cert(ca, ca_key, hosts=hosts)
        (directory / f"{name}.crt").write_bytes(cert_to_pem(cert))
        (directory / f"{name}.key").write_bytes(key_to_pem(key))
        made = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        made.load_cert_chain(directory / f"{name}.crt", directory / f"{name}.key")
        made.sni_callback = lambda sock, server_name, ctx: names.append(server_name)  # type: ignore[assignment, misc]
        return made

    return Pki(
        directory / "ca.pem",
        directory / "other.pem",
        context("upstream", ("localhost", "127.0.0.1")),
        context("elsewhere", ("elsewhere.example",)),
        names,
    )


async def test_an_https_upstream_verified_against_the_routes_ca_with_sni(serve: Any, pki: Pki) -> None:
    server = await serve(answer(OK), pki.context)
    url = f"https://localhost:{server.port}/api"
    pools = UpstreamPools()
    upstream = Upstream(url, pools.pool(url, pki.ca_file), connect_timeout=5, read_timeout=5)
    for _ in range(2):
        caller, _ = await forward(upstream, headers=[(b"x-a", b"1")])
        assert (caller.status, caller.body_chunks) == (200, [b"ok"])
    assert server.connections == 1  # kept over TLS too
    assert pki.server_names[-1] == "localhost"
    assert server.requests[0].head.startswith(b"GET /api/x HTTP/1.1\r\nhost: localhost:%d\r\n" % server.port)
    await pools.aclose()


@pytest.mark.parametrize("trust", ["other-ca", "system", "wrong-name"])
async def test_an_https_upstream_that_is_not_trusted_is_a_502(serve: Any, pki: Pki, trust: str) -> None:
    server = await serve(answer(OK), pki.wrong_name if trust == "wrong-name" else pki.context)
    url = f"https://localhost:{server.port}"
    bundle = {"other-ca": pki.other_ca_file, "system": None, "wrong-name": pki.ca_file}[trust]
    upstream = Upstream(url, UpstreamPools().pool(url, bundle), connect_timeout=5, read_timeout=5)
    error = await refused(forward(upstream))
    assert (error.status, error.reason) == (502, "upstream.unavailable")
    assert "CERTIFICATE_VERIFY_FAILED" in error.detail
    assert server.requests == []


# -- desync and exhaustion (adversarial review) --------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "headers"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nok" + OK, 401, [(b"content-length", b"2")]),
        (b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n" + OK, 204, [(b"x-a", b"1")]),
        (OK + b"HTTP/1.1 100 Continue\r\n\r\n", 200, [(b"content-length", b"2")]),
    ],
    ids=["401-then-200", "204-then-200", "200-then-100"],
)
async def test_bytes_after_an_answer_never_change_its_status_or_headers(
    serve: Any, raw: bytes, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    server = await serve(answer(raw))
    upstream = plain(server)
    caller, _ = await forward(upstream)
    assert (caller.status, caller.headers) == (status, headers)
    await forward(upstream)
    assert server.connections == 2  # and the connection was not kept


async def test_a_body_sent_late_to_head_never_reaches_the_next_caller(serve: Any) -> None:
    """An upstream that answers HEAD like GET (Python's ``do_HEAD = do_GET``), its body late: after
    the next request went out on the connection. That body must not be the next caller's answer."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.head.startswith(b"HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(smuggled))
        else:
            if request.connection == 1 and len(server.requests) == 2:  # the HEAD's body, late
                writer.write(smuggled)
            writer.write(OK)
        return True

    server = await serve(reply)
    upstream = plain(server)
    caller, _ = await forward(upstream, "HEAD")
    assert (caller.status, caller.body_chunks) == (200, [])
    caller, _ = await forward(upstream, "GET")
    assert (caller.status, caller.body_chunks) == (200, [b"ok"])
    assert server.connections == 2  # a HEAD's connection is not kept: its body may still come


async def test_an_endless_trailer_is_not_buffered(serve: Any) -> None:
    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: ")
        for _ in range(64):  # 4 MiB of one trailer field, then silence: never a complete field
            writer.write(b"t" * 65536)
            await writer.drain()
        await asyncio.sleep(10)
        return False

    server = await serve(reply)
    caller, broke = await forward(plain(server, timeout=3))
    assert caller.body_chunks == [b"ok"]
    assert "trailer" in (broke or "")  # refused as too large, not held until the read timeout


def _cut_after(raw: bytes, *, reset: bool) -> Reply:
    """Send `raw`, then end the connection without a clean close: a TCP reset, or (TLS) no close_notify."""

    async def reply(request: Request, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        await asyncio.sleep(0.05)
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    return reply


CLOSE_DELIMITED = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of the body"


async def test_a_body_read_to_the_close_that_is_reset_is_not_complete(serve: Any) -> None:
    server = await serve(_cut_after(CLOSE_DELIMITED, reset=True))
    caller, broke = await forward(plain(server))
    assert caller.body_chunks == [b"part of the body"]
    assert "cut" in (broke or "")
    assert caller.sent[-1]["more_body"] is True  # never ended as if complete


async def test_a_body_read_to_the_close_that_is_tls_truncated_is_not_complete(serve: Any, pki: Pki) -> None:
    if not isinstance(asyncio.get_running_loop(), uvloop.Loop):
        pytest.skip("asyncio's TLS transport reports a close without close_notify as a clean end")
    server = await serve(_cut_after(CLOSE_DELIMITED, reset=False), pki.context)
    url = f"https://localhost:{server.port}"
    upstream = Upstream(url, UpstreamPools().pool(url, pki.ca_file), connect_timeout=5, read_timeout=5)
    caller, broke = await forward(upstream)
    assert caller.body_chunks == [b"part of the body"]
    assert "cut" in (broke or "")
    assert caller.sent[-1]["more_body"] is True


async def test_an_answer_with_a_status_below_100_is_a_502(serve: Any) -> None:
    server = await serve(answer(b"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok"))
    error = await refused(forward(plain(server)))
    assert (error.status, error.reason) == (502, "upstream.unavailable")


async def test_a_kept_connection_does_not_ask_asyncio_for_the_loop_per_exchange(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``asyncio.get_running_loop()`` (and ``asyncio.timeout()``, which asks for it) is a ``getpid()``
    system call on CPython 3.11: the connection keeps its loop and reads against a deadline of its
    own (the read timeouts themselves: the 504 tests above). A spy: the real function answers."""
    calls = 0
    real = asyncio.events.get_running_loop

    def counting() -> asyncio.AbstractEventLoop:
        nonlocal calls
        calls += 1
        return real()

    server = await serve(answer(OK))
    upstream = plain(server)
    await forward(upstream)  # the connection is made (that may ask)
    monkeypatch.setattr(asyncio.events, "get_running_loop", counting)
    monkeypatch.setattr(asyncio, "get_running_loop", counting)
    for _ in range(20):
        caller, broke = await forward(upstream)
        assert (caller.status, caller.body_chunks, broke) == (200, [b"ok"], None)
    assert server.connections == 1
    assert calls == 0


async def test_an_exchange_leaves_no_reference_cycle(serve: Any) -> None:
    """The answer and its parser refer to each other: released after each exchange, so that nothing
    waits for the garbage collector (which then cost ~5% of the gateway's CPU), whatever the ending."""
    import gc

    from certbound.gateway.upstream_http import Answer

    def answers_alive() -> int:
        return sum(isinstance(o, Answer) for o in gc.get_objects())

    good = await serve(answer(OK))
    broken = await serve(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", keep=False))
    bad = await serve(answer(b"NOT HTTP\r\n\r\n"))
    gc.collect()
    gc.disable()
    try:
        before = answers_alive()
        for _ in range(10):
            caller, broke = await forward(plain(good))
            assert (caller.status, broke) == (200, None)
        assert answers_alive() == before, "answered"
        for _ in range(10):
            caller, broke = await forward(plain(broken))
            assert broke is not None
        assert answers_alive() == before, "broke off"
        statuses = []
        for _ in range(10):
            try:  # not pytest.raises: its ExceptionInfo and the frames form a cycle of their own
                await forward(plain(bad))
            except GatewayError as error:
                statuses.append(error.status)
        assert statuses == [502] * 10
        assert answers_alive() == before, "refused"
    finally:
        gc.enable()
