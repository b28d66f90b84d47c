"""Where log lines go: one ``write`` per event-loop iteration, and a direct path for the hot events.

Every request logs two events (``client_auth`` and ``request``); written one ``write`` + ``flush``
each, the system calls alone were a visible share of a request's CPU on the wire
(docs/performance.md). :class:`LineWriter` collects the lines logged during one iteration of the
running event loop and writes them together when the iteration ends (a ``loop.call_soon`` callback);
without a running loop (CLI commands, start-up, other threads) a line is written at once, after any
lines still pending, so the order of lines is the order they were logged in, whoever logged them.
Pending lines are written at the latest at interpreter exit (:func:`flush_logs`, registered with
``atexit``); a ``SIGKILL`` can lose at most the lines of the loop iteration it interrupts. To a pipe
or a socket (the workers share stderr), a write holds whole lines and at most ``PIPE_BUF`` bytes, so
that two workers' lines never mix.

:func:`emit` is ``getattr(log, level)(event, **fields)`` for the two per-request events, without
structlog's per-call machinery (the lazy proxy's ``__getattr__``, the bound method, two copies of the
fields): when structlog's configuration is still what :func:`~certbound.observability.logs.configure_logging`
installed it does the same steps itself (:class:`DirectPath`), and otherwise (tests capturing events,
another configuration, ``fast_paths`` off) it calls structlog. What that relies on in structlog (the
private attributes it reads, the behaviour it reproduces) is listed in :data:`STRUCTLOG_INTERNALS`,
each checked by a test that names the one that changed (tests/observability/test_structlog_internals.py).
A ``client_auth`` event repeats field for field on every request of a client: its JSON line is kept
up to its timestamp and written again with a new one (:class:`RepeatedLines`, ``repeats=True``); a
``request`` event repeats but for its ``duration_ms``: its line is kept with a hole for that value
(``varying="duration_ms"``).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import select
import stat
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

import structlog
from structlog.typing import Processor

__all__ = [
    "DirectPath",
    "LineHandler",
    "LineLogger",
    "LineWriter",
    "RepeatedLines",
    "emit",
    "flush_logs",
    "writer_for",
]

#: Pending text past this many characters is written at once, inside the loop iteration.
MAX_PENDING: Final = 64 * 1024

_writers: weakref.WeakSet[LineWriter] = weakref.WeakSet()


class LineWriter:
    """Writes lines to a text stream: inside a running loop, one ``write`` per loop iteration."""

    def __init__(self, stream: IO[str], max_pending: int = MAX_PENDING) -> None:
        self.stream = stream
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._size = 0
        self._scheduled: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on
        # reentrant: a line logged while writing (a finalizer, a signal handler) must not deadlock
        self._lock = threading.RLock()
        self._atomic = _atomic_write_size(stream)
        _writers.add(self)

    def write_line(self, line: str) -> None:
        """Write `line` and a newline: at the end of the loop iteration, or at once without a loop."""
        loop = _running_loop()  # None in a thread without one (CLI, start-up): written at once
        with self._lock:
            if loop is None and not self._pending:
                self._write(line + "\n")
                return
            self._pending.append(line)
            if loop is None:
                self._write_pending()
                return
            self._size += len(line) + 1
            if self._size > self._max_pending:
                self._write_pending()
            elif self._scheduled is not loop:
                self._scheduled = loop
                loop.call_soon(self._end_of_iteration)

    def flush(self) -> None:
        """Write every pending line now (at shutdown, at exit, before reading the output in tests)."""
        with self._lock:
            self._write_pending()

    def _end_of_iteration(self) -> None:
        with self._lock:
            self._scheduled = None
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        lines, self._pending, self._size = self._pending, [], 0
        for chunk in _chunks(lines, self._atomic):
            if not self._write(chunk):
                break  # the rest would fail the same way: lost too

    def _write(self, text: str) -> bool:
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception as exc:  # a closed stream, EPIPE: these lines are lost, the caller goes on
            _report_lost(exc)
            return False
        return True


#: (hook, loop): the async generator hook of the thread `loop` was last found running in, for that
#: run (:func:`_running_loop`). One slot: a worker runs one loop, in one thread.
_last_run: tuple[object, asyncio.AbstractEventLoop | None] = (object(), None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """``asyncio.get_running_loop()``, or None, without its system call in the common case.

    CPython 3.11's ``get_running_loop`` calls ``getpid()`` every time (to notice a fork), and on a VM
    that system call was ~6% of a worker's CPU on the wire (two lines per request). A loop's
    ``run_forever`` (asyncio's and uvloop's) installs its async generator hooks, which are per
    thread, made anew for each run, and restored when the run ends: while the calling thread's hook
    is the one seen when the loop was last found running, this thread is still in that run. (Not
    ``loop.is_running()``: that is also true while the loop runs in another thread, and a line
    queued there with ``call_soon`` from this one would wait for that loop to wake; ``call_soon`` is
    not thread-safe either.) A loop that installs no hooks of its own is asked for every time. A
    fork forgets the run (:func:`_forget_in_child`): the child inherits the hooks, not the loop.
    """
    global _last_run
    hook, loop = _last_run
    current = sys.get_asyncgen_hooks()[0]
    if current is hook:
        return loop
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    if getattr(current, "__self__", None) is loop:
        _last_run = (current, loop)
    return loop


def _atomic_write_size(stream: IO[str]) -> int | None:
    """``PIPE_BUF`` if `stream` is a pipe or a socket, else None (no limit).

    The workers share stderr. A write of up to ``PIPE_BUF`` bytes to a pipe is never interleaved with
    another process's writes, a longer one may be (when the pipe is full): one write per line kept
    lines whole, and so do writes of whole lines up to ``PIPE_BUF`` bytes. A regular file has no such
    limit (Linux serializes writes at a shared file offset).
    """
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):  # io.StringIO, a closed or a wrapped stream
        return None
    return select.PIPE_BUF if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) else None


def _chunks(lines: list[str], limit: int | None) -> list[str]:
    """`lines` joined with newlines into as few texts as possible, each (unless one line alone is
    longer) at most `limit` bytes in UTF-8."""
    if limit is None:
        return ["\n".join(lines) + "\n"]
    chunks: list[str] = []
    start, size = 0, 0
    for end, line in enumerate(lines):
        length = (len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))) + 1
        if size + length > limit and end > start:
            chunks.append("\n".join(lines[start:end]) + "\n")
            start, size = end, 0
        size += length
    chunks.append("\n".join(lines[start:]) + "\n")
    return chunks


def _report_lost(exc: Exception) -> None:
    """What ``logging.Handler.handleError`` does: a traceback on stderr, if that still works."""
    if not (logging.raiseExceptions and sys.stderr):
        return
    try:
        sys.stderr.write("--- Logging error: log lines lost ---\n")
        traceback.print_exception(exc, file=sys.stderr)
    except Exception:  # noqa: S110 - stderr is the broken stream itself: nowhere left to say it
        pass


def writer_for(stream: IO[str]) -> LineWriter:
    """The writer of `stream`: one per stream, so that every logger writing there shares the order."""
    for writer in list(_writers):
        if writer.stream is stream:
            return writer
    return LineWriter(stream)


def flush_logs() -> None:
    """Write the pending lines of every writer: at worker shutdown and at interpreter exit."""
    for writer in list(_writers):
        writer.flush()


def _forget_in_child() -> None:
    """In a forked child: the parent's pending lines are the parent's to write (it will), and a lock
    another thread held at the fork would never be released here."""
    global _last_run
    _last_run = (object(), None)
    for writer in list(_writers):
        writer._lock = threading.RLock()
        writer._pending, writer._size, writer._scheduled = [], 0, None


atexit.register(flush_logs)
os.register_at_fork(after_in_child=_forget_in_child)


class LineHandler(logging.Handler):
    """A stdlib handler writing formatted records through the same :class:`LineWriter` as structlog,
    so that a record logged after a structlog event is written after it."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except RecursionError:  # as logging.StreamHandler does
            raise
        except Exception:
            self.handleError(record)
            return
        self.writer.write_line(line)

    def flush(self) -> None:
        self.writer.flush()


