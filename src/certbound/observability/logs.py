"""Logging for the whole process: structlog and stdlib (uvicorn, libraries) render the same way.

``json`` (the default) writes one JSON object per line to stderr, for log collectors; ``console`` is
for a human at a terminal. Every event, whatever logger made it, passes through
:func:`~certbound.observability.redact.redact_event` last, so no secret, private key or whole token
reaches the output. Events logged while a request is served also feed that request's summary
(:func:`~certbound.observability.requestlog.capture_event`): a ``client_auth`` failure's reason code
ends up on the request event.

Call :func:`configure_logging` once per process (the server does, in the parent and every worker),
before anything logs. uvicorn must then be started with ``log_config=None`` so it keeps its hands off.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, Processor

from certbound.observability.redact import redact_event
from certbound.observability.requestlog import capture_event

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["json", "console"]

#: Loggers that install their own handlers or are too chatty at INFO; they propagate to the root.
_OWNED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_QUIET_LOGGERS = {"sqlalchemy": logging.WARNING, "aiosqlite": logging.WARNING, "asyncio": logging.WARNING,
                  "httpx": logging.WARNING, "httpcore": logging.WARNING}  # fmt: skip


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _drop_color_message(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    """uvicorn adds an ANSI-coloured copy of its message as an ``extra``; the message is enough."""
    event_dict.pop("color_message", None)
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's line writer, carrying the logger's name for ``add_logger_name``."""

    def __init__(self, file: IO[str], name: str) -> None:
        super().__init__(cast(TextIO, file))
        self.name = name


def _renderer(fmt: LogFormat, stream: IO[str]) -> Processor:
    if fmt == "console":
        colors = bool(getattr(stream, "isatty", lambda: False)())
        return structlog.dev.ConsoleRenderer(colors=colors)
    return structlog.processors.JSONRenderer(sort_keys=False, default=str)


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "json",
    *,
    stream: IO[str] | None = None,
    cache_loggers: bool = True,
) -> logging.Handler:
    """Route structlog and stdlib logging to one handler on `stream` (stderr); returns the handler.

    `cache_loggers=False` lets tests reconfigure later (structlog otherwise binds a logger's
    configuration on its first use).
    """
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer = _renderer(fmt, out)
    # structlog events (the per-request ones: hot path) are finished and written by structlog itself,
    # one write per event, with the level filter decided once per logger; going through stdlib
    # logging's records and handlers cost about 100 µs per request (docs/performance.md). Stdlib
    # records (uvicorn, libraries) get the same steps in the formatter below.
    structlog.configure(
        processors=[
            *_shared(),
            structlog.processors.StackInfoRenderer(),
            capture_event,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        logger_factory=lambda *args: _NamedWriteLogger(out, str(args[0]) if args else ""),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=cache_loggers,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_color_message,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )
    # No caller, thread or process lookups per record: nothing renders them (the logging docs'
    # "Optimization" section).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in _OWNED_LOGGERS:
        owned = logging.getLogger(name)
        owned.handlers.clear()
        owned.propagate = True
        owned.setLevel(logging.NOTSET)
    for name, quiet in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, numeric))
    logging.captureWarnings(True)
    return handler
