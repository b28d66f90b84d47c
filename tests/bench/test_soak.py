"""`python -m bench.soak` for half a minute (the suite's share; docs/operations.md has a 30-minute
run): two nodes on PostgreSQL take the mixed load without an error, every acknowledged write is
verified on both, and the report has the p99 per window and the RSS growth of every process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pg_helpers import require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_soak_has_no_errors_and_reports_its_figures(tmp_path: Path) -> None:
    require_postgres()
    out = tmp_path / "soak.json"
    args = [sys.executable, "-m", "bench.soak", "--minutes", "0.5", "--peak-seconds", "5", "--window", "10",
            "--clients", "5", "--json", str(out)]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    report = json.loads(out.read_text())
    assert report["errors"] == {}
    assert report["verify_problems"] == []
    assert report["operations"] > 0
    assert report["acknowledged"]["tokens"] > 0
    assert report["acknowledged"]["revocations"] > 0
    assert report["acknowledged"]["registrations"] > 0
    assert len(report["windows"]) >= 2
    assert all("p99_ms" in w for w in report["windows"])
    assert set(report["rss_growth_mb"]) == {"node1 parent", "node2 parent"}
    assert report["node_alive_at_end"] == {"node1": True, "node2": True}
