"""The gateway benchmark's figures: medians per server and scenario, the ratios the issue sets targets
for, and the markdown tables.

Two kinds of run feed a cell. Throughput runs (many keep-alive connections, closed loop) give req/s and
the server's CPU seconds, hence req/s per core: requests over the CPU time of all the server's
processes, which does not depend on whether the generator kept the core busy. Latency runs (one
connection, one request at a time) give the latency a request pays when the server is not queueing;
the *added* latency is that of the server less that of the upstream called directly in the same
mode, so it is what putting the server in front costs a request. The upstream is called twice:
over plain TCP (`UPSTREAM`, the issue's reference) and over TLS with a client certificate
(`UPSTREAM_TLS`), so that on a new connection per request the handshake, which every mutual-TLS
endpoint pays, is told from what the server in front adds. Under the closed loop of the
throughput runs, latency is mostly queueing (connections / throughput) and says little about the front.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from bench.loadgen import Result

__all__ = [
    "FRONTS",
    "P50_ADDED_MAX_MS",
    "RATIO_TARGETS",
    "REFERENCES",
    "UPSTREAM",
    "UPSTREAM_TLS",
    "Cell",
    "Verdict",
    "added",
    "cell",
    "checks_table",
    "markdown_table",
    "ratio_table",
    "verdicts",
]

#: The resource servers, in the order of the tables.
FRONTS: Final = ("certbound", "mod_oauth2", "mod_auth_openidc")
#: The upstream called directly: over plain TCP, and over TLS asking for a client certificate.
UPSTREAM: Final = "upstream"
UPSTREAM_TLS: Final = "upstream-tls"
REFERENCES: Final = (UPSTREAM, UPSTREAM_TLS)
#: Issue 17: certbound's req/s per core at least this multiple of each peer's.
RATIO_TARGETS: Final = {"mod_auth_openidc": 1.5, "mod_oauth2": 0.7}
#: Issue 17: certbound's added p50 latency under this.
P50_ADDED_MAX_MS: Final = 1.0


@dataclass(frozen=True)
class Cell:
    """One server on one scenario: medians over the runs (errors summed)."""

    rps: float
    rps_per_core: float | None
    server_cpu: float | None  # cores busy (CPU seconds per wall second), all its processes
    p50_ms: float  # under the throughput runs' load
    p99_ms: float
    p50_1c_ms: float | None  # one connection, one request at a time
    p99_1c_ms: float | None
    added_p50_ms: float | None = None  # p50_1c_ms less the upstream's, same scenario
    added_p99_ms: float | None = None
    added_tls_p50_ms: float | None = None  # the same, less the upstream's over TLS
    added_tls_p99_ms: float | None = None
    rss_mib: float | None = None  # resident memory of all its processes, after the scenario
    pss_mib: float | None = None  # the same, shared pages divided among the processes sharing them
    errors: int = 0
    gen_cpu: float = 0.0  # the highest of the runs
    idp_calls: int | None = None  # introspections it made at the IdP during the timed runs
    runs: int = 0
    note: str = ""


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _per_core(result: Result) -> float | None:
    if result.server_cpu is None or result.server_cpu <= 0:
        return None
    return result.rps / result.server_cpu


def cell(throughput: Sequence[Result], latency: Sequence[Result], **extra: Any) -> Cell:
    """The medians of a server's runs on a scenario (`throughput` must not be empty)."""
    if not throughput:
        raise ValueError("a cell needs at least one throughput run")
    return Cell(
        rps=statistics.median(r.rps for r in throughput),
        rps_per_core=_median([_per_core(r) for r in throughput]),
        server_cpu=_median([r.server_cpu for r in throughput]),
        p50_ms=statistics.median(r.p50_ms for r in throughput),
        p99_ms=statistics.median(r.p99_ms for r in throughput),
        p50_1c_ms=_median([r.p50_ms for r in latency]),
        p99_1c_ms=_median([r.p99_ms for r in latency]),
        errors=sum(r.errors for r in (*throughput, *latency)),
        gen_cpu=max(r.gen_cpu for r in throughput),
        runs=len(throughput),
        **extra,
    )


def added(front: Cell, upstream: Cell, upstream_tls: Cell | None = None) -> Cell:
    """`front` with its added latency over the upstream's (one-connection runs of both), and over
    the upstream's over TLS when it was measured."""

    def minus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    tls_p50 = tls_p99 = None
    if upstream_tls is not None:
        tls_p50 = minus(front.p50_1c_ms, upstream_tls.p50_1c_ms)
        tls_p99 = minus(front.p99_1c_ms, upstream_tls.p99_1c_ms)
    return Cell(
        **{
            **asdict(front),
            "added_p50_ms": minus(front.p50_1c_ms, upstream.p50_1c_ms),
            "added_p99_ms": minus(front.p99_1c_ms, upstream.p99_1c_ms),
            "added_tls_p50_ms": tls_p50,
            "added_tls_p99_ms": tls_p99,
        }
    )


