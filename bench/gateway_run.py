"""``python -m bench.gateway_run``: certbound gateway beside Apache httpd (mod_oauth2, mod_auth_openidc)
as OAuth 2.0 resource servers in front of one upstream, with the same tokens (issue 17, item 4).

The three resource servers run at once, pinned to the same core (``--server-cpu``, default 1), idle
while another is measured; the generator, the upstream (nginx) and the IdP (``certbound serve``) share
another core (``--generator-cpu``, default 0). Before anything is timed, every server is probed with
the right certificate, another one, none, no token and an altered token, and the answers are checked
against what each server is configured to enforce (`EXPECTED`). Then, per scenario, runs alternate
between the upstream called directly and the three servers: throughput runs (``--connections``
keep-alive connections, or new connections) and latency runs (one connection). The report gives
req/s, req/s per core (CPU seconds of all the server's processes, from /proc), latency under load,
latency with one connection and its excess over the upstream's, memory, and the targets of the issue.
Exits 1 if any request failed or a server did not answer a probe as expected.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import uvloop

from bench.gateway_report import (
    FRONTS,
    REFERENCES,
    UPSTREAM,
    UPSTREAM_TLS,
    Cell,
    Verdict,
    added,
    cell,
    checks_table,
    markdown_table,
    ratio_table,
    verdicts,
)
from bench.gateway_stack import (
    INTROSPECTED_PATH,
    JWT_PATH,
    UPSTREAM_BODY,
    ApacheKind,
    Idp,
    Upstream,
    apache_missing,
    start_apache,
    start_gateway,
    start_idp,
    start_upstream,
)
from bench.http import Response, parse_closed_response
from bench.loadgen import Result, Target, Workload, run_workload
from bench.machine import CoreMeter, describe_machine
from bench.material import Material, make_material
from bench.servers import Server
from bench.steady import Warmup, warm_to_steady

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]

Family = Literal["jwt", "introspected"]


@dataclass(frozen=True)
class Scenario:
    """What one row of the table sends: a path (and so a token and a check) and a connection mode."""

    name: str
    label: str
    family: Family
    new_connection: bool = False

    @property
    def path(self) -> str:
        return JWT_PATH if self.family == "jwt" else INTROSPECTED_PATH


SCENARIOS: Final = (
    Scenario("jwt", "bound JWT, binding strict, keep-alive", "jwt"),
    Scenario("introspection", "cached introspection of an opaque bound token, keep-alive", "introspected"),
    Scenario("new-connection", "bound JWT, a new TLS connection per request", "jwt", new_connection=True),
)
BY_NAME: Final = {s.name: s for s in SCENARIOS}

#: What each server answers to each probe (None: not probed). mod_auth_openidc 2.4.12 reads the
#: certificate's thumbprint only from mod_token_binding's TB_SSL_CLIENT_CERT_FINGERPRINT, which stock
#: Apache never sets: it cannot enforce the binding, so a bound token passes with any certificate.
PROBES: Final = ("right cert", "other cert", "no cert", "no token", "altered token")
_ENFORCED: Final = {
    "right cert": 200,
    "other cert": 401,
    "no cert": 401,
    "no token": 401,
    "altered token": 401,
}
EXPECTED: Final = {
    "certbound": _ENFORCED,
    "mod_oauth2": _ENFORCED,
    "mod_auth_openidc": {**_ENFORCED, "other cert": 200, "no cert": 200},
}
#: What a cell's note says, where a server does not do the scenario as the others do.
NOTES: Final = {
    ("mod_oauth2", "introspection"): "client_secret_basic: cannot introspect over mTLS",
    ("mod_auth_openidc", "jwt"): "binding not checked",
    ("mod_auth_openidc", "introspection"): "binding not checked",
    ("mod_auth_openidc", "new-connection"): "binding not checked",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gateway_run", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="alternating runs per server and scenario (default 3)")
    p.add_argument("--duration", type=float, default=4.0, help="timed seconds per throughput run (default 4)")
    p.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each run (default 0.5)")
    p.add_argument("--latency-duration", type=float, default=1.5, metavar="SECONDS",
                   help="timed seconds per one-connection latency run (default 1.5)")  # fmt: skip
    p.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    p.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS),
                   help="comma-separated subset of: " + ", ".join(s.name for s in SCENARIOS))  # fmt: skip
    p.add_argument("--steady", action="store_true",
                   help="warm each server on each scenario until its rate stops rising (the last three "
                        "windows within 5%%) before the timed runs")  # fmt: skip
    p.add_argument("--steady-window", type=float, default=2.0, metavar="SECONDS",
                   help="length of one warm-up window in --steady (default 2)")  # fmt: skip
    p.add_argument("--steady-max", type=float, default=60.0, metavar="SECONDS",
                   help="give up warming a server after this long and say so (default 60)")  # fmt: skip
    p.add_argument("--quick", action="store_true",
                   help="smoke round: one 0.5 s run per server and scenario, 0.3 s latency runs")  # fmt: skip
    p.add_argument("--no-pin", action="store_true", help="do not pin servers and generator to cores")
    p.add_argument(
        "--server-cpu", default="1", help="core of the resource servers, for taskset -c (default 1)"
    )
    p.add_argument("--generator-cpu", type=int, default=0,
                   help="core of the generator, the upstream and the IdP (default 0)")  # fmt: skip
    p.add_argument("--gateway-patch", default="", metavar="PATCH",
                   help="experiment: the gateway with bench.experiments PATCH(es) applied")  # fmt: skip
    p.add_argument("--keep-work", action="store_true",
                   help="keep the temporary directory (configurations, logs) after the run")  # fmt: skip
    p.add_argument("--out", type=Path, default=RESULTS,
                   help=f"where gateway.json and gateway.md go (default {RESULTS})")  # fmt: skip
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.duration, args.warmup, args.latency_duration = 1, 0.5, 0.2, 0.3
        args.steady_window, args.steady_max = 0.3, 1.5
    unknown = [n for n in args.scenarios.split(",") if n not in BY_NAME]
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(unknown)}")
    return args


# -- requests and probes ---------------------------------------------------------------------------


def request_bytes(path: str, host: str, token: str | None, *, close: bool = False) -> bytes:
    """A GET of `path` with the bearer token (every server and the upstream get the same bytes)."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Accept: application/json"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def upstream_answer(response: Response) -> str | None:
    """None when the answer is the upstream's own (200 and its body), else what is wrong."""
    if response.status != 200:
        return f"status {response.status}: {response.body[:160]!r}"
    if response.body != UPSTREAM_BODY:
        return f"not the upstream's body: {response.body[:160]!r}"
    return None


