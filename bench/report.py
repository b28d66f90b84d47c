"""Medians over the runs, the certbound/peer ratio per scenario, and the markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.loadgen import Result
from bench.scenarios import Scenario

__all__ = ["Row", "markdown_table", "median_row", "scaling_table"]


@dataclass(frozen=True)
class Side:
    """The medians of one server on one scenario."""

    rps: float
    p50_ms: float
    p99_ms: float
    server_us: float | None
    server_cpu: float | None
    gen_cpu: float  # the highest of the runs: a saturated generator must not hide in a median
    errors: int  # summed over the runs
    exhausted: bool
    runs: int
    resumed: float  # share of handshakes that resumed a TLS session (new-connection rows)


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    certbound: Side | None
    peer: Side | None

    @property
    def ratio(self) -> float | None:
        if self.certbound is None or self.peer is None or self.peer.rps == 0:
            return None
        return self.certbound.rps / self.peer.rps

    @property
    def cpu_ratio(self) -> float | None:
        """Peer CPU per request over certbound's: efficiency, less sensitive to a busy machine."""
        cb, peer = self.certbound, self.peer
        if cb is None or peer is None or not cb.server_us or not peer.server_us:
            return None
        return peer.server_us / cb.server_us

    @property
    def verdict(self) -> str:
        target = self.scenario.ratio_target
        ratio = self.ratio
        if target is None or ratio is None or self.certbound is None or self.peer is None:
            return "-"
        ok = ratio >= target and self.certbound.p99_ms <= self.peer.p99_ms
        return "met" if ok else "NOT met"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def median_side(results: Sequence[Result]) -> Side | None:
    if not results:
        return None
    return Side(
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        server_us=_median([r.server_us_per_request for r in results]),
        server_cpu=_median([r.server_cpu for r in results]),
        gen_cpu=max(r.gen_cpu for r in results),
        errors=sum(r.errors for r in results),
        exhausted=any(r.exhausted for r in results),
        runs=len(results),
        resumed=sum(r.resumed for r in results) / max(1, sum(r.requests for r in results)),
    )


def median_row(scenario: Scenario, certbound: Sequence[Result], peer: Sequence[Result]) -> Row:
    return Row(scenario, median_side(certbound), median_side(peer))


def _num(value: float | None, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _lat(side: Side | None) -> str:
    return "-" if side is None else f"{side.p50_ms:.1f} / {side.p99_ms:.1f}"


def _rps(side: Side | None) -> str:
    if side is None:
        return "-"
    return _num(side.rps) + ("*" if side.exhausted else "")


def markdown_table(rows: Sequence[Row]) -> str:
    """One line per scenario: medians of both servers, the ratio and the target's verdict."""
    head = (
        "| scenario | certbound req/s | peer req/s | ratio | target | p50 / p99 ms certbound | "
        "p50 / p99 ms peer | server CPU µs/req certbound / peer | CPU ratio | gen CPU max | errors |\n"
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for row in rows:
        cb, peer = row.certbound, row.peer
        target = row.scenario.ratio_target
        target_text = f">= {target}x: {row.verdict}" if target is not None else row.scenario.no_target
        gen = max((s.gen_cpu for s in (cb, peer) if s is not None), default=0.0)
        errors = sum(s.errors for s in (cb, peer) if s is not None)
        cpu = f"{_num(cb.server_us if cb else None)} / {_num(peer.server_us if peer else None)}"
        label = row.scenario.label
        if row.scenario.new_connection and cb is not None and peer is not None:
            label += f" (resumed: certbound {cb.resumed:.0%}, peer {peer.resumed:.0%})"
        lines.append(
            f"| {label} | {_rps(cb)} | {_rps(peer)} | {_num(row.ratio, '{:.2f}x')} | "
            f"{target_text} | {_lat(cb)} | {_lat(peer)} | {cpu} | {_num(row.cpu_ratio, '{:.2f}x')} | "
            f"{gen:.0%} | {errors} |"
        )
    return "\n".join(lines)


def scaling_table(entries: Sequence[tuple[str, str, Result]]) -> str:
    """(server, scenario, result) lines of the unpinned multi-worker run."""
    lines = [
        "| server | scenario | req/s | p50 / p99 ms | server CPU (cores) | gen CPU | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server, scenario, r in entries:
        lines.append(
            f"| {server} | {scenario} | {r.rps:,.0f} | {r.p50_ms:.1f} / {r.p99_ms:.1f} | "
            f"{_num(r.server_cpu, '{:.2f}')} | {r.gen_cpu:.0%} | {r.errors} |"
        )
    return "\n".join(lines)


def as_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [
        {
            "scenario": row.scenario.name,
            "certbound": asdict(row.certbound) if row.certbound else None,
            "peer": asdict(row.peer) if row.peer else None,
            "ratio": row.ratio,
            "cpu_ratio": row.cpu_ratio,
            "target": row.scenario.ratio_target,
            "verdict": row.verdict,
        }
        for row in rows
    ]
