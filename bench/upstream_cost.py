"""In-process CPU of one exchange with the upstream: `Upstream.forward` against the gateway bench's nginx.

``python -m bench.upstream_cost`` starts the upstream of ``bench.gateway_run`` (nginx, one worker,
plain HTTP on 127.0.0.1, a 36-byte JSON answer) and forwards a GET with the headers a gateway request
sends (identity, ``X-Forwarded-*``, ``Authorization``) through the product's `Upstream` on uvloop,
one request in flight and then 16, as the gateway's throughput runs have them. Prints µs of this
process's CPU per exchange (nginx's own CPU is not counted): what forwarding costs a gateway request.
Exits non-zero when an answer is not the upstream's.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import uvloop

from bench.cpu import cpu_per_call
from bench.gateway_stack import UPSTREAM_BODY, start_upstream
from certbound.gateway.upstream import Upstream, UpstreamPools

HEADERS = [
    (b"accept", b"*/*"),
    (b"user-agent", b"bench"),
    (b"authorization", b"Bearer " + b"x" * 600),
    (b"x-forwarded-for", b"127.0.0.1"),
    (b"x-forwarded-proto", b"https"),
    (b"x-forwarded-host", b"127.0.0.1:9443"),
    (b"x-client-id", b"bench-client"),
    (b"x-subject", b"bench-client"),
    (b"x-scope", b"api:read"),
]


async def _measure(port: int, calls: int) -> tuple[float, float]:
    url = f"http://127.0.0.1:{port}"
    pools = UpstreamPools()
    upstream = Upstream(url, pools.pool(url, None), connect_timeout=5, read_timeout=60)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one() -> None:
        body: list[bytes] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.body":
                body.append(message["body"])

        status, broke = await upstream.forward("GET", b"/jwt/item", list(HEADERS), False, receive, send)
        if status != 200 or broke is not None or b"".join(body) != UPSTREAM_BODY:
            raise SystemExit(f"unexpected answer: {status} {broke} {b''.join(body)!r}")

    async def sixteen() -> None:
        await asyncio.gather(*(one() for _ in range(16)))

    single = await cpu_per_call(one, calls, batch=200, warmup=500)
    many = await cpu_per_call(sixteen, calls // 16, batch=20, warmup=30) / 16
    await pools.aclose()
    return single, many


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20000, help="exchanges per measurement")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="certbound-upstream-cost-") as work:
        nginx = start_upstream(Path(work), pin=None)
        try:
            time.sleep(0.2)
            single, many = uvloop.run(_measure(nginx.port, args.calls))
        finally:
            nginx.stop()
    print(f"upstream exchange, 1 in flight     {single:7.1f} µs CPU per request")
    print(f"upstream exchange, 16 in flight    {many:7.1f} µs CPU per request")


if __name__ == "__main__":
    main()
