"""Experiments: ``certbound serve`` with a change applied in-process, to measure what it would give.

``python -m bench.experiments PATCH[,PATCH] -- serve ARGS...`` runs the certbound CLI after applying
the named patches; ``python -m bench.run --certbound-patch PATCH`` starts certbound this way. These are
measurements of candidate designs, not the product (docs/performance.md says what each gave):

* ``fast-logging``: structlog events rendered by structlog itself (filtering bound logger, one write
  per event) instead of through the stdlib ``logging`` machinery; same processors, same redaction,
  same JSON fields. Foreign (stdlib) loggers keep the product's configuration.
* ``tls-resumption``: the listener's TLS context with session resumption on (tickets and the session
  cache); off in the product because a resumed session loses the intermediates (docs/tls.md).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from typing import IO, Any, TextIO, cast

__all__ = ["PATCHES", "apply"]


def _fast_logging() -> None:
    import structlog

    import certbound.server
    from certbound.observability import logs
    from certbound.observability.redact import redact_event
    from certbound.observability.requestlog import capture_event

    product = logs.configure_logging

    class _NamedWriteLogger(structlog.WriteLogger):
        def __init__(self, file: IO[str], name: str) -> None:
            super().__init__(cast(TextIO, file))
            self.name = name

    def configure(
        level: str = "info", fmt: logs.LogFormat = "json", *, stream: IO[str] | None = None,
        cache_loggers: bool = True,
    ) -> logging.Handler:  # fmt: skip
        handler = product(level, fmt, stream=stream, cache_loggers=cache_loggers)
        out = stream if stream is not None else sys.stderr
        renderer: Any = (
            structlog.processors.JSONRenderer(sort_keys=False, default=str)
            if fmt == "json"
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
                structlog.processors.StackInfoRenderer(),
                capture_event,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(
                logging.getLevelNamesMapping()[level.upper()]
            ),
            logger_factory=lambda *args: _NamedWriteLogger(out, str(args[0]) if args else ""),
            cache_logger_on_first_use=cache_loggers,
        )
        return handler

    logs.configure_logging = configure
    certbound.server.configure_logging = configure  # type: ignore[attr-defined]


def _tls_resumption() -> None:
    import certbound.server

    product = certbound.server._ssl_factory

    def factory(settings: Any, *, request_client_cert: bool) -> Any:
        made = product(settings, request_client_cert=request_client_cert)
        return dataclasses.replace(made, session_resumption=True)

    certbound.server._ssl_factory = factory


PATCHES: dict[str, Callable[[], None]] = {
    "fast-logging": _fast_logging,
    "tls-resumption": _tls_resumption,
}


def apply(names: str) -> None:
    for name in filter(None, names.split(",")):
        PATCHES[name]()


def main() -> None:
    names, _, *rest = sys.argv[1:]
    apply(names)
    sys.argv = ["certbound", *rest]
    from certbound.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