Presented = Literal["right", "other", "none"]
Answers = dict[str, dict[str, int | None]]  # path -> probe -> status


def client_context(material: Material, *, cert: Presented = "right") -> ssl.SSLContext:
    """Verifies the servers' certificate; presents tls-dn's certificate (the tokens' binding), the
    self-signed one (another certificate), or none."""
    ctx = ssl.create_default_context(cafile=str(material.ca))
    if cert == "right":
        ctx.load_cert_chain(str(material.tls_cert), str(material.tls_key))
    elif cert == "other":
        ctx.load_cert_chain(str(material.self_signed_cert), str(material.self_signed_key))
    return ctx


def probe(port: int, request: bytes, ctx: ssl.SSLContext) -> int | None:
    """The status of one request on a fresh connection (None: no HTTP answer)."""
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(request)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
        return parse_closed_response(b"".join(chunks)).status
    except (OSError, ValueError, ssl.SSLError):
        return None


def altered(token: str) -> str:
    """The token with one character in the middle of its last part changed: a JWT whose signature
    does not verify, an opaque token the IdP never issued. (Not the last character: it may carry
    only padding bits, which lenient base64url decoders drop, leaving the same signature.)"""
    start = token.rfind(".") + 1
    i = start + (len(token) - start) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def probe_server(port_of: Callable[[Family], int], material: Material, idp: Idp) -> Answers:
    """The five probes on both paths of one server."""
    out: Answers = {}
    families: tuple[tuple[Family, str], ...] = (("jwt", JWT_PATH), ("introspected", INTROSPECTED_PATH))
    for family, path in families:
        port = port_of(family)
        host = f"127.0.0.1:{port}"
        token = idp.jwt if family == "jwt" else idp.opaque
        cases: dict[str, tuple[str | None, Presented]] = {
            "right cert": (token, "right"),
            "other cert": (token, "other"),
            "no cert": (token, "none"),
            "no token": (None, "right"),
            "altered token": (altered(token), "right"),
        }
        out[path] = {}
        for name, (sent, cert) in cases.items():
            request = request_bytes(path, host, sent, close=True)
            out[path][name] = probe(port, request, client_context(material, cert=cert))
    return out


