"""Fixtures for the token tests: a sealer, a fixed clock, cached RSA keys, an in-memory key store."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from certbound.jose.algorithms import generate_signing_key
from certbound.sealing import Sealer
from certbound.store.interface import SigningKeyExists
from certbound.store.records import KeyState, SigningKey

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def sealer() -> Sealer:
    return Sealer(b"k" * 32)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def keys_by_alg(sealer: Sealer) -> dict[str, SigningKey]:
    """One key per algorithm, generated once (RSA generation is slow)."""
    from certbound.jose.algorithms import SIGNING_ALGS

    return {alg: generate_signing_key(alg, now=NOW, state="active", sealer=sealer) for alg in SIGNING_ALGS}


class MemoryKeyStore:
    """The signing-key part of the Store protocol, in memory, with the same state semantics as SqlStore.

    `pause_after_list` (an asyncio.Barrier): its first `parties` list calls wait for each other, so that
    concurrent callers all read before any of them writes.
    """

    def __init__(self) -> None:
        self.keys: dict[str, SigningKey] = {}
        self.gen = 0
        self.generation_calls = 0
        self.list_calls = 0
        self.pause_after_list: asyncio.Barrier | None = None
        self.paused = 0

    async def generation(self) -> int:
        self.generation_calls += 1
        return self.gen

    async def add_signing_key(self, key: SigningKey) -> None:
        if key.kid in self.keys:
            raise SigningKeyExists(key.kid)
        self.keys[key.kid] = key
        self.gen += 1

    async def list_signing_keys(self) -> list[SigningKey]:
        self.list_calls += 1
        out = list(self.keys.values())
        barrier = self.pause_after_list
        if barrier is not None and self.paused < barrier.parties:
            self.paused += 1
            await barrier.wait()
        return out

    async def set_signing_key_state(
        self, kid: str, state: KeyState, at: datetime, publish_until: datetime | None = None
    ) -> bool:
        key = self.keys.get(kid)
        if key is None:
            return False
        changes: dict[str, Any] = {"state": state}
        if state == "active":
            changes["activated_at"] = at
        elif state == "retired":
            changes["retired_at"] = at
        if publish_until is not None:
            changes["publish_until"] = publish_until
        self.keys[kid] = dataclasses.replace(key, **changes)
        self.gen += 1
        return True


@pytest.fixture
def memory_store() -> MemoryKeyStore:
    return MemoryKeyStore()
