"""In-process cost of one log event: the ``client_auth`` and ``request`` events every request writes.

``python -m bench.log_event_cost`` configures logging as the server does (``configure_logging("info",
"json")``), logs N events of each kind with the fields and realistic values of
``server/clientauth/events.py`` ``record`` and ``observability/requestlog.py`` ``_emit`` as they log them
(``logwrite.emit``; ``--via structlog`` for ``log.info(event, **fields)``), and prints the best of R
rounds in µs of this process's CPU per event, write included, for each output:

- ``devnull``: ``/dev/null`` (the write is a system call that does nothing);
- ``file``: a temporary file on disk;
- ``pipe``: a pipe drained by a ``cat`` child process (its CPU is not counted), as stderr under a
  process supervisor or a container runtime;
- ``stringio``: an ``io.StringIO`` (no system call at all).

Each is measured without a running event loop (a CLI command, start-up) and inside a uvloop loop with
K events per loop iteration (``--per-iteration``; 2 is one request's events per iteration, the least
a busy server batches), since lines written inside a loop iteration are written together at its end.
The ``client_auth`` event is logged inside a request's context, as in the server, so
``capture_event`` does its work. docs/performance.md says why this matters (two events per request).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import structlog
import uvloop

from certbound.observability import requestlog
from certbound.observability.logs import configure_logging
from certbound.observability.logwrite import emit

__all__ = ["main", "measure", "measure_in_loop"]

STREAMS = ("devnull", "file", "pipe", "stringio")
THUMBPRINT = "o6akD8Uo9O8Rwh01H0hrUY3rq8KaCED2EEEWWRIeIkY"  # 43 characters, like every x5t#S256

CLIENT_AUTH_SUCCESS: dict[str, Any] = {
    "client_id": "tls-dn",
    "endpoint": "/token",
    "method": "tls_client_auth",
    "presented": "client_id+certificate",
    "outcome": "success",
    "reason": "ok",
    "cert_x5t_s256": THUMBPRINT,
    "cert_subject": "CN=bench-client,O=certbound bench",
    "cert_issuer": "CN=certbound bench CA,O=certbound bench",
    "cert_source": "tls",
    "tls_verified": True,
    "tls_error": None,
}
CLIENT_AUTH_FAILURE: dict[str, Any] = {
    **CLIENT_AUTH_SUCCESS,
    "outcome": "failure",
    "reason": "tls_client_auth.subject_mismatch",
    "detail": "certificate subject does not match the registered tls_client_auth_subject_dn",
}
CLIENT_AUTH_NON_ASCII: dict[str, Any] = {  # json escapes these: the slower path of the renderer
    **CLIENT_AUTH_SUCCESS,
    "cert_subject": "CN=Jürgen Müller,O=Société Générale",
    "cert_issuer": "CN=Société Générale CA,O=Société Générale",
}
REQUEST: dict[str, Any] = {
    "method": "POST",
    "path": "/token",
    "status": 200,
    "duration_ms": 1.234,
    "client": "127.0.0.1",
    "endpoint": "/token",
    "http_version": "1.1",
    "client_id": "tls-dn",
    "auth_method": "tls_client_auth",
    "cert_x5t_s256": THUMBPRINT,
    "cert_source": "tls",
    "tls_verified": True,
}


def _client_auth(fields: dict[str, Any], warn: bool, via: str) -> Callable[[], None]:
    log = structlog.get_logger("certbound.auth")
    level = "warning" if warn else "info"

    def once() -> None:
        token = requestlog._facts.set({})  # inside a request, as in the server
        try:
            _log_event(log, level, "client_auth", fields, via)
        finally:
            requestlog._facts.reset(token)

    return once


def _request(via: str) -> Callable[[], None]:
    log = structlog.get_logger("certbound.request")

    def once() -> None:
        _log_event(log, "info", "request", REQUEST, via)

    return once


def _log_event(log: Any, level: str, event: str, fields: dict[str, Any], via: str) -> None:
    """As the code logs the event (`emit`: the fields become the event, hence the copy), or through
    structlog's bound logger as it did before."""
    if via == "emit":  # client_auth events repeat (the same client's), as events.record says
        emit(log, level, event, dict(fields), repeats=event == "client_auth")
    else:
        getattr(log, level)(event, **fields)


