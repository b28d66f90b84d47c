"""Warm a server to its steady state before anything is measured.

A JIT peer (V8 under oidc-provider) is slow for its first seconds and climbs for a while after:
measured too early it looks a third slower than it is. So before the timed rounds of a scenario,
each server runs back-to-back warm-up windows until its rate stops rising: the last `windows`
successive windows all lie within `tolerance` of one another (default: three windows, 5%). The
warm-up each server needed is part of the report, so a reader can see that both were warm.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Warmup", "is_steady", "warm_to_steady"]


class Window(Protocol):
    """What a warm-up window reports (a `bench.loadgen.Result`)."""

    @property
    def rps(self) -> float: ...

    @property
    def errors(self) -> int: ...


@dataclass
class Warmup:
    """What warming one server on one scenario took: the rate of each window, and whether it settled."""

    server: str
    scenario: str
    window_s: float
    rates: list[float] = field(default_factory=list)
    errors: int = 0
    steady: bool = False

    @property
    def seconds(self) -> float:
        return self.window_s * len(self.rates)

    def describe(self) -> str:
        rates = ", ".join(f"{r:,.0f}" for r in self.rates)
        state = "steady" if self.steady else "NOT steady (cap reached)"
        return f"{self.server} {self.scenario}: {self.seconds:.0f} s, {state}; req/s per window: {rates}"


def is_steady(rates: Sequence[float], *, tolerance: float = 0.05, windows: int = 3) -> bool:
    """True when the last `windows` rates are within `tolerance` of each other (max/min - 1).

    The spread of the last three windows, not the last step alone: a slow climb of +3% a window
    would pass a two-window test at every step while the server is still warming.
    """
    if windows < 2:
        raise ValueError("steadiness needs at least two windows to compare")
    if len(rates) < windows:
        return False
    tail = rates[-windows:]
    low, high = min(tail), max(tail)
    return low > 0 and high / low - 1 <= tolerance


async def warm_to_steady(
    run_window: Callable[[], Awaitable[Window]],
    warmup: Warmup,
    *,
    tolerance: float = 0.05,
    windows: int = 3,
    max_s: float = 180.0,
) -> Warmup:
    """Run `run_window` until `is_steady` holds or `max_s` seconds of windows have run."""
    while True:
        result = await run_window()
        warmup.rates.append(result.rps)
        warmup.errors += result.errors
        if is_steady(warmup.rates, tolerance=tolerance, windows=windows):
            warmup.steady = True
            return warmup
        if warmup.seconds >= max_s:
            return warmup
