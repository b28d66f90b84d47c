"""When the parent replaces a dead worker: at once, or after a pause when it keeps dying young.

A worker may die for reasons of its own (killed, out of memory, a bug) or because it cannot start
(the database is unreachable). Stopping the whole service when a young worker dies would turn one
bad worker into an outage (issue 15), and restarting it in a tight loop would burn a core while the
database is down. So each worker slot counts the deaths in a row of workers younger than `young_s`:
the first is replaced at once, the next ones after `base_s`, doubled each time up to `max_s`. A
worker that lived `young_s` resets its slot. Each death gives one log line, and from
`crashing_after` deaths in a row it says plainly that the worker keeps crashing and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RestartPolicy", "SlotHistory"]


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before replacing a worker that died young; see the module docstring."""

    young_s: float = 10.0
    base_s: float = 0.5
    max_s: float = 30.0
    crashing_after: int = 3

    def __post_init__(self) -> None:
        if not (self.young_s > 0 and 0 < self.base_s <= self.max_s and self.crashing_after >= 1):
            raise ValueError("young_s, base_s > 0, base_s <= max_s, crashing_after >= 1")

    def slot(self) -> SlotHistory:
        return SlotHistory(self)


class SlotHistory:
    """The deaths in a row of the workers of one slot, and the pause before the next one starts."""

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self.young_deaths = 0

    def alive(self, age_s: float) -> None:
        """The slot's worker is alive at `age_s`: once it is no longer young, the streak ends."""
        if age_s >= self._policy.young_s:
            self.young_deaths = 0

    def died(self, age_s: float, pid: int | None, code: int | None) -> tuple[float, str]:
        """A worker of this slot died at `age_s`: the pause before its replacement, and the log line."""
        p = self._policy
        if age_s >= p.young_s:
            self.young_deaths = 0
            return 0.0, f"worker {pid} exited (code {code}) after {age_s:.0f} s; starting a new one"
        self.young_deaths += 1
        n = self.young_deaths
        delay = 0.0 if n == 1 else min(p.max_s, p.base_s * 2 ** (n - 2))
        line = f"worker {pid} exited (code {code}) {age_s:.1f} s after its start"
        if n >= p.crashing_after:
            return delay, (
                f"{line}: worker keeps crashing ({n} times in a row within {p.young_s:.0f} s of "
                f"start); starting a new one in {delay:.1f} s; see its last log lines above"
            )
        return delay, f"{line}; starting a new one in {delay:.1f} s"
