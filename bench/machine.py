"""What the benchmark ran on, and how busy the servers' core was with other processes."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["CoreMeter", "describe_machine"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _node_version() -> str:
    try:
        done = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "no node"
    return done.stdout.strip() or "no node"


def _interpreter() -> str:
    """The interpreter certbound runs on, by its real path: how it was built moves every Python row
    (a distribution's PGO+LTO build runs certbound ~15-25% faster than pyenv's default build)."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


def describe_machine() -> str:
    """One line: CPU, core count, memory, kernel, Python (and which interpreter) and Node.js versions."""
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"machine: {_cpu_model()}, {os.cpu_count()} cores, {mem_kb / 2**20:.0f} GiB, "
        f"Linux {platform.release()}, Python {sys.version.split()[0]} ({_interpreter()}), "
        f"Node.js {_node_version()}"
    )


class CoreMeter:
    """Busy time of the servers' core(s) from /proc/stat, less the server's own CPU time."""

    def __init__(self, cpus: str | None) -> None:
        self._cpus = [f"cpu{c}" for c in cpus.split(",")] if cpus else None
        self._start: tuple[float, float] | None = None

    def _sample(self) -> tuple[float, float]:
        busy = total = 0.0
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if self._cpus is None or name not in self._cpus:
                continue
            values = [int(v) for v in fields[:8]]
            total += sum(values)
            busy += sum(values) - values[3] - values[4]  # idle, iowait
        return busy / _TICKS, total / _TICKS

    def start(self) -> None:
        self._start = self._sample() if self._cpus else None

    def others(self, server_cpu_fraction: float | None) -> float | None:
        """Share of the core used by other processes since `start` (None if unpinned)."""
        if self._start is None or server_cpu_fraction is None:
            return None
        busy0, total0 = self._start
        busy1, total1 = self._sample()
        cores = len(self._cpus or [])
        wall = (total1 - total0) / max(1, cores)
        if wall <= 0:
            return None
        return max(0.0, (busy1 - busy0) / wall - server_cpu_fraction)
