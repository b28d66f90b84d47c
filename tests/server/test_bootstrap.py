"""The parent's start-up work (`certbound.server.bootstrap.initialize`) follows the settings it is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from certbound.config import Settings
from certbound.server import bootstrap
from certbound.store.sql import SqlStore


async def test_initialize_opens_the_store_on_the_path_the_fast_paths_setting_chooses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``fast_paths = false`` is for diagnosis: the parent, too, then reads the store through its
    engine (the generation read of the key check), not through the SQLite side connection."""
    opened: list[SqlStore] = []
    real_open_store = bootstrap.open_store

    def recording_open_store(url: str, **options: Any) -> SqlStore:
        store = real_open_store(url, **options)
        opened.append(store)
        return store

    monkeypatch.setattr(bootstrap, "open_store", recording_open_store)
    for fast_paths in (True, False):
        data = tmp_path / f"fast-{fast_paths}"
        data.mkdir()
        settings = Settings(issuer="https://as.example", data_dir=data, fast_paths=fast_paths)
        await bootstrap.initialize(settings)
    assert [store.fast_paths for store in opened] == [True, False]
