"""Logging for the whole process: structlog and stdlib (uvicorn, libraries) render the same way.

``json`` (the default) writes one JSON object per line to stderr, for log collectors; ``console`` is
for a human at a terminal. Every event, whatever logger made it, passes through
:func:`~certbound.observability.redact.redact_event` last, so no secret, private key or whole token
reaches the output. Events logged while a request is served also feed that request's summary
(:func:`~certbound.observability.requestlog.capture_event`): a ``client_auth`` failure's reason code
ends up on the request event.

Every request writes two events, so the two steps that cost the most are done by hand here, to the
same result: the ISO timestamp (:class:`_IsoUtcStamper`) and the JSON line (:func:`_render_json`:
compact, ASCII-only, orjson for the common line); they skip structlog's per-call machinery
(:func:`~certbound.observability.logwrite.emit`, the same steps and line; ``fast_paths=False`` leaves
them to structlog); and the lines logged during one event-loop iteration are written with one
``write`` when it ends (:class:`~certbound.observability.logwrite.LineWriter`, structlog's and
stdlib's lines alike, in the order they were logged). docs/performance.md has the numbers.

Call :func:`configure_logging` once per process (the server does, in the parent and every worker),
before anything logs. uvicorn must then be started with ``log_config=None`` so it keeps its hands off.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson
import structlog
from structlog.typing import EventDict, Processor

from certbound.observability.logwrite import (
    DirectPath,
    LineHandler,
    LineLogger,
    RepeatedLines,
    flush_logs,
    writer_for,
)
from certbound.observability.redact import redact_event
from certbound.observability.requestlog import capture_event

#: orjson writes the common line; None (tests) means json.dumps for every line.
_orjson_dumps: Callable[..., bytes] | None = orjson.dumps
# datetimes and dataclasses go through `default=str` as json.dumps does, not orjson's own format
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

__all__ = ["LogFormat", "configure_logging", "flush_logs"]

LogFormat = Literal["json", "console"]

#: Loggers that install their own handlers or are too chatty at INFO; they propagate to the root.
_OWNED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_QUIET_LOGGERS = {"sqlalchemy": logging.WARNING, "aiosqlite": logging.WARNING, "asyncio": logging.WARNING,
                  "httpx": logging.WARNING, "httpcore": logging.WARNING}  # fmt: skip
#: Nesting past this is rendered as its str() when keys have to be made strings (`_str_keys`).
_MAX_DEPTH = 32


class _IsoUtcStamper:
    """``TimeStamper(fmt="iso", utc=True, key="timestamp")``, same text, for less.

    structlog builds a timezone-aware datetime and formats it on every event; the date and time of
    day change once a second, so they are formatted once a second and the microseconds appended. As
    ``datetime.isoformat()`` does, a whole second has no fraction.
    """

    __slots__ = ("_clock", "_second")

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._second: tuple[int | None, str] = (None, "")  # (epoch second, "YYYY-MM-DDTHH:MM:SS")

    def __call__(self, logger: object, method_name: str, event_dict: EventDict) -> EventDict:
        event_dict["timestamp"] = self.text()
        return event_dict

    def text(self) -> str:
        """The timestamp of now."""
        # datetime.now() floors the system clock to microseconds too
        second, micros = divmod(self._clock() // 1000, 1_000_000)
        cached, prefix = self._second
        if second != cached:  # one tuple: another thread sees the old pair or the new, never half
            prefix = datetime.fromtimestamp(second, UTC).replace(tzinfo=None).isoformat()
            self._second = (second, prefix)
        return f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"


def _shared(stamper: _IsoUtcStamper) -> list[Processor]:
    # No merge_contextvars: nothing binds structlog context variables, and it copies and walks the
    # whole context of the request's task on every event.
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        stamper,
    ]


def _drop_color_message(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    """uvicorn adds an ANSI-coloured copy of its message as an ``extra``; the message is enough."""
    event_dict.pop("color_message", None)
    return event_dict


def _render_json(logger: object, method_name: str, event_dict: EventDict) -> str:
    """The event as one line of compact, ASCII-only JSON; values JSON has no type for as ``str()``.

    For the values events carry (strings, integers, booleans, None, lists, dicts) the line is what
    ``json.dumps(event_dict, default=str, separators=(",", ":"))`` writes; floats may be spelled
    differently (``0.00001``, not ``1e-05``) and NaN becomes ``null``. orjson costs a fraction of
    json.dumps (docs/performance.md), and its line is used when it is the same: all ASCII and no DEL
    (json.dumps escapes those; a raw U+2028 or U+0085 would also split the line for
    ``str.splitlines``). Otherwise, or when orjson refuses the event (a key that is not a str, an int
    beyond 64 bits, a lone surrogate), json.dumps writes it: escaping orjson's line afterwards was
    measured slower than that.
    """
    if _orjson_dumps is not None:
        try:
            line = _orjson_dumps(event_dict, default=str, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError
            pass
        else:
            if line.isascii() and b"\x7f" not in line:
                return line.decode("ascii")
    return _render_json_stdlib(event_dict)


#: json.dumps(default=str, separators=(",", ":")) without building an encoder per call (each
#: encode() keeps its own state, so one is shared).
_JSON_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))


def _render_json_stdlib(event_dict: EventDict) -> str:
    try:
        return _JSON_ENCODER.encode(event_dict)
    except (TypeError, ValueError):  # a key json cannot write (a tuple...): its str(), not a lost event
        return _JSON_ENCODER.encode(_str_keys(event_dict))


def _str_keys(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:  # a cycle, or nesting no event has: its str()
        return str(value)
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else str(k): _str_keys(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_str_keys(v, depth + 1) for v in value]
    return value


def _renderer(fmt: LogFormat, stream: IO[str]) -> Processor:
    if fmt == "console":
        colors = bool(getattr(stream, "isatty", lambda: False)())
        return structlog.dev.ConsoleRenderer(colors=colors)
    return _render_json


def configure_logging(
    level: str = "info",
    fmt: LogFormat = "json",
    *,
    stream: IO[str] | None = None,
    cache_loggers: bool = True,
    fast_paths: bool = True,
) -> logging.Handler:
    """Route structlog and stdlib logging to one handler on `stream` (stderr); returns the handler.

    `cache_loggers=False` lets tests reconfigure later (structlog otherwise binds a logger's
    configuration on its first use). `fast_paths=False` (the `fast_paths` setting) leaves the
    per-request events to structlog's own bound loggers: the same lines, by the general path.
    """
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer = _renderer(fmt, out)
    flush_logs()  # what the previous configuration holds is written first
    writer = writer_for(out)
    # structlog events (the per-request ones: hot path) are finished by structlog itself, with the
    # level filter decided once per logger, not through stdlib logging's records and handlers, which
    # cost more than the rest of the event (docs/performance.md). The two per-request events skip
    # even structlog's per-call machinery (`logwrite.emit`, same steps) unless `fast_paths` is off.
    # Stdlib records (uvicorn, libraries) get the same steps in the formatter below. Both hand their
    # lines to one writer: one write per loop iteration, in the order they were logged.
    stamper = _IsoUtcStamper()  # one for both chains: a test pins one clock
    processors: list[Processor] = [
        *_shared(stamper),
        structlog.processors.StackInfoRenderer(),
        capture_event,
        structlog.processors.format_exc_info,
        redact_event,
        renderer,
    ]
    wrapper_class = structlog.make_filtering_bound_logger(numeric)
    # JSON lines of repeating events are kept up to their timestamp: every step above is a function
    # of the fields alone, but the stamper's (its text is appended) and capture_event's side effect
    # (run again); the console renderer's line does not end with the timestamp, so none is kept
    repeated = RepeatedLines(stamper.text, capture_event) if renderer is _render_json else None
    direct = DirectPath.of(processors, wrapper_class, numeric, repeated) if fast_paths else None
    structlog.configure(
        processors=processors,
        logger_factory=lambda *args: LineLogger(writer, str(args[0]) if args else "", direct),
        wrapper_class=wrapper_class,
        cache_logger_on_first_use=cache_loggers,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(stamper), structlog.stdlib.ExtraAdder()],
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
    handler = LineHandler(writer)
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
