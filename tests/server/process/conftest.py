"""Fixtures for the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.process.serverproc import RunningServer, start_server


@pytest.fixture
def dev_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server([], tmp_path / "data")
    yield server
    server.stop()
