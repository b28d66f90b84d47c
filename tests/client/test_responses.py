"""What the client library reads from a token response's numbers."""

from __future__ import annotations

from typing import Any

import pytest

from certbound.client.responses import TokenResponse


@pytest.mark.parametrize(
    ("expires_in", "read"),
    [
        (600, 600),
        (599.9, 599),
        (None, None),
        ("600", None),
        (True, None),
        # JSON integers have no bound and Python's json reads NaN and Infinity: none is a lifetime
        # (int() raised OverflowError or ValueError on them, out of the caller's code)
        (10**400, None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_expires_in_is_a_finite_number_or_nothing(expires_in: Any, read: int | None) -> None:
    response = TokenResponse({"access_token": "t", "expires_in": expires_in}, "", obtained_at=1000.0)
    assert response.expires_in == read
    assert response.expires_at == (None if read is None else 1000.0 + read)