#: What :func:`emit` relies on in structlog: the private attributes it reads and the behaviour it
#: reproduces. tests/observability/test_structlog_internals.py checks each and names the one that
#: changed; :meth:`DirectPath.of` checks the attributes at configuration (if they are gone: no
#: direct path, structlog does every event).
STRUCTLOG_INTERNALS: Final[Mapping[str, str]] = {
    "BoundLoggerBase._logger": "a bound logger's wrapped logger (the LineLogger carrying the DirectPath)",
    "BoundLoggerBase._processors": "a bound logger's processors: the list given to structlog.configure",
    "BoundLoggerBase._process_event": "the event dict: the context's copy, the call's fields, then 'event'",
    "BoundLoggerBase._proxy_to_logger": (
        "a str from the last processor goes to the wrapped logger's method named after the level; "
        "DropEvent drops the event"
    ),
    "make_filtering_bound_logger": (
        "a method below the minimum level does nothing; the others run the processors under their name"
    ),
    "add_log_level": "'level' is the method name, for debug, info, warning, error and critical",
    "add_logger_name": "without '_record', 'logger' is the wrapped logger's name",
    "StackInfoRenderer": "changes nothing in an event without 'stack_info'",
    "ExceptionRenderer": "format_exc_info is one, and changes nothing in an event without 'exc_info'",
    "capture_logs": "changes the configured processor list in place (emit compares it with its copy)",
    "BoundLoggerLazyProxy.bind": "bind() without values gives the bound logger a call would use",
}

