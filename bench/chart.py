"""``python -m bench.chart``: the bench's JSON results as a PNG of grouped bars, req/s per scenario.

Reads ``latest.json`` (what ``python -m bench.run`` writes in its ``--out`` directory) and, when there,
``gateway.json`` (``python -m bench.gateway_run``), and draws one panel per figure the files hold:
req/s and, where the server's CPU time was measured, req/s per core (one core busy for one second
per that many requests), certbound and the peer(s) side by side. The reading (`chart_data`) does not
need matplotlib, which only the drawing imports (the ``bench`` extra, not the test one); what a
file lacks is left out, not an error, so that an older or partial file still charts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.gateway_report import REFERENCES

__all__ = ["Panel", "Series", "chart_data", "draw", "gateway_records", "load_results", "main"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_OUT = ROOT / "docs" / "performance-chart.png"
BENCH_FILE = "latest.json"
GATEWAY_FILE = "gateway.json"
#: A title names the command that produced the figures, cut to what fits above a panel.
MAX_SOURCE = 90


@dataclass(frozen=True)
class Series:
    """One server's bars: a value per scenario of the panel, None where it has none."""

    server: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    scenarios: tuple[str, ...]
    series: tuple[Series, ...]


def _number(value: Any) -> float | None:
    """A finite, non-negative number, else None (a missing or malformed figure is skipped)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _per_core_from_side(side: Mapping[str, Any]) -> float | None:
    """Requests per CPU-second of the server: 10^6 / (server CPU µs per request)."""
    server_us = _number(side.get("server_us"))
    return 1e6 / server_us if server_us else None


def _panel(title: str, ylabel: str, table: Mapping[str, Mapping[str, float | None]]) -> Panel | None:
    """`table` is scenario -> server -> value; None when no value at all is there."""
    scenarios = tuple(table)
    servers: list[str] = []
    for by_server in table.values():
        servers += [s for s in by_server if s not in servers]
    series = tuple(
        Series(server, tuple(table[scenario].get(server) for scenario in scenarios)) for server in servers
    )
    series = tuple(s for s in series if any(v is not None for v in s.values))
    if not series:
        return None
    kept = [i for i, _ in enumerate(scenarios) if any(s.values[i] is not None for s in series)]
    return Panel(
        title,
        ylabel,
        tuple(scenarios[i] for i in kept),
        tuple(Series(s.server, tuple(s.values[i] for i in kept)) for s in series),
    )


def _bench_panels(data: Mapping[str, Any]) -> list[Panel]:
    """bench.run's ``rows``: each side's median req/s, and req/s per core from its CPU µs/request."""
    servers = data.get("servers")
    names: Mapping[str, Any] = servers if isinstance(servers, Mapping) else {}
    rps: dict[str, dict[str, float | None]] = {}
    per_core: dict[str, dict[str, float | None]] = {}
    rows = data.get("rows")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, Mapping) or not isinstance(row.get("scenario"), str):
            continue
        scenario = row["scenario"]
        for side_key in ("certbound", "peer"):
            side = row.get(side_key)
            if not isinstance(side, Mapping):
                continue
            # the peer's column is the baseline certbound in an A/B run (servers names it)
            own = names.get(side_key) or (names.get("baseline") if side_key == "peer" else None)
            label = str(own or side_key)
            rps.setdefault(scenario, {})[label] = _number(side.get("rps"))
            per_core.setdefault(scenario, {})[label] = _per_core_from_side(side)
    source = _source(data.get("command"))
    panels = [
        _panel(f"Authorization server: req/s{source}", "req/s", rps),
        _panel("Authorization server: req/s per core of server CPU", "req/s per core", per_core),
    ]
    return [p for p in panels if p is not None]


def gateway_records(data: Any) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(scenario, server, figures) from a gateway results file, in any of the shapes it may take:
    nested ``{scenario: {server: figures}}`` (or ``{scenario: {"servers": {server: figures}}}``, what
    ``bench.gateway_run`` writes), under ``scenarios`` or at the top; or a list of records with
    ``scenario`` and ``server``, under ``rows``/``results``/``runs`` or at the top. The upstream
    called directly (``upstream``, ``upstream-tls``) is the runs' reference, not a gateway: left out,
    in either shape."""
    if isinstance(data, Mapping):
        scenarios = data.get("scenarios")
        if not isinstance(scenarios, Mapping):
            for key in ("rows", "results", "runs"):
                if isinstance(data.get(key), list):
                    yield from gateway_records(data[key])
                    return
        nested: Mapping[Any, Any] = scenarios if isinstance(scenarios, Mapping) else data
        for scenario, by_server in nested.items():
            if isinstance(by_server, Mapping) and isinstance(by_server.get("servers"), Mapping):
                by_server = by_server["servers"]  # bench.gateway_run: {label, servers, verdicts}
            if not isinstance(by_server, Mapping):
                continue
            for server, figures in by_server.items():
                if isinstance(figures, Mapping) and server not in REFERENCES:
                    yield str(scenario), str(server), figures
    elif isinstance(data, list):
        for record in data:
            if (
                isinstance(record, Mapping)
                and "scenario" in record
                and "server" in record
                and record["server"] not in REFERENCES
            ):
                yield str(record["scenario"]), str(record["server"]), record