def measure(once: Callable[[], None], events: int, rounds: int) -> float:
    """Best of `rounds` rounds of `events` calls, in µs per call (process CPU time), no loop running."""
    once()  # warm caches, as a running server has
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time_ns()
        for _ in range(events):
            once()
        best = min(best, (time.process_time_ns() - started) / events / 1000)
    return best


def measure_in_loop(once: Callable[[], None], events: int, rounds: int, per_iteration: int) -> float:
    """As :func:`measure`, inside a running uvloop loop, `per_iteration` calls per loop iteration.

    The loop's own cost (one iteration per `per_iteration` events) is counted too, before and after
    a change alike.
    """

    async def run() -> float:
        once()
        await asyncio.sleep(0)
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time_ns()
            for _ in range(events // per_iteration):
                for _ in range(per_iteration):
                    once()
                await asyncio.sleep(0)  # the end of the loop iteration
            best = min(best, (time.process_time_ns() - started) / events / 1000)
        return best

    return uvloop.run(run())


@contextmanager
def _output(kind: str) -> Iterator[IO[str]]:
    """A text stream of the given kind, closed (and its reader stopped) afterwards."""
    if kind == "stringio":
        yield io.StringIO()
        return
    if kind == "devnull":
        with open(os.devnull, "w", encoding="utf-8") as devnull:
            yield devnull
        return
    if kind == "file":
        with tempfile.TemporaryFile("w", encoding="utf-8") as file:
            yield file
        return
    read_end, write_end = os.pipe()
    reader = subprocess.Popen(["cat"], stdin=read_end, stdout=subprocess.DEVNULL)
    os.close(read_end)
    try:
        with open(write_end, "w", encoding="utf-8") as pipe:
            yield pipe
    finally:
        reader.wait(10)


def _cases(via: str) -> dict[str, Callable[[], None]]:
    return {
        "client_auth (success)": _client_auth(CLIENT_AUTH_SUCCESS, warn=False, via=via),
        "client_auth (failure)": _client_auth(CLIENT_AUTH_FAILURE, warn=True, via=via),
        "client_auth (non-ASCII DN)": _client_auth(CLIENT_AUTH_NON_ASCII, warn=False, via=via),
        "request": _request(via),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--events", type=int, default=20_000, help="events per round")
    parser.add_argument("-r", "--rounds", type=int, default=5, help="rounds (the best is printed)")
    parser.add_argument(
        "--stream", default="devnull,file,pipe", help=f"comma-separated outputs among {', '.join(STREAMS)}"
    )
    parser.add_argument(
        "--per-iteration", default="0,2", help="comma-separated events per loop iteration; 0: no loop"
    )
    parser.add_argument(
        "--via", choices=("emit", "structlog"), default="emit",
        help="emit: as the code logs them (the default); structlog: log.info(event, **fields)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    kinds = args.stream.split(",")
    if unknown := set(kinds) - set(STREAMS):
        parser.error(f"unknown --stream {sorted(unknown)}")
    modes = [int(k) for k in args.per_iteration.split(",")]
    print(f"{args.events} events x {args.rounds} rounds via {args.via}, best round, µs of CPU per event:")
    print(f"  {'':<28} " + " ".join(f"{kind:>9}" for kind in kinds))
    for per_iteration in modes:
        print("no event loop" if per_iteration == 0 else f"in a uvloop loop, {per_iteration} per iteration")
        results: dict[str, list[float]] = {}
        for kind in kinds:
            with _output(kind) as stream:
                configure_logging("info", "json", stream=stream)
                for name, once in _cases(args.via).items():
                    if per_iteration == 0:
                        cost = measure(once, args.events, args.rounds)
                    else:
                        cost = measure_in_loop(once, args.events, args.rounds, per_iteration)
                    results.setdefault(name, []).append(cost)
        for name, costs in results.items():
            print(f"  {name:<28} " + " ".join(f"{cost:9.2f}" for cost in costs))


if __name__ == "__main__":
    main()
