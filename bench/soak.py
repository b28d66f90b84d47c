"""Soak: two certbound nodes on one PostgreSQL database under mixed load for a long time.

    python -m bench.soak --minutes 30 [--workers 1] [--database-url postgresql://...] [--json out.json]

Starts two nodes (`bench.nodes`, `serve --dev` on a throwaway database of the server on :5432 unless
`--database-url` is given), registers clients, measures the peak (`--peak-seconds` of closed-loop
load at `--concurrency`), then drives both nodes round robin at `--load` (default 0.8) of that peak
for `--minutes`, with at most `--concurrency` requests in flight (an operation due when that many
are still running is counted as shed: the nodes, or the machine, could not keep up), with the mix
of `bench.traffic.MIX` (token, introspection, revocation, registration). Every `--window` seconds
it prints the operations per second, errors and p99 latency of the window, and the resident memory
of every node process. At the end: the errors by kind, the RSS
growth per process (last window's against the first's, so start-up allocations do not count), and
`verify()`, asking both nodes about every acknowledged write. The exit status is 1 when there were
errors or a verification problem.

The load generator runs on the same machine as the nodes and the database and takes its own share
of the CPU: the peak is this setup's, not the server's alone (docs/operations.md, "Soak").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.nodes import Node, rss_bytes, start_node
from bench.traffic import Traffic

__all__ = ["main", "soak"]


def _p99(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _processes(nodes: list[Node]) -> dict[str, int]:
    out: dict[str, int] = {}
    for node in nodes:
        out[f"{node.name} parent"] = node.proc.pid
        if node.workers > 1:
            for i, pid in enumerate(node.worker_pids()):
                out[f"{node.name} worker{i + 1}"] = pid
    return out


async def soak(nodes: list[Node], args: argparse.Namespace) -> dict[str, Any]:
    token = (nodes[0].data_dir / "registration-token").read_text().strip()
    urls = [n.url for n in nodes]
    report: dict[str, Any] = {"nodes": len(nodes), "workers_per_node": args.workers, "windows": []}
    async with Traffic(urls, nodes[0].pki / "ca.crt", token) as traffic:
        await traffic.prepare(args.clients)
        peak = await traffic.closed_loop(args.peak_seconds, args.concurrency)
        rate = peak * args.load
        report |= {"peak_ops_per_s": round(peak, 1), "rate_ops_per_s": round(rate, 1)}
        print(f"peak {peak:.1f} ops/s at concurrency {args.concurrency}; soaking at {rate:.1f} ops/s "
              f"for {args.minutes} min", flush=True)  # fmt: skip
        procs = _processes(nodes)
        first_rss: dict[str, int | None] = {}
        last_rss: dict[str, int | None] = {}
        end = time.monotonic() + args.minutes * 60
        shed_total = 0
        while time.monotonic() < end:
            seconds = min(args.window, end - time.monotonic())
            if seconds < 1:
                break
            mark = len(traffic.samples)
            shed_total += await traffic.open_loop(seconds, rate, max_inflight=args.concurrency)
            window = traffic.samples[mark:]
            rss = {name: rss_bytes(pid) for name, pid in procs.items()}
            if not first_rss:
                first_rss = rss
            last_rss = rss
            errors = sum(1 for s in window if not s.ok)
            p99 = _p99([s.latency for s in window]) * 1000
            rss_mb = {k: round(v / 2**20, 1) for k, v in rss.items() if v}
            at = round(window[-1].at if window else 0, 1)
            entry = {
                "at_s": at,
                "ops": len(window),
                "errors": errors,
                "p99_ms": round(p99, 1),
                "rss_mb": rss_mb,
            }
            report["windows"].append(entry)
            rss_text = " ".join(f"{k}={v / 2**20:.0f}MB" for k, v in rss.items() if v)
            print(f"t={at:>7.0f}s ops/s={len(window) / seconds:>6.1f} errors={errors:>3} "
                  f"p99={p99:7.1f}ms {rss_text}", flush=True)  # fmt: skip
        verdict = await traffic.verify(urls)
    growth = {
        name: round(((last_rss.get(name) or 0) - (first_rss.get(name) or 0)) / 2**20, 1) for name in procs
    }
    all_latencies = [s.latency for s in traffic.samples]
    report |= {
        "operations": len(traffic.samples),
        "shed": shed_total,
        "errors": dict(traffic.errors()),
        "p99_ms_overall": round(_p99(all_latencies) * 1000, 1),
        "median_ms_overall": round(statistics.median(all_latencies) * 1000, 1) if all_latencies else None,
        "rss_growth_mb": growth,
        "acknowledged": {
            "tokens": len(traffic.tokens),
            "revocations": len(traffic.revoked),
            "registrations": len(traffic.registered),
        },
        "verify_problems": verdict.problems[:20],
    }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--workers", type=int, default=1, help="workers per node")
    parser.add_argument("--database-url", help="an empty database (default: a throwaway one on :5432)")
    parser.add_argument("--load", type=float, default=0.8, help="share of the measured peak")
    parser.add_argument("--peak-seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--window", type=float, default=60, help="seconds per reported window")
    parser.add_argument("--json", type=Path, help="write the report here too")
    args = parser.parse_args(argv)
    from tests.pg_helpers import create_database, drop_database

    url = args.database_url or create_database("certbound_soak")
    base = Path(tempfile.mkdtemp(prefix="certbound-soak-"))
    nodes: list[Node] = []
    try:
        for name in ("node1", "node2"):
            nodes.append(start_node(name, base / "data", url, "https://lb.example", workers=args.workers))
        report = asyncio.run(soak(nodes, args))
        for node in nodes:
            report.setdefault("node_alive_at_end", {})[node.name] = node.alive()
    finally:
        for node in nodes:
            node.stop()
        if not args.database_url:
            drop_database(url)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    failed = report["errors"] or report["verify_problems"] or not all(report["node_alive_at_end"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
