"""Steady state: when the warm-up stops, and that the bench reports the warm-up it ran."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# bench/ is not a package the suite imports (tests/bench shadows the name): load the module by path
_spec = importlib.util.spec_from_file_location("bench_steady", ROOT / "bench" / "steady.py")
assert _spec is not None
assert _spec.loader is not None
steady = importlib.util.module_from_spec(_spec)
sys.modules["bench_steady"] = steady
_spec.loader.exec_module(steady)
Warmup, is_steady, warm_to_steady = steady.Warmup, steady.is_steady, steady.warm_to_steady


@dataclass
class Window:
    rps: float
    errors: int = 0


def test_rising_rates_are_not_steady() -> None:
    # a JIT peer climbing ~+10% a window, then flat
    assert not is_steady([4400, 4900, 5400])
    assert not is_steady([6000, 6200])  # two windows are not enough by default
    assert is_steady([6000, 6200, 6150])


def test_a_slow_climb_is_not_taken_for_flat() -> None:
    # +3% a window: each step is within 5%, the spread of three windows is not
    assert not is_steady([5000, 5150, 5305])


def test_a_dip_in_the_tail_is_judged_by_spread() -> None:
    assert not is_steady([7000, 6500, 7000])
    assert is_steady([7000, 6800, 7000])


def test_one_window_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="at least two windows"):
        is_steady([1.0, 1.0], windows=1)
    assert not is_steady([0.0, 0.0, 0.0])  # a server that answers nothing is not warm


async def test_warm_up_runs_until_flat_and_counts_errors() -> None:
    rates: Iterator[float] = iter([3000, 4500, 6000, 6600, 6700, 6650, 1, 1])

    async def window() -> Window:
        return Window(next(rates), errors=1)

    warmup = await warm_to_steady(window, Warmup("peer", "introspect", 2.0))
    assert warmup.steady
    assert warmup.rates == [3000, 4500, 6000, 6600, 6700, 6650]
    assert warmup.seconds == 12.0
    assert warmup.errors == 6
    assert "peer introspect: 12 s, steady" in warmup.describe()


async def test_warm_up_gives_up_at_the_cap_and_says_so() -> None:
    rates = iter(range(1000, 100000, 1000))

    async def window() -> Window:
        return Window(next(rates))

    warmup = await warm_to_steady(window, Warmup("peer", "cc-tls", 4.0), max_s=20)
    assert not warmup.steady
    assert len(warmup.rates) == 5
    assert "NOT steady" in warmup.describe()


@pytest.mark.slow
def test_bench_steady_mode_warms_each_server_and_reports_it(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "bench.run", "--quick", "--steady", "--steady-window", "0.3",
            "--steady-max", "3", "--no-pin", "--no-peer", "--scenarios", "cc-tls,introspect",
            "--out", str(tmp_path)]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    report = (tmp_path / "latest.md").read_text()
    assert "Warm-up to steady state" in report, report
    data = json.loads((tmp_path / "latest.json").read_text())
    warmed = {(w["server"], w["scenario"]) for w in data["warmups"]}
    assert warmed == {("certbound", "cc-tls"), ("certbound", "introspect")}
    assert all(len(w["rates"]) >= 1 and w["seconds"] <= 3.3 for w in data["warmups"])
    # --steady means at least three timed runs per server and scenario
    timed = [r for r in data["runs"] if r["scenario"] == "cc-tls"]
    assert len(timed) == 3, timed
