"""In-process CPU per request of the HTTP layer alone: uvicorn's httptools protocol with certbound's
subclass (`HttpToolsTLSProtocol`: head limits, the connection's timer, the write-coalescing
transport), a trivial ASGI app answering 200.

``python -m bench.protocol_cost`` feeds one keep-alive connection an introspection-sized ``POST``
(600-byte form body) per request, as the transport would after TLS decryption, and lets the loop run
the request's task and the coalesced write: once with the answer sent as two ASGI messages, once in
one write (:mod:`certbound.tls.whole_response`, as the hot endpoints and the gateway answer). The
transport under it only counts the writes, so the figure is the protocol's Python (parsing
callbacks, the scope, the task, the response head, the timers), without TLS, system calls or
certbound's app. What an HTTP/1.1 protocol of our own could save at most (docs/performance.md, "What
is left"). Exits non-zero when a request went unanswered.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.server import ServerState

from bench.cpu import cpu_per_call
from certbound.tls.protocol import HttpToolsTLSProtocol
from certbound.tls.whole_response import respond

__all__ = ["main", "measure"]

BODY = b'{"active":true}'
REQUEST = (
    b"POST /introspect HTTP/1.1\r\nhost: 127.0.0.1:8443\r\n"
    b"content-type: application/x-www-form-urlencoded\r\ncontent-length: 600\r\naccept: */*\r\n\r\n"
    + b"t" * 600
)
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"cache-control", b"no-store"),
]


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def _app_whole(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await respond(send, 200, HEADERS, BODY, keep=True)


APPS = {"two ASGI messages": _app, "one write (respond)": _app_whole}


class _CountingTransport:
    """The transport under the protocol: counts the writes, closes nothing."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8443)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


async def measure(calls: int, answer: str = "two ASGI messages") -> float:
    """µs of CPU per request through the protocol on one keep-alive connection, the app answering
    with `answer` (a key of `APPS`)."""
    config = Config(  # as certbound.tls.serving configures uvicorn (no proxy-headers middleware)
        app=APPS[answer], http=HttpToolsTLSProtocol, log_config=None, access_log=False, lifespan="off",
        server_header=False, proxy_headers=False,
    )  # fmt: skip
    config.load()
    loop = asyncio.get_running_loop()
    protocol = HttpToolsTLSProtocol(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = _CountingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]

    async def one() -> None:
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs
        await asyncio.sleep(0)  # the coalesced write goes out

    per_request = await cpu_per_call(one, calls, batch=500, warmup=1000)
    answered = transport.writes
    protocol.connection_lost(None)
    if answered < calls:
        raise SystemExit(f"{calls - answered} requests unanswered")
    return per_request


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=30000, help="requests per measurement")
    args = p.parse_args()
    for answer in APPS:
        cost = uvloop.run(measure(args.calls, answer))
        print(f"HTTP protocol layer, trivial app, {answer:<19} {cost:7.1f} µs CPU per request")


if __name__ == "__main__":
    main()
