"""Logging captured into a string for the duration of a test, and structlog restored afterwards."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

from certbound.observability.logs import configure_logging


@dataclass
class Captured:
    stream: io.StringIO

    def text(self) -> str:
        return self.stream.getvalue()

    def events(self) -> list[dict[str, Any]]:
        """Every line, parsed: a line that is not a JSON object fails the test."""
        out = []
        for line in self.text().splitlines():
            record = json.loads(line)
            assert isinstance(record, dict), line
            out.append(record)
        return out


@pytest.fixture
def captured() -> Iterator[Captured]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, structlog.get_config())
    flags = (logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream, cache_loggers=False)
    try:
        yield Captured(stream)
    finally:
        handlers, level, config = saved
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        structlog.configure(**config)
        logging.captureWarnings(False)
        logging._srcfile, logging.logThreads, logging.logProcesses, logging.logMultiprocessing = flags
