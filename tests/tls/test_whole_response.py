"""`certbound.tls.whole_response.respond`: an answer in one write, the same bytes as uvicorn's two ASGI
messages, and uvicorn's own handling of everything else. Each case runs once through uvicorn's ``send``
and once through `respond` on a fresh uvicorn ``RequestResponseCycle`` whose transport records what is
written; then over real TLS through certbound's listener."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from certbound.tls import whole_response
from certbound.tls.server_context import ServerContextFactory
from certbound.tls.whole_response import respond
from tests.faults.rawhttp import RawConnection, request
from tests.tls.uvicorn_cycle import DATE, make_cycle

from .conftest import TestPKI, serve

JSON = [(b"content-type", b"application/json"), (b"content-length", b"15"), (b"cache-control", b"no-store")]
BODY = b'{"active":true}'


@dataclass
class Outcome:
    written: bytes
    writes: int
    closed: bool
    complete: bool
    on_response: int
    error: str | None


async def outcome(
    through: str, status: int, headers: Sequence[Any], body: bytes, **options: Any
) -> Outcome:
    cycle, transport, calls = make_cycle(**options)
    error = None
    try:
        if through == "uvicorn":
            await cycle.send({"type": "http.response.start", "status": status, "headers": headers})
            await cycle.send({"type": "http.response.body", "body": body})
        else:
            await respond(cycle.send, status, headers, body, keep=True)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return Outcome(
        b"".join(transport.writes), len(transport.writes), transport.closed, cycle.response_complete,
        len(calls), error,
    )  # fmt: skip


CHALLENGE = [*JSON[:2], (b"www-authenticate", b'Bearer error="invalid_token"')]
OK = b"ok"
LENGTH_2 = (b"content-length", b"2")
CASES: list[tuple[str, int, list[Any], bytes, dict[str, Any]]] = [
    ("plain 200", 200, JSON, BODY, {}),
    ("401 with a challenge", 401, CHALLENGE, BODY, {}),
    ("names in upper case", 200, [(b"Content-Type", b"text/plain"), (b"Content-Length", b"2")], OK, {}),
    ("the connection not kept", 400, JSON, BODY, {"keep_alive": False}),
    ("more default headers", 200, JSON, BODY, {"defaults": (DATE, (b"server", b"certbound"))}),
    ("no default header", 200, JSON, BODY, {"defaults": ()}),
    ("an empty body", 200, [(b"content-length", b"0")], b"", {}),
    ("HEAD", 200, JSON, b"", {"method": "HEAD"}),
    ("HEAD given the body", 200, JSON, BODY, {"method": "HEAD"}),
    ("204", 204, [], b"", {}),
    ("304 with a length", 304, [(b"content-length", b"0")], b"", {}),
    ("no content-length: chunked", 200, [(b"content-type", b"text/plain")], OK, {}),
    ("transfer-encoding", 200, [(b"transfer-encoding", b"chunked")], OK, {}),
    ("connection: close asked", 200, [LENGTH_2, (b"connection", b"close")], OK, {}),
    ("content-length twice", 200, [LENGTH_2, LENGTH_2], OK, {}),
    ("content-length too small", 200, [(b"content-length", b"1")], OK, {}),
    ("content-length too large", 200, [(b"content-length", b"3")], OK, {}),
    ("content-length with a leading zero", 200, [(b"content-length", b"02")], OK, {}),
    ("a line break in a value", 200, [LENGTH_2, (b"x-a", b"1\r\nx-b: 2")], OK, {}),
    ("a space in a name", 200, [LENGTH_2, (b"x a", b"1")], OK, {}),
    ("a bad default header", 200, [LENGTH_2], OK, {"defaults": ((b"x-a", b"\n"),)}),
    ("a header as a list", 200, [[b"content-length", b"2"]], OK, {}),
    ("an unknown status", 299, [LENGTH_2], OK, {}),
    ("a 1xx status", 103, [LENGTH_2], OK, {}),
]


@pytest.mark.parametrize(
    ("status", "headers", "body", "options"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_the_same_as_uvicorns_two_messages(
    status: int, headers: list[Any], body: bytes, options: dict[str, Any]
) -> None:
    ours = await outcome("respond", status, headers, body, **options)
    theirs = await outcome("uvicorn", status, headers, body, **options)
    assert (ours.written, ours.closed, ours.complete, ours.on_response, ours.error) == (
        theirs.written, theirs.closed, theirs.complete, theirs.on_response, theirs.error,
    )  # fmt: skip


async def test_a_plain_answer_is_one_write_and_repeats_from_the_kept_head() -> None:
    for _ in range(3):
        ours = await outcome("respond", 200, JSON, BODY)
        assert ours.writes == 1
        assert ours.written.startswith(b"HTTP/1.1 200 OK\r\ndate: Mon, 07 Dec 2026 23:57:33 GMT\r\n")
        assert ours.written.endswith(b"\r\n\r\n" + BODY)
    theirs = await outcome("uvicorn", 200, JSON, BODY)
    assert theirs.writes == 2  # else the comparisons above prove nothing about one write


async def test_a_kept_head_is_never_another_answers() -> None:
    """The kept heads are told apart by the date (uvicorn's default header, new every second), by the
    connection being kept or not, by the body's length and by every header."""
    first = await outcome("respond", 200, JSON, BODY)
    later = await outcome("respond", 200, JSON, BODY, defaults=((b"date", b"Mon, 07 Dec 2026 23:57:34 GMT"),))
    assert b"23:57:34" in later.written
    assert b"23:57:33" not in later.written
    closing = await outcome("respond", 200, JSON, BODY, keep_alive=False)
    assert b"connection: close\r\n" in closing.written
    assert b"connection" not in first.written
    assert closing.closed
    assert not first.closed
    longer = [*JSON[:1], (b"content-length", b"16"), *JSON[2:]]
    written = (await outcome("respond", 200, longer, BODY + b" ")).written
    assert written.endswith(b"16\r\n" + JSON_TAIL + BODY + b" ")
    other = await outcome("respond", 401, JSON, BODY)
    assert other.written.startswith(b"HTTP/1.1 401 Unauthorized\r\n")


JSON_TAIL = b"cache-control: no-store\r\n\r\n"


async def test_when_the_client_does_not_read_uvicorn_waits_as_before() -> None:
    """Writes paused (the client is not reading): the answer goes to uvicorn's ``send``, which waits
    for the transport to drain before writing."""
    cycle, transport, _ = make_cycle()
    cycle.flow.pause_writing()
    answered = asyncio.ensure_future(respond(cycle.send, 200, JSON, BODY, keep=True))
    await asyncio.sleep(0.05)
    assert not answered.done()
    assert transport.writes == []
    cycle.flow.resume_writing()
    await asyncio.wait_for(answered, 5)
    assert len(transport.writes) == 2


async def test_a_disconnected_client_gets_nothing_as_before() -> None:
    cycle, transport, calls = make_cycle()
    cycle.disconnected = True
    await respond(cycle.send, 200, JSON, BODY, keep=True)
    assert (transport.writes, cycle.response_complete, calls) == ([], False, [])


async def test_a_send_that_is_not_uvicorns_own_gets_the_two_messages() -> None:
    """A middleware watching the messages is never bypassed."""
    cycle, transport, _ = make_cycle()
    seen: list[dict[str, Any]] = []

    async def wrapped(message: dict[str, Any]) -> None:
        seen.append(message)
        await cycle.send(message)  # type: ignore[arg-type]

    await respond(wrapped, 200, JSON, BODY, keep=True)
    assert [m["type"] for m in seen] == ["http.response.start", "http.response.body"]
    assert len(transport.writes) == 2

    class Cycle(RequestResponseCycle):
        async def send(self, message: Any) -> None:
            seen.append(message)
            await super().send(message)

    sub, _, _ = make_cycle()
    sub.__class__ = Cycle
    seen.clear()
    await respond(sub.send, 200, JSON, BODY, keep=True)
    assert len(seen) == 2


def test_the_uvicorn_code_respond_stands_for_is_still_the_same() -> None:
    """A tripwire: `respond` writes what uvicorn 0.55's ``RequestResponseCycle.send`` writes and sets
    what it sets; when that changes, compare certbound/tls/whole_response.py with it again."""
    source = inspect.getsource(RequestResponseCycle.send)
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == SEND_DIGEST, (
        "uvicorn's RequestResponseCycle.send changed: re-check certbound.tls.whole_response"
    )


SEND_DIGEST = "abdd8601b326a8da"


# -- over real TLS, through certbound's listener ---------------------------------------------------


def app_answering(answer: Callable[..., Any]) -> Any:
    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await receive()
        body = b"path=" + scope["path"].encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
        await answer(send, 200, headers, body)

    return app


async def two_messages(send: Any, status: int, headers: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def factory(pki: TestPKI) -> ServerContextFactory:
    return ServerContextFactory(cert_file=str(pki.server_cert), key_file=str(pki.server_key))


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_over_tls_the_answers_are_uvicorns_and_the_connection_is_kept_or_closed_as_asked(
    pki: TestPKI, factory: ServerContextFactory, loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    heads: list[int] = []
    original = whole_response._head

    def counted(*args: Any) -> bytes | None:
        heads.append(1)
        return original(*args)

    monkeypatch.setattr(whole_response, "_head", counted)
    monkeypatch.setattr(whole_response, "_heads", whole_response._Heads())  # none kept yet
    seen: dict[str, list[tuple[int, list[tuple[str, str]], bytes]]] = {}
    for name, answer in (("respond", partial(respond, keep=True)), ("uvicorn", two_messages)):
        with (
            serve(factory, app_answering(answer), loop) as port,
            RawConnection(f"https://127.0.0.1:{port}", pki.server_ca_file) as conn,
        ):
            seen[name] = got = []
            for path, asked in (("/a", []), ("/b", []), ("/a", []), ("/c", [("Connection", "close")])):
                assert conn.send(request("POST", path, conn.host, asked, b"x=1"))  # kept alive till /c
                response = conn.response()
                assert response is not None
                got.append((response.status, [h for h in response.headers if h[0] != "date"], response.body))
            assert response.header("connection") == "close"
            assert conn.closed_by_peer()
    assert seen["respond"] == seen["uvicorn"]
    assert [body for _, _, body in seen["respond"]] == [b"path=/a", b"path=/b", b"path=/a", b"path=/c"]
    assert heads  # the one write was taken (a head made at least once)


# -- the cycle's state, as uvicorn's send leaves it ----------------------------------------------


async def test_an_answer_already_begun_gets_uvicorns_error_and_nothing_more_is_written() -> None:
    """A second answer (an error layer answering after a relay began) must never be written into the
    first: uvicorn's ``send`` refuses it."""
    cycle, transport, _ = make_cycle()
    await cycle.send({"type": "http.response.start", "status": 200, "headers": JSON})
    with pytest.raises(RuntimeError, match=r"Expected ASGI message 'http\.response\.body'"):
        await respond(cycle.send, 502, JSON, BODY, keep=True)
    assert len(transport.writes) == 1
    assert not cycle.response_complete


@pytest.mark.parametrize("through", ["respond", "uvicorn"])
async def test_a_receive_waiting_for_the_body_learns_the_answer_is_complete(through: str) -> None:
    cycle, _, _ = make_cycle()
    cycle.more_body = True
    cycle.message_event.clear()
    waiting = asyncio.ensure_future(cycle.receive())
    await asyncio.sleep(0)
    assert not waiting.done()
    if through == "respond":
        await respond(cycle.send, 200, JSON, BODY, keep=True)
    else:
        await cycle.send({"type": "http.response.start", "status": 200, "headers": JSON})
        await cycle.send({"type": "http.response.body", "body": BODY})
    assert await asyncio.wait_for(waiting, 5) == {"type": "http.disconnect"}


async def test_no_100_continue_after_the_answer() -> None:
    """A client that asked for ``100 Continue`` and got the answer first never gets it afterwards."""
    cycle, transport, _ = make_cycle()
    cycle.waiting_for_100_continue = True
    await respond(cycle.send, 200, JSON, BODY, keep=True)
    await cycle.receive()
    assert len(transport.writes) == 1
    assert b"100 Continue" not in transport.writes[0]


async def test_a_connection_not_kept_is_closing_when_the_protocol_hears_of_the_answer() -> None:
    cycle, transport, _ = make_cycle(keep_alive=False)
    closing_then: list[bool] = []
    cycle.on_response = lambda: closing_then.append(transport.is_closing())
    await respond(cycle.send, 200, JSON, BODY, keep=True)
    assert closing_then == [True]  # as uvicorn: closed, then on_response (which then reads no more)


async def test_uvicorns_access_log_gets_its_line_through_its_send(caplog: pytest.LogCaptureFixture) -> None:
    scope = {"type": "http", "method": "POST", "http_version": "1.1", "path": "/token", "raw_path": b"/token",
             "query_string": b"",
             "client": ("192.0.2.7", 1234)}  # fmt: skip
    cycle, transport, _ = make_cycle(scope=scope)
    cycle.access_log, cycle.access_logger = True, logging.getLogger("test.access")
    with caplog.at_level(logging.INFO, logger="test.access"):
        await respond(cycle.send, 200, JSON, BODY, keep=True)
    assert len(transport.writes) == 2
    assert '"POST /token HTTP/1.1" 200' in caplog.text


async def test_only_short_heads_that_carry_no_secret_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Set-Cookie, a token handed back, an upstream's own headers, a long head: made again for each
    answer, never kept in memory; at most 512 heads kept."""
    heads = whole_response._Heads()
    monkeypatch.setattr(whole_response, "_heads", heads)
    await outcome("respond", 200, JSON, BODY)
    assert len(heads._heads) == 1
    cookie = [*JSON, (b"set-cookie", b"session=secret")]
    refresh = [*JSON, (b"x-refresh-token", b"secret")]
    long = [*JSON, (b"cache-control", b"x" * 1024)]
    for headers in (cookie, refresh, long):
        ours = await outcome("respond", 200, headers, BODY)
        assert ours.writes == 1  # still one write
        assert ours.written == (await outcome("uvicorn", 200, headers, BODY)).written
    assert len(heads._heads) == 1
    assert not any(b"secret" in head for head in heads._heads.values())
    for n in range(600):
        await outcome("respond", 200, [(b"content-length", b"2"), (b"vary", b"%d" % n)], OK)
        assert 1 <= len(heads._heads) <= 512


@pytest.mark.parametrize(("extra", "kept"), [(0, True), (1, False)])
async def test_a_head_of_1_kib_is_kept_and_a_longer_one_is_not(
    extra: int, kept: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    heads = whole_response._Heads()
    monkeypatch.setattr(whole_response, "_heads", heads)
    short = len((await outcome("uvicorn", 200, [*JSON, (b"vary", b"")], BODY)).written) - len(BODY)
    headers = [*JSON, (b"vary", b"x" * (1024 - short + extra))]
    ours = await outcome("respond", 200, headers, BODY)
    assert len(ours.written) - len(BODY) == 1024 + extra
    assert len(heads._heads) == (1 if kept else 0)


async def test_a_head_not_to_keep_is_written_the_same_and_never_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway relays an upstream's headers with ``keep=False``: they may carry the caller's data."""
    heads = whole_response._Heads()
    monkeypatch.setattr(whole_response, "_heads", heads)
    challenge = [*JSON[:2], (b"www-authenticate", b'Bearer error_description="alice@example.com"')]
    cycle, transport, _ = make_cycle()
    await respond(cycle.send, 401, challenge, BODY, keep=False)
    assert len(transport.writes) == 1
    assert transport.writes[0] == (await outcome("uvicorn", 401, challenge, BODY)).written
    assert heads._heads == {}
