"""A session's data sealed at rest under the store's KEK, bound to the row that holds it.

``data`` may hold tokens (the gateway keeps its access and refresh tokens there), so a copy of the
database must not yield them: it is sealed with `certbound.sealing.Sealer`, as ``client_secret_jwt``
secrets and private keys are. The aad names the session (the SHA-256 of its id) and the columns that
say whose it is and for what: purpose, subject and ``auth_time``. A sealed value copied to another
row, or a row whose subject or purpose was edited in place, then fails to open, and the store refuses
the session instead of handing someone else's tokens or identity to the cookie's holder.

Any backend (SQL now, Redis later) seals through here, so they all read each other's values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from certbound.sealing import Sealer
from certbound.sessions.session import dump_data, load_data

__all__ = ["open_data", "seal_data"]

_DOMAIN = "certbound.session.data"  # never the cookie's domain: a sealed value fits one place only


def _aad(id_sha256: str, purpose: str, subject: str | None, auth_time: datetime | None) -> bytes:
    stamp = None if auth_time is None else int(auth_time.timestamp())
    return json.dumps([_DOMAIN, id_sha256, purpose, subject, stamp], separators=(",", ":")).encode("utf-8")


def seal_data(
    sealer: Sealer,
    data: Mapping[str, Any],
    *,
    id_sha256: str,
    purpose: str,
    subject: str | None,
    auth_time: datetime | None,
) -> str:
    """`data` as JSON, sealed for exactly this session, purpose, subject and ``auth_time``."""
    return sealer.seal(dump_data(data), aad=_aad(id_sha256, purpose, subject, auth_time))


def open_data(
    sealer: Sealer,
    sealed: str,
    *,
    id_sha256: str,
    purpose: str,
    subject: str | None,
    auth_time: datetime | None,
) -> dict[str, Any]:
    """The data sealed by `seal_data` for the same row; `certbound.sealing.SealingError` when the
    value was sealed under another KEK, tampered with, or belongs to another row or subject."""
    return load_data(sealer.open(sealed, aad=_aad(id_sha256, purpose, subject, auth_time)))