#: Processors :func:`emit` does inline (the level and the logger name), first in the list.
_INLINE: Final = (structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name)
#: Processors with nothing to do for an event without ``stack_info`` or ``exc_info`` (emit hands
#: such events to structlog).
_IDLE_WITHOUT_TRACEBACKS: Final = (
    structlog.processors.StackInfoRenderer,
    structlog.processors.ExceptionRenderer,
)


#: The values an event whose line is kept may have (no containers: their contents' types would count).
#: No floats: 0.0 and -0.0 are one key but two JSON texts, and each NaN is a key of its own.
_KEEPABLE: Final = frozenset({str, bool, int, type(None)})
#: The rendered JSON line of an event ends with its timestamp, the last field the steps add.
_STAMP_KEY: Final = '"timestamp":"'
_STAMP_END: Final = '"}'


@dataclass(slots=True)
class RepeatedLines:
    """The lines of events that repeat field for field (a client's ``client_auth`` on every request),
    kept up to the timestamp, so that the next such event skips the steps that made it.

    Given by :func:`~certbound.observability.logs.configure_logging`, which knows its steps: every one
    a function of the event's fields alone, but the time stamp (`stamp` writes its text) and the
    request facts noted (`note`, run again on every event for its side effect). A line is kept only
    when it ends with the timestamp just stamped (so an event bringing its own ``timestamp`` field is
    never kept) and is at most `max_line` characters (a client chooses its certificate's names: a
    100 KB subject is written each time, not kept); at most `max_lines`, forgotten all at once when
    full.

    An event that repeats but for one float (the ``request`` event's ``duration_ms``) is kept in
    `holed`: the line before that value and the line after it up to the timestamp, so that the next
    one writes its own value between them (:func:`emit`'s `varying`).
    """

    stamp: Callable[[], str]
    note: Processor
    max_lines: int = 1024
    max_line: int = 4096
    lines: dict[tuple[Any, ...], str] = field(default_factory=dict)
    holed: dict[tuple[Any, ...], tuple[str, str]] = field(default_factory=dict)

    def _prefix(self, line: str, stamped: object) -> str | None:
        """`line` without its timestamp's text and the end, if it may be kept."""
        if len(line) > self.max_line or not isinstance(stamped, str):
            return None
        if not line.endswith(_STAMP_KEY + stamped + _STAMP_END):
            return None
        return line[: len(line) - len(stamped) - len(_STAMP_END)]

    def keep(self, key: tuple[Any, ...], line: str, stamped: object) -> None:
        prefix = self._prefix(line, stamped)
        if prefix is None:
            return
        if len(self.lines) >= self.max_lines:
            self.lines.clear()
        self.lines[key] = prefix

    def keep_holed(self, key: tuple[Any, ...], line: str, stamped: object, name: str, text: str) -> None:
        """Keep `line` with a hole where the top-level field `name` has the value `text`."""
        prefix = self._prefix(line, stamped)
        if prefix is None:
            return
        # the field's key, unescaped: only the top level's own key can match (quotes inside strings,
        # keys included, are escaped, and no value kept is a container)
        needle = f'"{name}":{text}'
        start = prefix.find(needle)
        if start < 0:
            return
        end = start + len(needle)
        if prefix[end] not in ",}":  # 1.5 found where the value is 1.55: not that field's value
            return
        if len(self.holed) >= self.max_lines:
            self.holed.clear()
        self.holed[key] = (prefix[: end - len(text)], prefix[end:])


