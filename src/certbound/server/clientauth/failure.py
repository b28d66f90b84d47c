"""Why an authentication failed: one exception inside the package, carrying a catalogued reason code.

Methods raise :class:`AuthFailure` with a reason code; only the registry turns it into the wire error
(``invalid_client``, the same body and headers whatever the reason, so an unknown client and a wrong
credential look identical from outside). The reason and its detail go to the log event only.
The codes, with their meaning and advice, are :data:`certbound.reasons.CLIENT_AUTH`'s; :data:`REASONS`
is that section as code -> meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from certbound.reasons import CLIENT_AUTH

__all__ = ["REASONS", "AuthFailure"]

#: The client-authentication codes and their meanings (the ``client_auth`` counter's reason labels).
REASONS: Final[Mapping[str, str]] = MappingProxyType({r.code: r.meaning for r in CLIENT_AUTH.reasons})


class AuthFailure(Exception):
    """A refused authentication: `reason` is a code from :data:`REASONS`, `detail` says more (log only).

    `fields` are facts the log event carries as fields of their own (the revocation source and time of
    ``cert.revoked``). Neither may ever hold a secret, an assertion or a token.
    """

    def __init__(self, reason: str, detail: str = "", fields: Mapping[str, str] | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.fields = fields
