"""The client's TLS settings: `certbound.net.tls` (contexts, identities, trust) with the client's errors.

The contexts are built by :mod:`certbound.net.tls`, shared with every other outbound call; this module
reads the trust from a :class:`ClientConfig` and reports a certificate, key or CA bundle that cannot
be used as a :class:`ClientConfigError`, the client's own error type.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from certbound.client.config import ClientConfig
from certbound.client.errors import ClientConfigError
from certbound.net import tls
from certbound.net.tls import LoadedIdentity, TLSConfigError, TLSIdentity, Trust

__all__ = ["LoadedIdentity", "Trust", "build_ssl_context", "load_identity", "trust_from_config"]


def trust_from_config(config: ClientConfig) -> Trust:
    """The verification mode of a configuration; the CA bundle is read once to fingerprint it."""
    try:
        return tls.load_trust(
            Path(config.ca_file) if config.ca_file is not None else None, verify=config.verify
        )
    except TLSConfigError as exc:
        raise ClientConfigError(str(exc)) from None


def load_identity(identity: TLSIdentity) -> LoadedIdentity:
    """Read the identity's leaf certificate (the key is checked when a context loads it)."""
    try:
        return tls.load_identity(identity)
    except TLSConfigError as exc:
        raise ClientConfigError(str(exc)) from None


def build_ssl_context(trust: Trust, identity: LoadedIdentity | None) -> ssl.SSLContext:
    """A client context for `trust`, presenting `identity` when the server asks for a certificate."""
    try:
        return tls.build_ssl_context(trust, identity)
    except TLSConfigError as exc:
        raise ClientConfigError(str(exc)) from None
