"""``python -m bench.run``: the same scenarios against certbound and oidc-provider, side by side.

Both servers run at once, pinned to the same core (``--server-cpu``, default 1) and idle while the
other is measured; the generator is pinned to another (``--generator-cpu``, default 0). For every
scenario the runs alternate between the servers (certbound first in even runs, the peer first in odd
ones), and the table gives the medians and the certbound/peer ratio. Then, unless ``--no-scaling``,
an unpinned run with 1 and 2 certbound workers; with ``--long-requests N``, a long run that samples
the certbound worker's resident memory. Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import uvloop

from bench.checks import check_equivalence
from bench.loadgen import Result, Target, run_workload
from bench.longrun import long_run
from bench.machine import CoreMeter, describe_machine
from bench.material import Material, make_material
from bench.report import as_json, markdown_table, median_row, scaling_table
from bench.scenarios import BY_NAME, INTROSPECTION, SCENARIOS, Pools, Scenario, build_workload, prepare_pools
from bench.servers import Server, start_certbound, start_peer
from bench.steady import Warmup, warm_to_steady

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs per server and scenario (default 3)")
    p.add_argument("--duration", type=float, default=10.0, help="timed seconds per run (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before each run (default 2)")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    p.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS))  # fmt: skip
    p.add_argument("--steady", action="store_true",
                   help="warm each server on each scenario until its rate stops rising (the last "
                        "three windows within 5%%), then at least three alternating timed runs")  # fmt: skip
    p.add_argument("--steady-window", type=float, default=4.0, metavar="SECONDS",
                   help="length of one warm-up window in --steady (default 4)")  # fmt: skip
    p.add_argument("--steady-max", type=float, default=180.0, metavar="SECONDS",
                   help="give up warming a server after this long and say so (default 180)")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="smoke round: 1 run of 0.5 s per scenario, small pools, no scaling run")  # fmt: skip
    p.add_argument("--no-peer", action="store_true", help="certbound only (no Node.js needed)")
    p.add_argument("--no-pin", action="store_true", help="do not pin servers and generator to cores")
    p.add_argument("--server-cpu", default="1", help="core(s) of the servers, for taskset -c (default 1)")
    p.add_argument("--generator-cpu", type=int, default=0, help="core of the generator (default 0)")
    p.add_argument("--no-scaling", action="store_true", help="skip the unpinned 1- and 2-worker run")
    p.add_argument("--long-requests", type=int, default=0,
                   help="also run N requests against one certbound worker, sampling its RSS")  # fmt: skip
    p.add_argument("--certbound-patch", default="", metavar="PATCH",
                   help="experiment: certbound with bench.experiments PATCH(es) applied")  # fmt: skip
    p.add_argument("--certbound-args", default="", metavar="ARGS",
                   help='experiment: more `certbound serve` arguments ("--log-level warning")')  # fmt: skip
    p.add_argument("--baseline", type=Path, default=None, metavar="CHECKOUT",
                   help="A/B: in the peer's place, certbound from another checkout (e.g. a git "
                        "worktree of an older commit), alternating; the ratio is then new/old")  # fmt: skip
    p.add_argument("--baseline-python", default=None, metavar="PYTHON",
                   help="A/B: in the peer's place, certbound on another interpreter (a venv's python "
                        "with certbound's dependencies), this checkout's code run alike (the same "
                        "--certbound-patch and --certbound-args) unless --baseline names other code; "
                        "the ratio is then this interpreter's/that one's")  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS, help=f"where results go (default {RESULTS})")
    args = p.parse_args(argv)
    if args.baseline is not None and not (args.baseline / "src" / "certbound").is_dir():
        p.error(f"--baseline {args.baseline}: no src/certbound there")
    if args.baseline_python is not None:
        found = shutil.which(args.baseline_python)  # a path, or a name on PATH
        if found is None:
            p.error(f"--baseline-python {args.baseline_python}: not an executable")
        args.baseline_python = Path(found)
    if args.quick:
        args.runs, args.duration, args.warmup, args.no_scaling = 1, 0.5, 0.2, True
    if args.steady:
        args.runs = max(args.runs, 3)
    unknown = [n for n in args.scenarios.split(",") if n not in BY_NAME]
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(unknown)}")
    return args


def pool_sizes(scenario: Scenario, seconds: float, quick: bool) -> tuple[int, int]:
    """(assertions, revocable tokens) a pooled run needs; a run may use its pool up before the timed
    window ends (marked * in the table, req/s is then over the shorter window)."""
    if scenario.name == "cc-private-key-jwt":
        return (1000 if quick else int(4000 * seconds)), 0
    if scenario.name == "revoke":
        return 0, (3000 if quick else 8000)
    return 0, 0


async def one_run(
    kind: str, server: Server, scenario: Scenario, material: Material, args: argparse.Namespace,
    introspected: dict[str, str], meter: CoreMeter,
) -> tuple[Result, float | None]:  # fmt: skip
    target = Target("127.0.0.1", server.port, server.cpu_seconds)
    flavour = _flavour(kind)
    assertions, revocable = pool_sizes(scenario, args.warmup + args.duration, args.quick)
    # an introspection scenario's token is minted at its first run (warm-up or timed) and kept for
    # the others: one token per server and scenario, well within its 600 s lifetime
    key = f"{kind} {scenario.name}"
    pools = Pools([], [], introspected.get(key, ""))
    if assertions or revocable or (scenario.name in INTROSPECTION and key not in introspected):
        pools = await prepare_pools(flavour, target, material, assertions=assertions, revocable=revocable,
                                    opaque=scenario.name == "introspect-opaque")  # fmt: skip
        if scenario.name in INTROSPECTION:
            introspected.setdefault(key, pools.introspected)
            pools.introspected = introspected[key]
    workload = build_workload(scenario, flavour, target, material, pools, args.connections)
    # a pooled run warms up briefly: its pool must last into the timed window at the peer's pace (an
    # in-memory peer revokes 1,000 tokens in 0.2 s on a fast machine, which once emptied a quick pool)
    warmup = min(args.warmup, 0.05 if args.quick else 0.5) if scenario.pooled else args.warmup
    meter.start()
    result = await run_workload(target, workload, duration=args.duration, warmup=warmup)
    return result, meter.others(result.server_cpu)


async def warm(
    kind: str, server: Server, scenario: Scenario, material: Material, args: argparse.Namespace,
    introspected: dict[str, str], meter: CoreMeter,
) -> Warmup:  # fmt: skip
    """Back-to-back untimed windows of the scenario's own workload until the server's rate is flat."""
    window = argparse.Namespace(**{**vars(args), "duration": args.steady_window, "warmup": 0.0})

    async def run_window() -> Result:
        result, _ = await one_run(kind, server, scenario, material, window, introspected, meter)
        return result

    warmup = Warmup(kind, scenario.name, args.steady_window)
    return await warm_to_steady(run_window, warmup, max_s=args.steady_max)


def _flavour(kind: str) -> str:
    """The workloads a server of `kind` gets: the baseline is a certbound."""
    return "peer" if kind == "peer" else "certbound"


def _progress(kind: str, scenario: str, run: int, r: Result, others: float | None) -> None:
    noise = f" others on core {others:.0%}" if others is not None else ""
    error = f" first error: {r.first_error}" if r.first_error else ""
    print(
        f"  {scenario:<20} run {run + 1} {kind:<9} {r.rps:>8,.0f} req/s  p50 {r.p50_ms:6.2f}  "
        f"p99 {r.p99_ms:7.2f} ms  server {r.server_us_per_request or 0:6.0f} µs/req  "
        f"gen {r.gen_cpu:4.0%}  errors {r.errors}{noise}{error}",
        flush=True,
    )


def _start_servers(
    args: argparse.Namespace, material: Material, work: Path, pin: str | None
) -> dict[str, Server]:
    """certbound and what it is compared with; if one cannot start, those already up are stopped."""
    servers: dict[str, Server] = {}
    try:
        servers["certbound"] = start_certbound(
            material, work / "certbound", pin=pin, patch=args.certbound_patch,
            extra_args=args.certbound_args.split(),
        )  # fmt: skip
        if args.baseline is not None or args.baseline_python is not None:
            same_code = args.baseline is None  # an A/B of interpreters alone: the same code, run alike
            servers["baseline"] = start_certbound(
                material, work / "baseline", pin=pin, source=args.baseline, python=args.baseline_python,
                patch=args.certbound_patch if same_code else "",
                extra_args=args.certbound_args.split() if same_code else (),
            )  # fmt: skip
        elif not args.no_peer:
            servers["peer"] = start_peer(material, work, pin=pin)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers


async def compare(
    args: argparse.Namespace, material: Material, work: Path
) -> tuple[list[Any], dict[str, Any]]:
    """The main matrix: every scenario, `runs` alternating runs per server, both pinned alike."""
    pin = None if args.no_pin else args.server_cpu
    servers = _start_servers(args, material, work, pin)
    meter = CoreMeter(None if args.no_pin else args.server_cpu)
    raw: dict[str, Any] = {"runs": [], "rss_bytes": {}, "servers": {k: s.name for k, s in servers.items()},
                           "warmups": []}  # fmt: skip
    rows = []
    introspected: dict[str, str] = {}
    try:
        for kind, server in servers.items():
            await check_equivalence(_flavour(kind), Target("127.0.0.1", server.port), material)
        raw["rss_bytes"]["start"] = servers["certbound"].rss_bytes()
        for name in args.scenarios.split(","):
            scenario = BY_NAME[name]
            results: dict[str, list[Result]] = {k: [] for k in servers}
            if args.steady:
                for kind, server in servers.items():
                    warmup = await warm(kind, server, scenario, material, args, introspected, meter)
                    raw["warmups"].append(warmup)
                    print(f"  warm-up {warmup.describe()}", flush=True)
            for run in range(args.runs):
                kinds = list(servers) if run % 2 == 0 else list(reversed(servers))
                for kind in kinds:
                    result, others = await one_run(
                        kind, servers[kind], scenario, material, args, introspected, meter
                    )
                    results[kind].append(result)
                    _progress(kind, name, run, result, others)
                    raw["runs"].append({"server": kind, "scenario": name, "run": run,
                                        "others_on_core": others, **asdict(result)})  # fmt: skip
            other = results.get("baseline", results.get("peer", []))
            rows.append(median_row(scenario, results["certbound"], other))
        raw["rss_bytes"]["end"] = servers["certbound"].rss_bytes()
    finally:
        for server in servers.values():
            server.stop()
    return rows, raw


async def scaling(args: argparse.Namespace, material: Material, work: Path) -> list[tuple[str, str, Result]]:
    """Unpinned (all cores, the generator included): certbound with 1 and 2 workers, and the peer."""
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    entries: list[tuple[str, str, Result]] = []
    labels = ["certbound --workers 1", "certbound --workers 2"]
    if not args.no_peer:
        labels.append("oidc-provider (1 process)")
    for label in labels:
        if label.startswith("certbound"):
            workers = int(label[-1])
            server = start_certbound(material, work / f"scale-w{workers}", workers=workers)
        else:
            server = start_peer(material, work)
        try:
            target = Target("127.0.0.1", server.port, server.cpu_seconds)
            kind = "peer" if label.startswith("oidc") else "certbound"
            pools = await prepare_pools(kind, target, material, assertions=0, revocable=0)
            for name in ("cc-tls", "introspect"):
                workload = build_workload(BY_NAME[name], kind, target, material, pools, args.connections)
                result = await run_workload(target, workload, duration=args.duration, warmup=args.warmup)
                _progress(label, name, 0, result, None)
                entries.append((label, name, result))
        finally:
            server.stop()
    return entries


def _write(out: Path, text: str, data: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(text + "\n")
    (out / "latest.json").write_text(json.dumps(data, indent=1, default=str) + "\n")


async def main_async(args: argparse.Namespace, command: str) -> int:
    work = Path(tempfile.mkdtemp(prefix="certbound-bench-"))
    material = make_material(work / "pki")
    started = time.time()
    print(f"# {command}\n{describe_machine()}\nwork directory: {work}", flush=True)
    rows, raw = await compare(args, material, work)
    sections = [f"`{command}`", "", describe_machine(), "", markdown_table(rows)]
    if "baseline" in raw["servers"]:
        sections.append(f"\nA/B: the peer columns are {raw['servers']['baseline']} (targets do not apply).")
    errors = sum((r.certbound.errors if r.certbound else 0) + (r.peer.errors if r.peer else 0) for r in rows)
    if any(side.exhausted for r in rows for side in (r.certbound, r.peer) if side is not None):
        sections.append("\n\\* the run used up its prepared pool before the timed window ended; "
                        "req/s is over the shorter window.")  # fmt: skip
    errors += sum(w.errors for w in raw["warmups"])
    if raw["warmups"]:
        sections += ["", "Warm-up to steady state (untimed, before the runs above):", ""]
        sections += [f"- {w.describe()}" for w in raw["warmups"]]
        raw["warmups"] = [{**asdict(w), "seconds": w.seconds} for w in raw["warmups"]]
    rss = raw["rss_bytes"]
    sections.append("\ncertbound RSS (MiB) at start / end of the matrix: "
                    + ", ".join(f"{rss['start'].get(p, 0) / 2**20:.0f} / {rss['end'].get(p, 0) / 2**20:.0f}"
                                for p in rss.get("start", {})))  # fmt: skip
    data: dict[str, Any] = {"command": command, "rows": as_json(rows), **raw}
    if not args.no_scaling:
        entries = await scaling(args, material, work)
        sections += ["", "Unpinned, generator sharing the cores:", "", scaling_table(entries)]
        data["scaling"] = [{"server": s, "scenario": n, **asdict(r)} for s, n, r in entries]
        errors += sum(r.errors for _, _, r in entries)
    if args.long_requests:
        text, samples, long_errors = await long_run(material, work, args)
        sections += ["", text]
        data["long_run"] = samples
        errors += long_errors
    sections.append(f"\ntotal errors: {errors}; wall time {time.time() - started:.0f} s")
    text = "\n".join(sections)
    _write(args.out, text, data)
    print("\n" + text, flush=True)
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_pin:
        os.sched_setaffinity(0, {args.generator_cpu})
    command = "python -m bench.run " + " ".join(sys.argv[1:] if argv is None else argv)
    return uvloop.run(main_async(args, command.strip()))


if __name__ == "__main__":
    sys.exit(main())