def unexpected(checks: dict[str, Answers]) -> list[str]:
    """Every probe answered otherwise than `EXPECTED` says."""
    wrong = []
    for server, by_path in checks.items():
        for path, answers in by_path.items():
            for name, status in answers.items():
                if status != EXPECTED[server][name]:
                    wrong.append(f"{server} {path} {name}: {status}, expected {EXPECTED[server][name]}")
    return wrong


# -- the servers under test ------------------------------------------------------------------------


@dataclass
class Stack:
    """Everything running: the IdP, the upstream (plain HTTP, and over TLS as `UPSTREAM_TLS`) and the
    three resource servers."""

    material: Material
    idp: Idp
    upstream: Upstream
    fronts: dict[str, Server]

    def port(self, server: str, family: Family) -> int:
        if server == UPSTREAM:
            return self.upstream.port
        if server == UPSTREAM_TLS:
            assert self.upstream.tls_port is not None
            return self.upstream.tls_port
        front = self.fronts[server]
        ports = getattr(front, "ports", None)
        return ports[family] if ports else front.port

    def process(self, server: str) -> Server:
        return self.upstream if server in REFERENCES else self.fronts[server]

    def stop(self) -> None:
        for server in (*self.fronts.values(), self.upstream, self.idp.server):
            try:
                server.stop()
            except Exception as exc:  # stop the others whatever happens to one
                print(f"  stopping {server.name}: {type(exc).__name__}: {exc}", file=sys.stderr)


def start_stack(material: Material, work: Path, args: argparse.Namespace) -> Stack:
    side = None if args.no_pin else str(args.generator_cpu)
    pin = None if args.no_pin else args.server_cpu
    idp = start_idp(material, work, pin=side)
    started: list[Server] = [idp.server]
    try:
        upstream = start_upstream(work, pin=side, material=material)
        started.append(upstream)
        gateway = start_gateway(material, idp, upstream, work, pin=pin, patch=args.gateway_patch)
        fronts: dict[str, Server] = {"certbound": gateway}
        started.append(fronts["certbound"])
        apaches: tuple[ApacheKind, ...] = ("mod_oauth2", "mod_auth_openidc")
        for kind in apaches:
            fronts[kind] = start_apache(kind, material, idp, upstream, work, pin=pin)
            started.append(fronts[kind])
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return Stack(material, idp, upstream, fronts)


def memory(server: Server) -> tuple[float, float]:
    """(RSS, PSS) in MiB, summed over all the server's processes."""
    rss = sum(server.rss_bytes().values()) / 2**20
    pss_kib = 0
    for pid in server.pids():
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kib += int(line.split()[1])
                    break
        except OSError:
            continue
    return rss, pss_kib / 1024


# -- running ---------------------------------------------------------------------------------------