@dataclass(frozen=True, slots=True)
class DirectPath:
    """The structlog configuration :func:`emit` may bypass, and the steps it does instead.

    `processors` is the list given to ``structlog.configure`` and `expected` its contents then:
    ``structlog.testing.capture_logs`` changes the list in place, and :func:`emit` then leaves the
    event to structlog. `steps` are the processors that change an event without ``stack_info``,
    ``exc_info`` or ``_record``, in order, after the level and logger name; `render` is the last one.
    Build it with :meth:`of`, so that the steps always follow the list.
    """

    processors: list[Processor]
    expected: list[Processor]
    wrapper_class: type[Any]
    min_level: int
    steps: Sequence[Processor]
    render: Processor
    repeated: RepeatedLines | None = None

    @classmethod
    def of(
        cls,
        processors: list[Processor],
        wrapper_class: type[Any],
        min_level: int,
        repeated: RepeatedLines | None = None,
    ) -> DirectPath | None:
        """The direct path of `processors` (the level and logger name first, the renderer last):
        every other processor but those idle for these events, so a processor added to the list is
        never skipped. None (structlog does every event) when the list starts otherwise or when
        `wrapper_class` does not keep its wrapped logger and processors where :func:`emit` reads them.
        """
        if len(processors) < len(_INLINE) + 1 or tuple(processors[: len(_INLINE)]) != _INLINE:
            return None
        if not _keeps_logger_and_processors(wrapper_class, processors):
            return None
        *before, render = processors[len(_INLINE) :]
        steps = tuple(p for p in before if not isinstance(p, _IDLE_WITHOUT_TRACEBACKS))
        return cls(processors, list(processors), wrapper_class, min_level, steps, render, repeated)

    def serves(self, bound: Any) -> bool:
        """Whether structlog would run this configuration for `bound` (a resolved bound logger)."""
        return (
            type(bound) is self.wrapper_class
            and bound._processors is self.processors
            and not structlog.get_context(bound)
            and self.processors == self.expected  # item by item, identity first
        )


def _keeps_logger_and_processors(wrapper_class: type[Any], processors: list[Processor]) -> bool:
    """Whether a `wrapper_class` logger keeps what it was built with as ``_logger`` and
    ``_processors`` (STRUCTLOG_INTERNALS), the very objects, as structlog's own bound loggers do."""
    wrapped = object()
    try:
        bound = wrapper_class(wrapped, processors=processors, context={})
    except Exception:
        return False
    return getattr(bound, "_logger", None) is wrapped and getattr(bound, "_processors", None) is processors


