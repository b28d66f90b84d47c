"""Measure what clients see while PostgreSQL is stopped for a few seconds (figures for
docs/operations.md): ``python -m tests.faults.measure_outage [--outage 3] [--workers 2]``.

A dev server on a private PostgreSQL cluster (tests.pg_private); one client introspects a token in a
loop on a kept-alive connection while the cluster is stopped (pg_ctl stop -m fast) for `--outage`
seconds and started again. Prints the answers by status, the slowest answer during the outage, and
how long after PostgreSQL accepted connections again the first 200 came.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import tempfile
import threading
import time
from pathlib import Path

from tests.pg_private import PrivatePostgres
from tests.server.process.serverproc import start_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--outage", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the server log (printed path)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="certbound-outage-")
    with PrivatePostgres() as pg:
        server = start_server(["--database-url", pg.url, "--workers", str(args.workers)], Path(tmp) / "data")
        try:
            with server.client(cert=True) as http:
                form = {"grant_type": "client_credentials", "client_id": "demo-client"}
                token = http.post(server.url + "/token", data=form).json()["access_token"]
                samples: list[tuple[float, int, float]] = []  # (start, status, seconds)
                stop = threading.Event()

                def load() -> None:
                    while not stop.is_set():
                        started = time.monotonic()
                        status = http.post(
                            server.url + "/introspect", data={"token": token, "client_id": "demo-client"}
                        ).status_code
                        samples.append((started, status, time.monotonic() - started))

                worker = threading.Thread(target=load)
                worker.start()
                time.sleep(1)
                down_at = time.monotonic()
                pg.stop()
                time.sleep(args.outage)
                pg.start()
                up_at = time.monotonic()
                time.sleep(3)
                stop.set()
                worker.join()
        finally:
            server.stop()
            print("server log:", server.log_path) if args.keep else shutil.rmtree(tmp, ignore_errors=True)
    during = [s for s in samples if down_at <= s[0] < up_at]
    after = [s for s in samples if s[0] >= up_at]
    first_ok = next((s[0] + s[2] - up_at for s in after if s[1] == 200), None)
    print(f"outage {up_at - down_at:.1f} s (stop -m fast, start), workers {args.workers}")
    print("answers during the outage:", dict(collections.Counter(s[1] for s in during)))
    print(f"slowest answer during the outage: {max((s[2] for s in during), default=0) * 1000:.0f} ms")
    print("answers after:", dict(collections.Counter(s[1] for s in after)))
    print(
        f"first 200 after PostgreSQL was back: {first_ok * 1000:.0f} ms" if first_ok is not None else "no 200"
    )


if __name__ == "__main__":
    main()
