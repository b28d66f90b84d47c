"""What a login keeps from the IdP's answers, for values no session store or datetime can hold.

JSON integers have no bound and Python's json reads NaN and Infinity: an ``expires_in``, an
``auth_time`` or a kept claim such as these once made the login (or the refresh) a 500, in
``datetime.fromtimestamp``, in float arithmetic, or in the session store's JSON writer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from certbound.gateway.login import BrowserLogin, _auth_time, expires_at, kept_claims
from certbound.sessions.session import dump_data

NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (300, NOW + 300),
        (299.5, NOW + 299.5),
        (None, None),
        ("300", None),
        (True, None),
        (10**400, None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_expires_at(expires_in: Any, expected: float | None) -> None:
    assert expires_at(NOW, {"expires_in": expires_in}) == expected


@pytest.mark.parametrize(
    ("auth_time", "expected"),
    [
        (1_750_000_000, datetime(2025, 6, 15, 15, 6, 40, tzinfo=UTC)),
        (1_750_000_000.9, datetime(2025, 6, 15, 15, 6, 40, tzinfo=UTC)),
        (None, None),
        ("1750000000", None),
        (True, None),
        (10**12, None),  # the year 33658
        (-(10**12), None),
        (10**400, None),
        (float("nan"), None),
    ],
)
def test_auth_time(auth_time: Any, expected: datetime | None) -> None:
    assert _auth_time({"auth_time": auth_time}) == expected


def test_kept_claims_are_what_the_session_store_can_hold() -> None:
    claims = {
        "sub": "alice",
        "acr": float("nan"),
        "amr": ["pwd", float("inf")],
        "auth_time": 10**12,
        "name": "Alice",
        "nonce": "not kept",
    }
    kept = kept_claims(claims)
    assert kept == {"sub": "alice", "auth_time": 10**12, "name": "Alice"}
    dump_data({"claims": kept})  # raises on a NaN or an Infinity


def test_session_data_keeps_the_token_members_as_strings_only() -> None:
    """What a login stores from the token response: the refresh token and scope only as strings (as
    a refresh keeps them), so that the session store never meets a NaN or an Infinity."""
    tokens = {"access_token": "at", "refresh_token": float("nan"), "scope": float("inf"), "expires_in": 60}
    clock = type("Clock", (), {"_clock": staticmethod(lambda: NOW)})()
    data = BrowserLogin._session_data(clock, tokens, {"sub": "alice"})  # type: ignore[arg-type]
    dump_data(data)  # raises on a NaN or an Infinity
    assert data["refresh_token"] is None
    assert data["scope"] is None
    tokens = {"access_token": "at", "refresh_token": "rt", "scope": "openid api", "expires_in": 60}
    data = BrowserLogin._session_data(clock, tokens, {"sub": "alice"})  # type: ignore[arg-type]
    assert (data["refresh_token"], data["scope"], data["exp"]) == ("rt", "openid api", NOW + 60)