class LineLogger:
    """structlog's wrapped logger: hands each rendered line to a :class:`LineWriter`.

    It carries the logger's name (for ``add_logger_name``) and, when configured by
    :func:`~certbound.observability.logs.configure_logging`, the :class:`DirectPath` :func:`emit` uses.
    """

    __slots__ = ("direct", "name", "writer")

    def __init__(self, writer: LineWriter, name: str, direct: DirectPath | None = None) -> None:
        self.writer = writer
        self.name = name
        self.direct = direct

    def msg(self, message: str) -> None:
        self.writer.write_line(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


_LEVELS: Final = {name.lower(): number for name, number in logging.getLevelNamesMapping().items()}


def emit(
    log: Any,
    level: str,
    event: str,
    fields: dict[str, Any],
    *,
    repeats: bool = False,
    varying: str | None = None,
) -> None:
    """``getattr(log, level)(event, **fields)``: the same line, without structlog's per-call machinery
    when the configuration is :func:`~certbound.observability.logs.configure_logging`'s.

    `level` is one of ``debug``, ``info``, ``warning``, ``error``, ``critical``. `fields` becomes the
    event dict: the caller must not use it afterwards. `repeats`: events of this kind often repeat
    field for field; their line is then kept (:class:`RepeatedLines`) and written again with a new
    timestamp. `varying` (with `repeats`): the name of a float field that differs from event to event
    (a duration); the line is kept with a hole for it, when the float is written without an exponent
    (then JSON's spelling of it is ``repr``'s, whichever renderer wrote the line).
    """
    bound = log.bind()  # structlog's own resolution: the cached logger, or a new one if not cached
    target: Any = getattr(bound, "_logger", None)
    direct = target.direct if isinstance(target, LineLogger) else None
    if (
        direct is None
        or "event" in fields  # structlog refuses it (TypeError): let it
        or "stack_info" in fields  # the steps skipped below would act on these
        or "exc_info" in fields
        or "_record" in fields
        or not direct.serves(bound)
    ):
        getattr(bound, level)(event, **fields)
        return
    if _LEVELS[level] < direct.min_level:
        return
    repeated = direct.repeated if repeats else None
    key: tuple[Any, ...] | None = None
    hole: tuple[str, float, str] | None = None  # the varying field, its value and its JSON text
    if repeated is not None:
        if varying is not None:
            value = fields.get(varying)
            if type(value) is float:
                text = repr(value)
                if "e" not in text and "n" not in text:  # 1e-05, inf, nan: orjson and json.dumps differ
                    hole = (varying, value, text)
                    fields[varying] = None  # for the key alone; put back below (same position)
        types = tuple(map(type, fields.values()))  # 1, 1.0 and True are equal keys, not equal JSON
        if _KEEPABLE.issuperset(types):
            key = (level, event, target.name, types, *fields.items())
        kept: str | None = None
        if hole is not None:
            fields[hole[0]] = hole[1]
            parts = repeated.holed.get(key) if key is not None else None
            if parts is not None:
                kept = parts[0] + hole[2] + parts[1]
        elif key is not None:
            kept = repeated.lines.get(key)
        if kept is not None:
            fields["event"] = event
            repeated.note(target, level, fields)
            target.writer.write_line(kept + repeated.stamp() + _STAMP_END)
            return
    # structlog's event dict: the context (empty), the fields, then the event; then add_log_level and
    # add_logger_name, by hand; StackInfoRenderer and format_exc_info have nothing to do
    event_dict: Any = fields
    event_dict["event"] = event
    event_dict["level"] = level
    event_dict["logger"] = target.name
    try:
        for step in direct.steps:
            event_dict = step(target, level, event_dict)
        line = direct.render(target, level, event_dict)
    except structlog.DropEvent:
        return
    if key is not None and repeated is not None and isinstance(line, str):
        stamped = event_dict.get("timestamp")
        if hole is not None:
            repeated.keep_holed(key, line, stamped, hole[0], hole[2])
        else:
            repeated.keep(key, line, stamped)
    target.writer.write_line(line)
