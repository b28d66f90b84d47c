"""Which client certificate to present now: rotation without a failed request, and files that change.

A client can hold the current certificate and the next one at once. Each starts at its ``use_from``
time, or, without one, at its certificate's ``notBefore``: the client presents the one whose start
came most recently, skipping one that has expired while another is valid. So the next certificate can
be installed beside the current one ahead of time and takes over on its own. New connections use it
from that moment (pools are keyed by certificate), and tokens bound to the old certificate are not
reused with the new one (the token cache is keyed by certificate too).

The files are watched: at most once a second (on use), each identity's certificate and key files are
looked at (``stat``), and when they changed they are read again, so a certificate renewed in place
(cert-manager, certbot, an operator's ``cp``) is presented from then on without a restart. A new
certificate is taken only once its key file holds its key: while one was written and not yet the
other, the previous pair stays in use (and a warning says so).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from certbound.client.errors import ClientConfigError
from certbound.client.tls import LoadedIdentity, Trust, build_ssl_context, load_identity
from certbound.net.tls import TLSIdentity

__all__ = ["IdentitySelector"]

log = logging.getLogger("certbound.client")

Stamp = tuple[int, int, int, int] | None  # (cert mtime_ns, cert size, key mtime_ns, key size)


def _stamp(identity: TLSIdentity) -> Stamp:
    try:
        cert, key = os.stat(identity.cert_file), os.stat(identity.key_file)
    except OSError:
        return None
    return (cert.st_mtime_ns, cert.st_size, key.st_mtime_ns, key.st_size)


def _load_pair(identity: TLSIdentity) -> LoadedIdentity:
    """The identity read again, refused (ClientConfigError) unless the key is the certificate's."""
    loaded = load_identity(identity)
    build_ssl_context(Trust("insecure"), loaded)  # loads the pair: the check every connection makes
    return loaded


@dataclass
class _Held:
    loaded: LoadedIdentity
    stamp: Stamp
    refused: Stamp = None  # a stamp whose files could not be used (not warned about again)

    @property
    def start(self) -> datetime:
        return self.loaded.identity.use_from or self.loaded.certificate.not_valid_before_utc


class IdentitySelector:
    """Holds every configured identity and answers which one is current (see the module docstring)."""

    def __init__(
        self,
        identities: Sequence[TLSIdentity],
        now: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        check_interval: float = 1.0,
    ) -> None:
        self._held = [_Held(load_identity(i), _stamp(i)) for i in identities]
        self._now = now
        self._monotonic = monotonic
        self._interval = check_interval
        self._next_check = monotonic() + check_interval

    @property
    def all(self) -> tuple[LoadedIdentity, ...]:
        return tuple(h.loaded for h in self._held)

    def current(self) -> LoadedIdentity | None:
        """The identity whose start (``use_from``, else ``notBefore``) came most recently (None when
        there is none at all).

        A certificate that is not valid (``notBefore`` in the future, or expired) is passed over while
        another one is usable, so a rotation scheduled a little too early does not break requests.
        """
        if not self._held:
            return None
        if self._monotonic() >= self._next_check:
            self.reload_changed()
        now = self._now()
        started = [h for h in self._held if h.start <= now]
        if not started:
            return min(self._held, key=lambda h: h.start).loaded
        valid = [
            h
            for h in started
            if h.loaded.certificate.not_valid_before_utc <= now <= h.loaded.certificate.not_valid_after_utc
        ]
        return max(valid or started, key=lambda h: h.start).loaded

    def reload_changed(self) -> int:
        """Read again the identities whose files changed; how many were replaced."""
        self._next_check = self._monotonic() + self._interval
        replaced = 0
        for held in self._held:
            identity = held.loaded.identity
            stamp = _stamp(identity)
            if stamp is None or stamp == held.stamp or stamp == held.refused:
                continue
            try:
                loaded = _load_pair(identity)
            except ClientConfigError as exc:
                held.refused = stamp
                why = "changed but cannot be used yet (the previous one stays)"
                log.warning("client certificate %s %s: %s", identity.cert_file, why, exc)
                continue
            if loaded.thumbprint != held.loaded.thumbprint:
                until = loaded.certificate.not_valid_after_utc.isoformat()
                name, thumbprint = identity.cert_file, loaded.thumbprint
                log.info(
                    "client certificate %s reloaded: x5t#S256 %s, valid until %s", name, thumbprint, until
                )
                replaced += 1
            held.loaded, held.stamp, held.refused = loaded, stamp, None
        return replaced
