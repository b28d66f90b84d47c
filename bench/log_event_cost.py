"""In-process cost of one log event: the ``client_auth`` and ``request`` events every request writes.

``python -m bench.log_event_cost`` configures logging as the server does (``configure_logging("info",
"json")``) but to ``/dev/null`` (or a ``StringIO`` with ``--stream stringio``), logs N events of each
kind with the fields and realistic values of ``clientauth/events.py`` ``record`` and
``observability/requestlog.py`` ``_emit``, and prints the best of R rounds in µs per event. The
``client_auth`` event is logged inside a request's context, as in the server, so ``capture_event``
does its work. docs/performance.md says why this matters (two events per request).
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable
from typing import IO, Any

import structlog

from certbound.observability import requestlog
from certbound.observability.logs import configure_logging

__all__ = ["main", "measure"]

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


def _client_auth(fields: dict[str, Any], warn: bool) -> Callable[[], None]:
    log = structlog.get_logger("certbound.auth")
    emit = log.warning if warn else log.info

    def once() -> None:
        token = requestlog._facts.set({})  # inside a request, as in the server
        try:
            emit("client_auth", **fields)
        finally:
            requestlog._facts.reset(token)

    return once


def _request() -> Callable[[], None]:
    log = structlog.get_logger("certbound.request")

    def once() -> None:
        log.info("request", **REQUEST)

    return once


def measure(once: Callable[[], None], events: int, rounds: int) -> float:
    """Best of `rounds` rounds of `events` calls, in µs per call (process CPU time)."""
    once()  # warm caches, as a running server has
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time_ns()
        for _ in range(events):
            once()
        best = min(best, (time.process_time_ns() - started) / events / 1000)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", "--events", type=int, default=20_000, help="events per round")
    parser.add_argument("-r", "--rounds", type=int, default=5, help="rounds (the best is printed)")
    parser.add_argument("--stream", choices=("devnull", "stringio"), default="devnull")
    args = parser.parse_args(argv)
    stream: IO[str] = (
        open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - open for the whole run
        if args.stream == "devnull"
        else io.StringIO()
    )
    configure_logging("info", "json", stream=stream)
    cases = {
        "client_auth (success)": _client_auth(CLIENT_AUTH_SUCCESS, warn=False),
        "client_auth (failure)": _client_auth(CLIENT_AUTH_FAILURE, warn=True),
        "client_auth (non-ASCII DN)": _client_auth(CLIENT_AUTH_NON_ASCII, warn=False),
        "request": _request(),
    }
    print(f"{args.events} events x {args.rounds} rounds to {args.stream}, best round:")
    for name, once in cases.items():
        print(f"  {name:<28} {measure(once, args.events, args.rounds):6.2f} µs/event")
    stream.close()


if __name__ == "__main__":
    main()
