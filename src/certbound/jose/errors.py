"""Why a JWT was refused: one exception type for every check in `certbound.jose`, with a reason code.

Callers branch on :attr:`JwtError.reason`, never on the message. The codes (``jws.*`` for the
signature's envelope, ``jwt.*`` and ``id_token.*`` for the claim profiles, ``cnf.*`` for certificate
binding; the client-assertion profile raises the server's ``assertion.*`` codes) are catalogued with
every other code in :mod:`certbound.reasons`. `detail` says more, for a log: it never holds the
token, a key or a secret.
"""

from __future__ import annotations

from certbound.reasons import is_known

__all__ = ["JwtError"]


class JwtError(Exception):
    """A refused JWT: `reason` is a catalogued code, `detail` says more (logs only)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        if not is_known(reason):
            raise ValueError(f"unknown reason code {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
