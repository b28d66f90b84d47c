"""Where a certbound worker's CPU goes, by part of a request, from a py-spy raw profile.

``python -m bench.pyspy_summary FILE.raw``: the shares docs/performance.md quotes ("Where the time
goes"). Record the file under load with C frames, e.g. while ``python -m bench.run --no-peer
--scenarios cc-tls --runs 1 --duration 35 --no-scaling`` runs::

    py-spy record -r 250 -d 20 -f raw -o cc-tls.raw -p <worker pid> --native

A sample inside the ASGI app goes to the first part whose marker one of its frames holds (so the
ECDSA signature is not also counted as token work); a sample outside it, to the I/O part it is in.
Idle threads (the SQLite thread waiting for work) and the shutdown are left out.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["summarize"]

_SEND = ("CoalescingTransport._flush", "SSLProtocol__write_appdata", "UVStream_write")
_EVENTS = (
    "logwrite.py",
    "_emit (certbound/observability/requestlog.py",
    "record (certbound/server/clientauth/events.py",
)

_IN_APP: Sequence[tuple[str, Sequence[str]]] = (
    ("metrics (prometheus_client counters, histogram)", ("prometheus_client",)),
    ("logging: the two events (build, redact, render, write)", _EVENTS),
    ("ECDSA signature (OpenSSL via cryptography)", ("_EcdsaSignature",)),
    (
        "JWT verification, verified-token cache, deny-list",
        ("server/tokens/verifier.py", "store/token_state.py"),
    ),
    ("form parsing", ("read_form (certbound",)),
    ("client authentication (without its event)", ("certbound/server/clientauth/",)),
    ("token: claims, scope, audience, jti", ("certbound/server/tokens/", "certbound/server/grants/")),
    ("response: TLS record + send", _SEND),
    ("uvicorn: response head and body",
     ("RequestResponseCycle.send", "RequestResponseCycle.receive", "certbound/tls/whole_response.py")),
    ("app glue: Starlette, middleware, endpoint, JSON answer", ("",)),
)  # fmt: skip
_OUTSIDE_APP: Sequence[tuple[str, Sequence[str]]] = (
    ("response: TLS record + send", _SEND),
    ("uvicorn: HTTP parsing, scope, task per request",
     ("HttpToolsProtocol", "HttpToolsTLSProtocol", "llhttp", "httptools_impl")),
    ("request: recv + TLS decrypt", ("SSLProtocol", "uv__read")),
)  # fmt: skip
_OTHER = "event loop, timers, other"


def summarize(lines: Iterable[str]) -> tuple[Counter[str], int]:
    """Samples per part, and the samples counted, from py-spy's raw format (``stack count``)."""
    parts: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if "_run_module_as_main" not in stack or "lifespan" in stack or "SimpleQueue_get" in stack:
            continue
        samples = int(count)
        total += samples
        rules = _IN_APP if "RequestResponseCycle.run_asgi" in stack else _OUTSIDE_APP
        part = next((name for name, markers in rules if any(m in stack for m in markers)), _OTHER)
        parts[part] += samples
    return parts, total


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    with Path(args[0]).open() as raw:
        parts, total = summarize(raw)
    if not total:
        print("no samples of a certbound worker in this file", file=sys.stderr)
        return 1
    for name, samples in parts.most_common():
        print(f"{100 * samples / total:5.1f}%  {name}")
    print(f"({total} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