def workload(stack: Stack, server: str, scenario: Scenario, connections: int) -> tuple[Target, Workload]:
    port = stack.port(server, scenario.family)
    process = stack.process(server)
    target = Target("127.0.0.1", port, process.cpu_seconds)
    token = stack.idp.jwt if scenario.family == "jwt" else stack.idp.opaque
    request = request_bytes(scenario.path, f"127.0.0.1:{port}", token, close=scenario.new_connection)
    ctx = None if server == UPSTREAM else client_context(stack.material)
    return target, Workload(
        scenario.name, ctx, itertools.repeat(request), upstream_answer, scenario.new_connection, connections
    )


@dataclass
class Measured:
    """The runs of one server on one scenario."""

    throughput: list[Result]
    latency: list[Result]
    idp_calls: int = 0


def _progress(server: str, scenario: str, run: int, kind: str, r: Result) -> None:
    cpu = f"{r.server_cpu:.2f}" if r.server_cpu is not None else "-"
    per_core = f"{r.rps / r.server_cpu:8,.0f}" if r.server_cpu else "       -"
    error = f" first error: {r.first_error}" if r.first_error else ""
    print(
        f"  {scenario:<15} run {run + 1} {kind:<10} {server:<17} {r.rps:>8,.0f} req/s {per_core}/core "
        f"cpu {cpu}  p50 {r.p50_ms:6.2f}  p99 {r.p99_ms:7.2f} ms  gen {r.gen_cpu:4.0%}  "
        f"errors {r.errors}{error}",
        flush=True,
    )


async def measure_scenario(
    stack: Stack, scenario: Scenario, args: argparse.Namespace, meter: CoreMeter, raw: dict[str, Any]
) -> dict[str, Cell]:
    servers = [*REFERENCES, *FRONTS]
    measured = {s: Measured([], []) for s in servers}
    if args.steady:
        for server in servers:
            target, work = workload(stack, server, scenario, args.connections)

            async def window(target: Target = target, work: Workload = work) -> Result:
                return await run_workload(target, work, duration=args.steady_window, warmup=0.0)

            warm = await warm_to_steady(window, Warmup(server, scenario.name, args.steady_window),
                                        max_s=args.steady_max)  # fmt: skip
            raw["warmups"].append({**asdict(warm), "seconds": warm.seconds})
            print(f"  warm-up {warm.describe()}", flush=True)
    for run in range(args.runs):
        shift = run % len(servers)
        for server in servers[shift:] + servers[:shift]:
            before = stack.idp.introspections()
            target, work = workload(stack, server, scenario, args.connections)
            meter.start()
            result = await run_workload(target, work, duration=args.duration, warmup=args.warmup)
            others = meter.others(result.server_cpu) if server not in REFERENCES else None
            measured[server].throughput.append(result)
            _progress(server, scenario.name, run, "throughput", result)
            target, work = workload(stack, server, scenario, 1)
            lat = await run_workload(
                target, work, duration=args.latency_duration, warmup=min(0.1, args.warmup)
            )
            measured[server].latency.append(lat)
            _progress(server, scenario.name, run, "1 conn", lat)
            measured[server].idp_calls += stack.idp.introspections() - before
            for kind, r in (("throughput", result), ("latency", lat)):
                raw["runs"].append({"server": server, "scenario": scenario.name, "run": run, "kind": kind,
                                    "others_on_core": others if kind == "throughput" else None,
                                    **asdict(r)})  # fmt: skip
    cells: dict[str, Cell] = {}
    for server in servers:
        rss, pss = memory(stack.process(server))
        m = measured[server]
        note = NOTES.get((server, scenario.name), "")
        if server == "certbound" and args.gateway_patch:
            note = f"+{args.gateway_patch}: an experiment, not the product"
        cells[server] = cell(
            m.throughput, m.latency, rss_mib=rss, pss_mib=pss, idp_calls=m.idp_calls, note=note
        )
    for server in FRONTS:
        cells[server] = added(cells[server], cells[UPSTREAM], cells[UPSTREAM_TLS])
    return cells


def _git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=10, check=False)  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
    except OSError:
        return "unknown"
    return (
        done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
        if done.returncode == 0
        else "unknown"
    )


