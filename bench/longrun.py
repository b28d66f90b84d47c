"""The long run: one pinned certbound worker, N requests in ten chunks, RSS sampled after each.

The chunks cycle through the keep-alive scenarios (tls_client_auth, client_secret_basic,
self_signed_tls_client_auth, introspection), so the client, verdict and verified-token caches all
see traffic. The issue's bar: no growth beyond 10% between the first 100k and the first 1M requests.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

from bench.loadgen import Target, run_workload
from bench.material import Material
from bench.scenarios import BY_NAME, build_workload, prepare_pools
from bench.servers import start_certbound

__all__ = ["long_run"]

CYCLE = ("cc-tls", "cc-basic", "cc-self-signed", "introspect")


def _worker_rss(rss: dict[int, int]) -> int:
    return max(rss.values()) if rss else 0


async def long_run(material: Material, work: Path, args: argparse.Namespace) -> tuple[str, list[Any], int]:
    """(markdown, samples, errors) of `args.long_requests` requests against one worker."""
    server = start_certbound(material, work / "long", pin=None if args.no_pin else args.server_cpu)
    samples: list[dict[str, Any]] = []
    errors = done = 0
    chunk = max(1, args.long_requests // 10)
    try:
        target = Target("127.0.0.1", server.port, server.cpu_seconds)
        pools = await prepare_pools("certbound", target, material, assertions=0, revocable=0)
        samples.append({"requests": 0, "rss_bytes": _worker_rss(server.rss_bytes())})
        for name in itertools.islice(itertools.cycle(CYCLE), 10):
            workload = build_workload(BY_NAME[name], "certbound", target, material, pools, args.connections)
            workload.requests = itertools.islice(workload.requests, chunk)
            result = await run_workload(target, workload, duration=1e6, warmup=0)
            done += result.requests
            errors += result.errors
            rss = _worker_rss(server.rss_bytes())
            samples.append({"requests": done, "rss_bytes": rss, "scenario": name, "rps": result.rps})
            print(f"  long run: {done:>9,} requests  RSS {rss / 2**20:6.1f} MiB  "
                  f"({name}, {result.rps:,.0f} req/s, errors {result.errors})", flush=True)  # fmt: skip
    finally:
        server.stop()
    first, last = samples[1]["rss_bytes"], samples[-1]["rss_bytes"]
    growth = (last - first) / first if first else 0.0
    text = (
        f"Long run: {done:,} requests on one pinned certbound worker; RSS "
        f"{samples[0]['rss_bytes'] / 2**20:.1f} MiB at start, {first / 2**20:.1f} MiB after "
        f"{samples[1]['requests']:,}, {last / 2**20:.1f} MiB after {done:,} "
        f"({growth:+.1%} from the first chunk to the end; bar: +10%); errors {errors}."
    )
    return text, samples, errors
