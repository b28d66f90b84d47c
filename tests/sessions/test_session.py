"""The session record: ids, their digest, limits, purposes, JSON data, deadlines, and what repr hides."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from certbound.sessions.session import (
    Session,
    SessionLimits,
    check_purpose,
    dump_data,
    hash_session_id,
    is_session_id,
    load_data,
    new_session_id,
    whole_seconds,
)

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _session(**changes: object) -> Session:
    fields: dict[str, object] = {
        "id": new_session_id(),
        "purpose": "as-login",
        "subject": "alice",
        "auth_time": NOW,
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=8),
        "last_seen_at": NOW,
        "idle_timeout": timedelta(minutes=30),
        "data": {"access_token": "secret-token"},
    }
    fields.update(changes)
    return Session(**fields)  # type: ignore[arg-type]


def test_session_ids_are_256_random_bits() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    for value in ids:
        assert is_session_id(value)
        assert len(value) == 43  # 256 bits, base64url, no padding


@pytest.mark.parametrize(
    "value", ["", "a" * 42, "a" * 44, "a" * 42 + "=", "a" * 42 + "+", None, 42, b"a" * 43, "é" * 43]
)
def test_is_session_id_refuses_other_shapes(value: object) -> None:
    assert not is_session_id(value)


def test_the_store_key_is_the_sha256_of_the_id() -> None:
    session_id = new_session_id()
    assert hash_session_id(session_id) == hashlib.sha256(session_id.encode()).hexdigest()
    assert _session(id=session_id).id_sha256 == hash_session_id(session_id)


def test_repr_leaves_out_the_id_and_the_data() -> None:
    session = _session()
    text = repr(session)
    assert session.id not in text
    assert "secret-token" not in text
    assert "alice" in text  # the rest is there, for debugging


def test_valid_until_is_the_earlier_of_absolute_and_idle() -> None:
    assert _session().valid_until == NOW + timedelta(minutes=30)
    assert _session(idle_timeout=None).valid_until == NOW + timedelta(hours=8)
    late = _session(last_seen_at=NOW + timedelta(hours=7, minutes=50))
    assert late.valid_until == NOW + timedelta(hours=8)  # idle never reaches past the absolute expiry
    assert late.is_valid(NOW + timedelta(hours=8) - timedelta(seconds=1))
    assert not late.is_valid(NOW + timedelta(hours=8))


@pytest.mark.parametrize(
    ("absolute", "idle"),
    [
        (timedelta(0), None),
        (timedelta(seconds=-5), None),
        (timedelta(hours=1), timedelta(0)),
        (timedelta(seconds=1.5), None),
        (timedelta(hours=1), timedelta(milliseconds=1)),
    ],
)
def test_limits_are_positive_whole_seconds(absolute: timedelta, idle: timedelta | None) -> None:
    with pytest.raises(ValueError, match="session limit"):
        SessionLimits(absolute, idle)


@pytest.mark.parametrize("purpose", ["", "has space", "tab\t", "é", "x" * 201, None])
def test_purpose_is_a_printable_name(purpose: object) -> None:
    with pytest.raises(ValueError, match="purpose"):
        check_purpose(purpose)  # type: ignore[arg-type]


def test_purpose_accepts_route_names() -> None:
    assert check_purpose("gateway:orders/v1") == "gateway:orders/v1"


def test_times_are_whole_utc_seconds_and_never_naive() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert whole_seconds(datetime(2026, 1, 1, 14, 0, 0, 999_999, tzinfo=plus_two)) == NOW
    with pytest.raises(ValueError, match="naive"):
        whole_seconds(datetime(2026, 1, 1))


def test_data_is_plain_json_and_reads_back_the_same() -> None:
    data = {"tokens": {"access": "a", "expires_in": 300, "scopes": ["x", "y"]}, "n": 1.5, "ok": None}
    assert load_data(dump_data(data)) == data


@pytest.mark.parametrize(
    "data",
    [
        {"when": datetime(2026, 1, 1, tzinfo=UTC)},  # not JSON
        {"x": float("nan")},  # not JSON either
        {1: "int key"},  # JSON would hand back "1"
        {"t": (1, 2)},  # JSON would hand back a list
        ["not", "an", "object"],
    ],
)
def test_data_that_would_not_read_back_the_same_is_refused(data: object) -> None:
    with pytest.raises(ValueError, match="session data"):
        dump_data(data)  # type: ignore[arg-type]
