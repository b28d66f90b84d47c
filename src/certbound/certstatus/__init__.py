"""certbound.certstatus: is a client certificate revoked? OCSP and CRLs, fetched, cached, refreshed.

Shared by the server (``tls_client_auth``) and the gateway (proof of possession with a client CA): it
imports neither. The X.509 work (reading and verifying CRLs and OCSP answers) is
:mod:`certbound.pki.revocation`'s; this package decides which sources to ask
(:mod:`.resolve`), fetches through the outbound rules (:mod:`.downloads`), keeps CRLs (:mod:`.crls`)
and per-certificate answers (:mod:`.checker`) in memory, and refreshes them in the background, so the
request path never waits on the network once a certificate has been seen. See
docs/client-authentication.md, "Revocation".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509

from certbound.certstatus.checker import (
    GOOD_CHAIN,
    ChainRevocation,
    ChainState,
    RevocationChecker,
    RevokedListener,
    path_keys,
)
from certbound.certstatus.downloads import Downloads
from certbound.certstatus.policy import FETCH_TIMEOUT, MODES, Mode, RevocationPolicy
from certbound.certstatus.softfail import SoftFailWarnings
from certbound.net.addresses import Resolver

__all__ = [
    "FETCH_TIMEOUT",
    "GOOD_CHAIN",
    "MODES",
    "ChainRevocation",
    "ChainState",
    "Downloads",
    "Mode",
    "RevocationChecker",
    "RevocationPolicy",
    "RevokedListener",
    "SoftFailWarnings",
    "build_checker",
    "path_keys",
]


def build_checker(
    policy: RevocationPolicy,
    *,
    issuer_url: str | None,
    allow_private: bool = False,
    ca_bundle: str | Path | None = None,
    known_cas: Sequence[x509.Certificate] = (),
    resolver: Resolver | None = None,
    clock: Callable[[], float] = time.time,
) -> RevocationChecker:
    """A checker with its downloads: `issuer_url` and `allow_private` are the outbound address rules
    (as for ``jwks_uri``), `ca_bundle` extra CAs for https CRL/OCSP URLs, `known_cas` the CA
    certificates that may sign CRLs besides a chain's own (trust anchors, configured intermediates)."""
    downloads = Downloads(
        issuer_url=issuer_url,
        allow_private=allow_private,
        ca_bundle=ca_bundle,
        timeout=policy.fetch_timeout,
        resolver=resolver,
    )
    return RevocationChecker(policy, downloads, known_cas=known_cas, clock=clock)
