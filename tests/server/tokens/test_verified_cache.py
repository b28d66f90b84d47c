"""The verified-token cache: bounded, entries gone at their expiry."""

from __future__ import annotations

import pytest

from certbound.jose.verified_cache import VerifiedCache


def test_hit_until_expiry() -> None:
    cache: VerifiedCache[str] = VerifiedCache(4)
    cache.put(b"k", "v", expires_at=100.0)
    assert cache.get(b"k", 99.9) == "v"
    assert cache.get(b"k", 100.0) is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_least_recently_used_goes_first() -> None:
    cache: VerifiedCache[int] = VerifiedCache(3)
    for i in range(3):
        cache.put(bytes([i]), i, 1e12)
    assert cache.get(b"\x00", 0) == 0  # 0 is now the most recently used
    cache.put(b"\x03", 3, 1e12)
    assert cache.get(b"\x01", 0) is None
    assert [cache.get(bytes([i]), 0) for i in (0, 2, 3)] == [0, 2, 3]


def test_bounded_whatever_the_traffic() -> None:
    cache: VerifiedCache[int] = VerifiedCache(100)
    for i in range(10_000):
        cache.put(i.to_bytes(4, "big"), i, 1e12)
    assert len(cache) == 100


def test_discard_and_clear() -> None:
    cache: VerifiedCache[int] = VerifiedCache(2)
    cache.put(b"a", 1, 1e12)
    cache.discard(b"a")
    cache.discard(b"missing")
    assert cache.get(b"a", 0) is None
    cache.put(b"b", 2, 1e12)
    cache.clear()
    assert len(cache) == 0


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        VerifiedCache(0)
