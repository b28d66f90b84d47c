"""A worker told to stop while it is still opening its app stops as it would once serving: it closes
what it opened and exits 0, as `certbound serve` did when the services were opened in the app's
lifespan, under uvicorn's signal handlers (SIGTERM from a service manager, Ctrl-C in a terminal)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _default_sigint() -> None:  # a shell's background job inherits SIGINT ignored: undo that
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_while_the_app_opens_stops_the_worker_cleanly(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tls.slow_worker"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "opening"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert out.split() == ["closed"]
    assert "Started server process" not in err  # it never served