@dataclass(frozen=True)
class Verdict:
    """One target of the issue on one scenario: what was measured against what was asked."""

    scenario: str
    what: str  # "per core vs mod_oauth2", "added p50"
    value: float | None
    target: float
    at_least: bool  # True: value >= target is met; False: value < target is met

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.target if self.at_least else self.value < self.target

    def describe(self) -> str:
        if self.met is None:
            return "not measured"
        return "met" if self.met else "NOT met"


def verdicts(scenario: str, cells: Mapping[str, Cell]) -> list[Verdict]:
    """certbound's per-core ratio to each peer, and its added p50, against the issue's targets."""
    out = []
    ours = cells.get("certbound")
    for peer, target in RATIO_TARGETS.items():
        theirs = cells.get(peer)
        ratio = None
        if ours and theirs and ours.rps_per_core and theirs.rps_per_core:
            ratio = ours.rps_per_core / theirs.rps_per_core
        out.append(Verdict(scenario, f"per core vs {peer}", ratio, target, at_least=True))
    out.append(
        Verdict(scenario, "added p50 ms", ours.added_p50_ms if ours else None, P50_ADDED_MAX_MS, False)
    )
    out.append(Verdict(scenario, "added p50 ms over the upstream over TLS",
                       ours.added_tls_p50_ms if ours else None, P50_ADDED_MAX_MS, False))  # fmt: skip
    return out


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def markdown_table(labels: Mapping[str, str], cells: Mapping[str, Mapping[str, Cell]]) -> str:
    """One line per scenario and server (the upstream first: the baseline of the added latency)."""
    lines = [
        "| scenario | server | req/s | req/s per core | server CPU | p50 / p99 ms loaded | "
        "p50 / p99 ms 1 conn | added p50 / p99 ms | added over TLS upstream | RSS / PSS MiB | IdP calls | "
        "gen CPU | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, by_server in cells.items():
        for server, c in by_server.items():
            name = server + (f" ({c.note})" if c.note else "")
            added_text = "-" if server in REFERENCES else (
                f"{_num(c.added_p50_ms, '{:.2f}')} / {_num(c.added_p99_ms, '{:.2f}')}"
            )  # fmt: skip
            added_tls = "-" if server in REFERENCES else (
                f"{_num(c.added_tls_p50_ms, '{:.2f}')} / {_num(c.added_tls_p99_ms, '{:.2f}')}"
            )  # fmt: skip
            lines.append(
                f"| {labels.get(scenario, scenario)} | {name} | {_num(c.rps)} | {_num(c.rps_per_core)} | "
                f"{_num(c.server_cpu, '{:.2f}')} | {c.p50_ms:.2f} / {c.p99_ms:.2f} | "
                f"{_num(c.p50_1c_ms, '{:.2f}')} / {_num(c.p99_1c_ms, '{:.2f}')} | {added_text} | "
                f"{added_tls} | "
                f"{_num(c.rss_mib, '{:.0f}')} / {_num(c.pss_mib, '{:.0f}')} | {_num(c.idp_calls, '{:d}')} | "
                f"{c.gen_cpu:.0%} | {c.errors} |"
            )
    return "\n".join(lines)


def ratio_table(labels: Mapping[str, str], all_verdicts: Sequence[Verdict]) -> str:
    """The targets of issue 17, one line per scenario: certbound's ratios and added p50, met or not."""
    lines = [
        "| scenario | certbound / mod_auth_openidc per core (>= 1.5x) | "
        "certbound / mod_oauth2 per core (>= 0.7x) | certbound added p50 (< 1 ms) | "
        "the same over the upstream over TLS (the handshake not counted) |",
        "| --- | --- | --- | --- | --- |",
    ]
    by_scenario: dict[str, list[Verdict]] = {}
    for v in all_verdicts:
        by_scenario.setdefault(v.scenario, []).append(v)
    for scenario, vs in by_scenario.items():
        cols = []
        for v in vs:
            fmt = "{:.2f}x" if v.at_least else "{:.2f} ms"
            cols.append(f"{_num(v.value, fmt)}: {v.describe()}")
        lines.append(f"| {labels.get(scenario, scenario)} | " + " | ".join(cols) + " |")
    return "\n".join(lines)


def checks_table(checks: Mapping[str, Mapping[str, Mapping[str, int | None]]]) -> str:
    """What each server answered to the probes (``checks[server][path][probe] = status``)."""
    probes: list[str] = []
    for by_path in checks.values():
        for answers in by_path.values():
            probes += [p for p in answers if p not in probes]
    lines = [
        "| server | path | " + " | ".join(probes) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in probes) + " |",
    ]
    for server, by_path in checks.items():
        for path, answers in by_path.items():
            statuses = [_num(answers.get(p), "{:d}") for p in probes]
            lines.append(f"| {server} | {path} | " + " | ".join(statuses) + " |")
    return "\n".join(lines)
