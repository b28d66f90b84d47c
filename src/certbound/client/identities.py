"""Which client certificate to present now: certificate rotation without a failed request.

A client can hold the old and the new certificate at once. Each has a ``use_from`` time; the client
presents the one whose time has come most recently. New connections use it from that moment (pools are
keyed by certificate), and tokens bound to the old certificate are not reused with the new one (the
token cache is keyed by certificate too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from certbound.client.config import TLSIdentity
from certbound.client.tls import LoadedIdentity, load_identity

__all__ = ["IdentitySelector"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class IdentitySelector:
    """Holds every configured identity and answers which one is current."""

    def __init__(self, identities: Sequence[TLSIdentity], now: Callable[[], datetime]) -> None:
        self._loaded = [load_identity(i) for i in identities]
        self._now = now

    @property
    def all(self) -> tuple[LoadedIdentity, ...]:
        return tuple(self._loaded)

    def current(self) -> LoadedIdentity | None:
        """The identity with the latest `use_from` that has passed (None when there is none at all).

        A certificate that is not valid yet (``notBefore`` in the future) is passed over while an older
        one is usable, so a rotation scheduled a little too early does not break requests.
        """
        if not self._loaded:
            return None
        now = self._now()
        started = [i for i in self._loaded if (i.identity.use_from or _EPOCH) <= now]
        if not started:
            started = [min(self._loaded, key=lambda i: i.identity.use_from or _EPOCH)]
        valid = [i for i in started if i.certificate.not_valid_before_utc <= now] or started
        return max(valid, key=lambda i: i.identity.use_from or _EPOCH)
