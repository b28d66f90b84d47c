"""One real `certbound serve --dev` for most of the matrix (package scope): see world.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.wire.world import World, start_world


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("e2e-auth"))
    yield w
    w.server.stop()
    w.jwks.stop()
