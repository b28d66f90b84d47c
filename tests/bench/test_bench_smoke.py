"""The benchmark command runs a short smoke round against both servers and reports no error.

Only that it completes, prints the table and counts zero failed requests: the suite never asserts
on time. Without Node.js the peer is left out on a developer's machine; in CI it must be there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_bench_quick_round_completes_without_errors(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "bench.run", "--quick", "--no-pin", "--out", str(tmp_path)]
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed for the benchmark's peer in CI")
        args.append("--no-peer")
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "| client_credentials, tls_client_auth |" in done.stdout, output[-4000:]
    assert "total errors: 0;" in done.stdout, output[-4000:]
    assert (tmp_path / "latest.md").read_text().startswith("`python -m bench.run")


def test_inprocess_profiler_answers_every_case() -> None:
    """`bench.inprocess` drives the real app: every case must get a 200 (it exits non-zero otherwise)."""
    args = [sys.executable, "-m", "bench.inprocess", "--requests", "250"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    for case in ("healthz", "token-tls", "token-self-signed", "token-basic", "token-private-key-jwt",
                 "introspect", "introspect-opaque"):  # fmt: skip
        assert f"{case} " in done.stdout, output[-4000:]


def test_hot_write_cost_measures_both_ways() -> None:
    """`bench.hot_write_cost` inserts into a real SQLite store alone and in groups (it exits non-zero
    if a fresh jti is refused)."""
    args = [sys.executable, "-m", "bench.hot_write_cost", "--inserts", "400", "--writers", "8"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "  1 writer(s):" in done.stdout
    assert "  8 writer(s):" in done.stdout


def test_revocation_cost_measures_with_a_warm_cache() -> None:
    """`bench.revocation_cost`: every mode answers 200; the measured requests ask the responder nothing."""
    args = [sys.executable, "-m", "bench.revocation_cost", "--requests", "250", "--rounds", "1"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    for mode in ("off", "ocsp,crl", "crl"):
        assert f"{mode} " in done.stdout, output[-4000:]
    assert done.stdout.count("responder requests while measuring: 0") == 3, output[-4000:]


def test_baseline_runs_the_other_checkout(tmp_path: Path) -> None:
    """`--baseline` (A/B of two versions): the peer's place is taken by certbound imported from there."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "src" / "certbound", checkout / "src" / "certbound")
    marker = tmp_path / "imported-from-baseline"
    with (checkout / "src" / "certbound" / "__init__.py").open("a") as init:
        init.write(f"\nimport pathlib as _p\n_p.Path({str(marker)!r}).touch()\n")
    args = [sys.executable, "-m", "bench.run", "--quick", "--no-pin", "--scenarios", "cc-tls",
            "--baseline", str(checkout), "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert f"A/B: the peer columns are certbound w1 from {checkout} " in done.stdout, output[-4000:]
    assert "total errors: 0;" in done.stdout, output[-4000:]
    assert marker.exists()


def test_baseline_python_runs_certbound_on_that_interpreter(tmp_path: Path) -> None:
    """`--baseline-python` (A/B of two interpreters): the peer's place is taken by certbound started
    with that interpreter (here a wrapper that leaves a mark, then runs this one), on this checkout's
    code whatever that interpreter has installed, and named by its version and real path."""
    marker = tmp_path / "started-by-baseline-python"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$PYTHONPATH|$*" >> {marker}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    args = [sys.executable, "-m", "bench.run", "--quick", "--no-pin", "--scenarios", "cc-tls",
            "--baseline-python", str(python), "--certbound-args", "--log-level warning",
            "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    real = os.path.realpath(sys._base_executable)  # type: ignore[attr-defined]
    version = sys.version.split()[0]
    named = f"A/B: the peer columns are certbound w1 on {python} (Python {version}, {real}) "
    assert named in done.stdout, output[-4000:]
    assert "total errors: 0;" in done.stdout, output[-4000:]
    served = [line for line in marker.read_text().splitlines() if "|-m certbound serve " in line]
    assert len(served) == 1, marker.read_text()
    assert served[0].startswith(f"{ROOT / 'src'}{os.pathsep}"), served[0]
    assert served[0].endswith(" --log-level warning"), served[0]  # run as the first one is


def test_a_baseline_python_that_cannot_serve_stops_the_first_server(tmp_path: Path) -> None:
    """An interpreter without certbound's server is refused by name, and the certbound started
    before it does not outlive the run."""
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 1\n")
    python.chmod(0o755)
    args = [sys.executable, "-m", "bench.run", "--quick", "--no-pin", "--scenarios", "cc-tls",
            "--baseline-python", str(python), "--out", str(tmp_path / "out")]  # fmt: skip
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode != 0
    assert f"RuntimeError: {python}: cannot import certbound's server" in done.stderr, done.stderr[-4000:]
    prefix = "work directory: "
    work = next(line.removeprefix(prefix) for line in done.stdout.splitlines() if line.startswith(prefix))
    pattern = f"data-dir {work}/"
    left = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    if left.returncode != 1:  # 1: no process matched
        subprocess.run(["pkill", "-f", pattern], check=False)
    assert left.returncode == 1, left.stdout + left.stderr


def test_baseline_python_must_be_an_executable(tmp_path: Path) -> None:
    args = [sys.executable, "-m", "bench.run", "--quick", "--baseline-python", str(tmp_path / "none")]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert f"--baseline-python {tmp_path / 'none'}: not an executable" in done.stderr


def test_pyspy_summary_puts_each_sample_in_one_part(tmp_path: Path) -> None:
    root = "_run_module_as_main (<frozen runpy>:198);run_worker (certbound/server.py:1)"
    # the app's frames: the hot routes (ahead of Starlette's stack) for one sample, the stack for the others
    app = f"{root};RequestResponseCycle.run_asgi (uvicorn/x.py:1);Starlette.__call__ (starlette/a.py:1)"
    hot = f"{root};RequestResponseCycle.run_asgi (uvicorn/x.py:1);CertboundApp.__call__ (hot_routes.py:1)"
    raw = [
        f"{hot};token (certbound/server/endpoints/token.py:1);_EcdsaSignature.__call__ (jose/signer.py:9) 5",
        f"{app};token (certbound/server/endpoints/token.py:1);"
        "claims (certbound/server/tokens/access_token.py:1) 3",
        f"{app};emit (certbound/observability/logwrite.py:1);inc (prometheus_client/values.py:1) 2",
        f"{root};SSLProtocol__do_read (loop.c:1);HttpToolsProtocol.data_received (uvicorn/h.py:1) 4",
        f"{root};SSLProtocol__do_read (loop.c:1);read (libc.so.6) 6",
        "_run_module_as_main (<frozen runpy>:198);Thread.run;_queue_SimpleQueue_get (q.c:1) 50",
    ]
    profile = tmp_path / "profile.raw"
    profile.write_text("\n".join(raw) + "\n")
    args = [sys.executable, "-m", "bench.pyspy_summary", str(profile)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == [
        " 30.0%  request: recv + TLS decrypt",
        " 25.0%  ECDSA signature (OpenSSL via cryptography)",
        " 20.0%  uvicorn: HTTP parsing, scope, task per request",
        " 15.0%  token: claims, scope, audience, jti",
        " 10.0%  metrics (prometheus_client counters, histogram)",
        "(20 samples)",
    ]


def test_gateway_cost_lets_its_request_through() -> None:
    """`bench.gateway_cost` measures the gateway's path to the upstream on both routes, JWT and
    cached introspection (it exits non-zero when either is refused)."""
    args = [sys.executable, "-m", "bench.gateway_cost", "--calls", "400"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "gateway, JWT (admission + event)" in done.stdout
    assert "gateway, introspection (the same)" in done.stdout


def test_upstream_cost_forwards_to_nginx() -> None:
    """`bench.upstream_cost` gets the upstream's own answer through `Upstream.forward` (it exits
    non-zero otherwise)."""
    if shutil.which("nginx") is None and not os.access("/usr/sbin/nginx", os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("nginx is needed for the benchmark's upstream (.ci/run installs nginx-light)")
        pytest.skip("nginx is needed for the benchmark's upstream")
    args = [sys.executable, "-m", "bench.upstream_cost", "--calls", "800"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "upstream exchange, 16 in flight" in done.stdout


def test_protocol_cost_answers_every_request() -> None:
    """`bench.protocol_cost` drives certbound's HTTP protocol with whole requests (it exits non-zero
    when one went unanswered)."""
    args = [sys.executable, "-m", "bench.protocol_cost", "--calls", "2000"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "HTTP protocol layer, trivial app" in done.stdout


def test_tls_extension_cost_reads_the_certificate() -> None:
    """`bench.tls_extension_cost` completes a real handshake in memory (it exits non-zero when the
    extension misses the certificate or its name)."""
    args = [sys.executable, "-m", "bench.tls_extension_cost", "--calls", "1000"]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert "tls_extension, certificate seen before" in done.stdout