def _source(command: Any) -> str:
    if not isinstance(command, str):
        return ""
    return f" ({command if len(command) <= MAX_SOURCE else command[: MAX_SOURCE - 1] + '…'})"


def _gateway_per_core(figures: Mapping[str, Any]) -> float | None:
    per_core = _number(figures.get("rps_per_core"))
    if per_core is not None:
        return per_core
    rps = _number(figures.get("rps"))
    cores = next((_number(figures.get(k)) for k in ("server_cpu", "cpu_cores") if k in figures), None)
    return rps / cores if rps is not None and cores else None


def _gateway_panels(data: Any) -> list[Panel]:
    rps: dict[str, dict[str, float | None]] = {}
    per_core: dict[str, dict[str, float | None]] = {}
    for scenario, server, figures in gateway_records(data):
        rps.setdefault(scenario, {})[server] = _number(figures.get("rps"))
        per_core.setdefault(scenario, {})[server] = _gateway_per_core(figures)
    source = _source(data.get("command") if isinstance(data, Mapping) else None)
    panels = [
        _panel(f"Gateway as a resource server: req/s{source}", "req/s", rps),
        _panel("Gateway as a resource server: req/s per core", "req/s per core", per_core),
    ]
    return [p for p in panels if p is not None]


def chart_data(bench: Mapping[str, Any] | None, gateway: Any = None) -> list[Panel]:
    """The panels to draw, from bench.run's JSON and the gateway's (either may be None)."""
    panels = _bench_panels(bench) if bench is not None else []
    if gateway is not None:
        panels += _gateway_panels(gateway)
    return panels


def _read(path: Path) -> Any:
    """The JSON in `path`, None when there is no such file; a file that is not JSON is an error."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError as error:
        raise SystemExit(f"{path}: not JSON: {error}") from None


def load_results(results: Path, gateway: Path | None = None) -> tuple[Any, Any]:
    """(bench.run's JSON, the gateway's JSON) from `results`, None for a file that is not there."""
    return _read(results / BENCH_FILE), _read(gateway or results / GATEWAY_FILE)


def draw(panels: Sequence[Panel]) -> Any:
    """A matplotlib Figure with one grouped bar chart per panel (Agg: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        width = 0.8 / len(panel.series)
        for i, series in enumerate(panel.series):
            offsets = [x - 0.4 + width * (i + 0.5) for x in range(len(panel.scenarios))]
            heights = [v if v is not None else math.nan for v in series.values]
            bars = ax.bar(offsets, heights, width, label=series.server)
            labels = [f"{v:,.0f}" if v is not None else "" for v in series.values]
            ax.bar_label(bars, labels=labels, fontsize=6, rotation=90, padding=2)
        ax.set_title(panel.title, fontsize=9)
        ax.set_ylabel(panel.ylabel)
        ax.set_xticks(range(len(panel.scenarios)), panel.scenarios, rotation=20, ha="right", fontsize=8)
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chart", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS,
                   help=f"directory with {BENCH_FILE} and {GATEWAY_FILE} (default {RESULTS})")  # fmt: skip
    p.add_argument("--gateway", type=Path, default=None,
                   help=f"the gateway results file, if not {GATEWAY_FILE} in --results")  # fmt: skip
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the PNG to write (default {DEFAULT_OUT})")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    bench, gateway = load_results(args.results, args.gateway)
    panels = chart_data(bench if isinstance(bench, Mapping) else None, gateway)
    if not panels:
        print(f"nothing to chart: no figures in {args.results / BENCH_FILE} or the gateway file",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        figure = draw(panels)
    except ModuleNotFoundError as error:  # matplotlib is in the bench extra only
        print(f"{error.name} is needed to draw: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    for panel in panels:
        servers = ", ".join(s.server for s in panel.series)
        print(f"{panel.title}: {len(panel.scenarios)} scenarios, {servers}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
