"""The client side of TLS: the `ssl.SSLContext` we build ourselves, and the identities it presents.

httpx would otherwise trust certifi rather than the system store; building the context here makes the
trust explicit: the system store via ``ssl.create_default_context()`` (which honours ``SSL_CERT_FILE``
and ``SSL_CERT_DIR``), a given CA bundle instead of it or in addition to it, or, only when asked, no
verification at all. Every context is TLS 1.2 or later. Used by everything that calls out: the OAuth
client, the fetches of clients' ``jwks_uri``, the gateway.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography import x509

from certbound.pki.pem import load_certs_file
from certbound.pki.thumbprint import x5t_s256

__all__ = [
    "LoadedIdentity",
    "TLSConfigError",
    "TLSIdentity",
    "Trust",
    "TrustMode",
    "build_ssl_context",
    "load_identity",
    "load_trust",
]

#: ``system``: the system store; ``ca``: only a CA bundle; ``system+ca``: both; ``insecure``: none.
TrustMode = Literal["system", "ca", "system+ca", "insecure"]


class TLSConfigError(ValueError):
    """A certificate, key or CA bundle cannot be used; the message names the file and says why."""


@dataclass(frozen=True)
class TLSIdentity:
    """A client certificate (PEM, leaf first, chain may follow) and its private key.

    `use_from`: from when this identity is the one presented. With several identities the client
    presents the one with the latest `use_from` that has passed, so a new certificate can be
    installed ahead of time and takes over at that moment, without a failed request.
    """

    cert_file: Path
    key_file: Path
    use_from: datetime | None = None
    key_password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.use_from is not None and self.use_from.tzinfo is None:
            raise TLSConfigError("TLSIdentity.use_from must be timezone-aware")


@dataclass(frozen=True)
class Trust:
    """How the server's certificate is checked; `fingerprint` tells two CA bundles apart in pool keys."""

    mode: TrustMode
    ca_file: Path | None = None
    fingerprint: str = ""

    @property
    def key(self) -> str:
        return f"{self.mode}:{self.fingerprint}" if self.fingerprint else self.mode

    def describe(self) -> str:
        if self.mode == "insecure":
            return "not verified (insecure mode)"
        if self.mode == "ca":
            return f"verified against {self.ca_file}"
        if self.mode == "system+ca":
            return f"verified against the system trust store and {self.ca_file}"
        return "verified against the system trust store"


@dataclass(frozen=True)
class LoadedIdentity:
    """A TLS identity with its leaf certificate read, so its thumbprint can key pools and caches."""

    identity: TLSIdentity
    certificate: x509.Certificate
    thumbprint: str


def load_trust(ca_file: Path | None, *, verify: bool = True, with_system: bool = False) -> Trust:
    """The trust for a CA bundle (None: the system store; `with_system`: the system store and the
    bundle; `verify=False`: no verification). The bundle is read once to fingerprint it."""
    if not verify:
        return Trust("insecure")
    if ca_file is None:
        return Trust("system")
    try:
        data = Path(ca_file).read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"cannot read the CA bundle {ca_file}: {exc.strerror or exc}") from None
    return Trust("system+ca" if with_system else "ca", Path(ca_file), hashlib.sha256(data).hexdigest()[:16])


def load_identity(identity: TLSIdentity) -> LoadedIdentity:
    """Read the identity's leaf certificate (the key is checked when a context loads it)."""
    try:
        leaf = load_certs_file(identity.cert_file)[0]
    except FileNotFoundError:
        raise TLSConfigError(f"client certificate {identity.cert_file}: no such file") from None
    except (OSError, ValueError) as exc:
        raise TLSConfigError(f"client certificate {identity.cert_file}: {exc}") from None
    return LoadedIdentity(identity, leaf, x5t_s256(leaf))


def build_ssl_context(trust: Trust, identity: LoadedIdentity | None) -> ssl.SSLContext:
    """A client context for `trust`, presenting `identity` when the server asks for a certificate."""
    if trust.mode == "insecure":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif trust.mode == "ca":
        try:
            ctx = ssl.create_default_context(cafile=str(trust.ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"CA bundle {trust.ca_file} holds no usable certificate: {exc}") from None
    else:
        ctx = ssl.create_default_context()
        if trust.mode == "system+ca":
            try:
                ctx.load_verify_locations(cafile=str(trust.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise TLSConfigError(
                    f"CA bundle {trust.ca_file} holds no usable certificate: {exc}"
                ) from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        _load_identity(ctx, identity.identity)
    return ctx


def _load_identity(ctx: ssl.SSLContext, identity: TLSIdentity) -> None:
    try:
        ctx.load_cert_chain(str(identity.cert_file), str(identity.key_file), password=identity.key_password)
    except FileNotFoundError as exc:
        raise TLSConfigError(f"{exc.filename or identity.key_file}: no such file") from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TLSConfigError(
                f"the key {identity.key_file} is not the key of the certificate {identity.cert_file}"
            ) from None
        raise TLSConfigError(
            f"cannot load {identity.cert_file} / {identity.key_file}: {exc.reason or exc}"
        ) from None
