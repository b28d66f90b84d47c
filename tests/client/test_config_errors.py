"""The client library reports a configuration it cannot use as its own `ClientConfigError`.

`TLSIdentity` moved to `certbound.net.tls` (shared with every outbound call), whose errors are
`TLSConfigError`; a library user who catches the client's `ClientError` must still catch a client
identity it was given wrong, as before the move.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from certbound.client import ClientConfigError, ClientError, TLSIdentity
from certbound.net.tls import TLSConfigError


def test_a_naive_use_from_is_a_client_config_error(tmp_path: Path) -> None:
    with pytest.raises(ClientConfigError, match="timezone-aware") as refused:
        TLSIdentity(tmp_path / "c.pem", tmp_path / "c.key", use_from=datetime(2030, 1, 1))
    assert isinstance(refused.value, ClientError)


def test_the_client_identity_is_the_shared_one(tmp_path: Path) -> None:
    """What net's TLS code accepts, with the same fields; net's own class still says TLSConfigError."""
    when = datetime(2030, 1, 1, tzinfo=UTC)
    identity = TLSIdentity(tmp_path / "c.pem", tmp_path / "c.key", use_from=when, key_password="pw")
    assert (identity.cert_file, identity.key_file, identity.use_from) == (
        tmp_path / "c.pem",
        tmp_path / "c.key",
        when,
    )
    assert "pw" not in repr(identity)
    from certbound.net import tls

    assert isinstance(identity, tls.TLSIdentity)
    with pytest.raises(TLSConfigError):
        tls.TLSIdentity(tmp_path / "c.pem", tmp_path / "c.key", use_from=datetime(2030, 1, 1))
