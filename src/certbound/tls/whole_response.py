"""An answer whose body is all at hand, written in one go when uvicorn's own ``send`` is the sender.

An ASGI app answers with two messages at least, ``http.response.start`` and ``http.response.body``,
and uvicorn's ``send`` takes each in a coroutine call of its own: it checks every header with two
regular expressions, parses the ``content-length`` back, and writes twice. For the hot endpoints and
the gateway's relayed answers that is ~8 µs of a request's CPU (``python -m bench.protocol_cost``
on a host where the whole protocol layer takes 52). `respond` writes, at once, the bytes uvicorn's
two messages would: the status line, the default headers (``date``), the headers with their names in
lower case, ``connection: close`` when the connection is not kept, the body; then it completes the
response as uvicorn does. The heads are kept (`_Heads`): the answers of an endpoint repeat them;
only where the caller made the headers (``keep=True``: never an upstream's relayed answer), and only
short ones whose headers describe the answer (never a cookie or a token).

It does so only when `send` is uvicorn's ``RequestResponseCycle.send`` itself, as uvicorn hands it to
the app (with certbound's listener or without). A ``send`` wrapped by a middleware, another server's,
a test transport's, gets the two messages, so nothing that watches them is bypassed. So does
whatever the one write does not handle, and uvicorn then applies its own checks and errors: a response
already begun, a connection gone or whose writes are paused (``send`` waits for the client to read),
uvicorn's access log, ``HEAD``, a status that is not 2xx-5xx or has no body (204, 304), a
``content-length`` missing, repeated or not the body's length, ``transfer-encoding``,
``connection``, and a header name or value with a character HTTP forbids there.

It reads and sets the cycle's attributes as uvicorn 0.55's ``send`` does: tests/tls/test_whole_response.py
compares the bytes with uvicorn's, and holds a digest of that ``send`` to notice a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)

__all__ = ["respond"]

Header = tuple[bytes, bytes]

_NO_BODY: Final = frozenset({204, 304})
#: Header names after which the one write would not be what uvicorn writes.
_HANDLED_BY_SEND: Final = frozenset({b"transfer-encoding", b"connection"})
#: Heads kept at most: each status, body length and header set (the date among them) its own.
_MAX_HEADS: Final = 512
#: The longest head kept, in bytes (an endpoint's JSON answer has a head of 150-300).
_MAX_KEPT_HEAD: Final = 1024
#: The only headers a kept head may have besides uvicorn's defaults: they describe the answer and never
#: carry a secret (a Set-Cookie, a refresh token the gateway hands back, an upstream's own headers: a
#: head with any other is made again for each answer, never kept).
_KEPT_NAMES: Final = frozenset(
    {
        b"content-type",
        b"content-length",
        b"cache-control",
        b"pragma",
        b"expires",
        b"vary",
        b"www-authenticate",
        b"content-language",
        b"x-content-type-options",
    }
)
_UVICORN_SEND: Final = RequestResponseCycle.send


async def respond(
    send: Any, status: int, headers: Sequence[Header], body: bytes | memoryview, *, keep: bool
) -> None:
    """Answer with `status`, `headers` and `body` through `send`: as its two ASGI messages would.

    `keep`: whether the head may be kept for later answers. The caller says so, since only it knows
    where the headers come from: True for headers it made itself (an endpoint's, a refusal's), False
    for others' (an upstream's may carry the caller's data, and one kept per answer would wipe the
    rest). A kept head must also be short and describe the answer only (`_keepable`)."""
    cycle = _writable_at_once(send)
    head = None
    if cycle is not None:
        every = [*cycle.default_headers, *headers]
        if keep:
            head = _heads.head(status, every, len(body), cycle.keep_alive, len(cycle.default_headers))
        else:
            head = _head(status, every, len(body), cycle.keep_alive)
    if cycle is None or head is None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.transport.write(head + body)
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


def _writable_at_once(send: Any) -> RequestResponseCycle | None:
    """The cycle of `send` when it is uvicorn's own and in a state its ``send`` would write a fresh
    answer without waiting or logging; None otherwise (the two messages go through `send`)."""
    cycle = getattr(send, "__self__", None)
    if type(cycle) is not RequestResponseCycle or getattr(send, "__func__", None) is not _UVICORN_SEND:
        return None
    if (
        cycle.response_started
        or cycle.disconnected
        or cycle.flow.write_paused
        or cycle.access_log
        or cycle.scope["method"] == "HEAD"
    ):
        return None
    return cycle


class _Heads:
    """The heads written, by status, body length, whether the connection is kept, and headers (the
    default ones, the ``date`` of the second among them, first). At most `_MAX_HEADS`, all forgotten
    when full: a few a second per kind of answer."""

    __slots__ = ("_heads",)

    def __init__(self) -> None:
        self._heads: dict[tuple[Any, ...], bytes] = {}

    def head(
        self, status: int, every: list[Header], length: int, keep_alive: bool, defaults: int
    ) -> bytes | None:
        """`_head` of these, from the heads kept when it is there; kept when `_keepable` (`every`:
        uvicorn's `defaults` default headers, then the app's)."""
        key = (status, length, keep_alive, *every)
        try:
            head = self._heads.get(key)
        except (TypeError, ValueError):  # a header as a list, a writable memoryview: not keys
            return _head(status, every, length, keep_alive)
        if head is None:
            head = _head(status, every, length, keep_alive)
            if head is not None and _keepable(head, every[defaults:]):
                if len(self._heads) >= _MAX_HEADS:
                    self._heads.clear()
                self._heads[key] = head
        return head


def _keepable(head: bytes, headers: Sequence[Header]) -> bool:
    """Whether `head` may stay in memory for later answers: short, and no header that may be secret."""
    return len(head) <= _MAX_KEPT_HEAD and all(name.lower() in _KEPT_NAMES for name, _ in headers)


def _head(status: int, headers: list[Header], length: int, keep_alive: bool) -> bytes | None:
    """What uvicorn's ``send`` writes before a body of `length` bytes, for `headers` (its default
    headers first); None where the one write would differ from it."""
    if not 200 <= status < 600 or status in _NO_BODY:
        return None
    content = [STATUS_LINE[status]]
    content_length: bytes | None = None
    for name, value in headers:
        name = name.lower()
        if name == b"content-length":
            if content_length is not None:
                return None
            content_length = value
        elif name in _HANDLED_BY_SEND:
            return None
        content += (name, b": ", value, b"\r\n")
    if content_length != b"%d" % length:
        return None
    if HEADER_RE.search(b"".join(name for name, _ in headers)) or HEADER_VALUE_RE.search(
        b"".join(value for _, value in headers)
    ):
        return None
    if not keep_alive:
        content.append(b"connection: close\r\n")
    content.append(b"\r\n")
    return b"".join(content)


_heads = _Heads()