def versions() -> dict[str, str]:
    """The versions of the peers (Debian packages), for the report."""
    out = {}
    for package in (
        "apache2",
        "libapache2-mod-oauth2",
        "liboauth2-0",
        "libapache2-mod-auth-openidc",
        "nginx",
    ):
        try:
            done = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True,
                                  text=True, timeout=10, check=False)  # fmt: skip
        except OSError:
            continue
        if done.returncode == 0 and done.stdout:
            out[package] = done.stdout.strip()
    return out


async def main_async(args: argparse.Namespace, command: str) -> int:
    missing = apache_missing()
    if missing:
        print("Apache httpd or its OAuth modules are missing: " + ", ".join(missing), file=sys.stderr)
        print("apt-get install apache2 libapache2-mod-oauth2 libapache2-mod-auth-openidc", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="certbound-gwbench-"))
    material = make_material(work / "pki")
    started = time.time()
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"`{command}` ({date}, commit {_git_commit()})"
    print(f"# {header}\n{describe_machine()}\nwork directory: {work}", flush=True)
    stack = start_stack(material, work, args)
    raw: dict[str, Any] = {"runs": [], "warmups": []}
    cells: dict[str, dict[str, Cell]] = {}
    all_verdicts: list[Verdict] = []
    try:
        checks = {s: probe_server(functools.partial(stack.port, s), material, stack.idp) for s in FRONTS}
        wrong = unexpected(checks)
        meter = CoreMeter(None if args.no_pin else args.server_cpu)
        for name in args.scenarios.split(","):
            scenario = BY_NAME[name]
            cells[name] = await measure_scenario(stack, scenario, args, meter, raw)
            all_verdicts += verdicts(name, cells[name])
    finally:
        stack.stop()
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    labels = {s.name: s.label for s in SCENARIOS}
    errors = sum(c.errors for by_server in cells.values() for c in by_server.values())
    errors += sum(w["errors"] for w in raw["warmups"])
    sections = [
        header, "", describe_machine(), "",
        "versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), "",
        markdown_table(labels, cells), "", "Targets of issue 17 (certbound against the peers):", "",
        ratio_table(labels, all_verdicts), "",
        "What each server answered before the runs (200: passed to the upstream):", "", checks_table(checks),
    ]  # fmt: skip
    if raw["warmups"]:
        sections += ["", "Warm-up to steady state (untimed, before the runs):", ""]
        for w in raw["warmups"]:
            state = "steady" if w["steady"] else "NOT steady (cap reached)"
            sections.append(f"- {w['server']} {w['scenario']}: {w['seconds']:.0f} s, {state}")
    if wrong:
        sections += ["", "UNEXPECTED answers: " + "; ".join(wrong)]
    sections.append(f"\ntotal errors: {errors}; wall time {time.time() - started:.0f} s")
    text = "\n".join(sections)
    data = {
        "command": command,
        "date": date,
        "commit": _git_commit(),
        "machine": describe_machine(),
        "versions": versions(),
        "pinned": None if args.no_pin else {"servers": args.server_cpu, "generator": args.generator_cpu},
        "scenarios": {
            name: {"label": labels[name], "servers": {s: asdict(c) for s, c in by_server.items()},
                   "verdicts": [{**asdict(v), "met": v.met} for v in all_verdicts if v.scenario == name]}
            for name, by_server in cells.items()
        },
        "checks": checks,
        "unexpected": wrong,
        "errors": errors,
        **raw,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gateway.md").write_text(text + "\n")
    (args.out / "gateway.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
    print("\n" + text, flush=True)
    return 1 if errors or wrong else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.no_pin:
        os.sched_setaffinity(0, {args.generator_cpu})
    command = "python -m bench.gateway_run " + " ".join(sys.argv[1:] if argv is None else argv)
    return uvloop.run(main_async(args, command.strip()))


if __name__ == "__main__":
    sys.exit(main())
