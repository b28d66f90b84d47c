"""Logging captured into a string for the duration of a test, and structlog restored afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import pytest
import structlog

from certbound.observability.logs import LogFormat, configure_logging, flush_logs


@dataclass
class Captured:
    stream: io.StringIO

    def text(self) -> str:
        """What was logged so far, the lines still pending in this loop iteration included."""
        flush_logs()
        return self.stream.getvalue()

    def events(self) -> list[dict[str, Any]]:
        """Every line, parsed: a line that is not a JSON object fails the test."""
        out = []
        for line in self.text().splitlines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            out.append(record)
        return out


@contextmanager
def logging_to(
    stream: IO[str], level: str = "info", fmt: LogFormat = "json", *, fast_paths: bool = True
) -> Iterator[logging.Handler]:
    """`configure_logging` to `stream` (loggers not cached) for a while; then as it was before."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, structlog.get_config())
    flags = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    try:
        yield configure_logging(level, fmt, stream=stream, cache_loggers=False, fast_paths=fast_paths)
    finally:
        flush_logs()
        handlers, level_before, config = saved
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level_before)
        structlog.configure(**config)
        logging.captureWarnings(False)
        logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags


@pytest.fixture
def captured() -> Iterator[Captured]:
    stream = io.StringIO()
    with logging_to(stream):
        yield Captured(stream)
