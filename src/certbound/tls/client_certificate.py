"""The client certificate of a request, as the protocol core sees it, whatever delivered it.

The native TLS listener builds one :class:`ClientCertificate` per connection (not per request) and puts
it in the ASGI ``tls`` extension; trusted-proxy header readers will build theirs from a header. The
core (``clientauth``, ``tokens``) only ever receives this object: it never touches ``ssl`` or headers.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar, overload

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.thumbprint import x5t_s256

__all__ = [
    "MAX_KEPT_NAME",
    "SCOPE_KEY",
    "ClientCertificate",
    "PemChain",
    "client_certificate_from_scope",
    "keep_names",
]

# Our key in ``scope["extensions"]["tls"]``: the parsed object, so apps never parse PEM per request.
SCOPE_KEY = "certbound_client_certificate"

# x5t#S256 (the SHA-256 of `der`, which the constructors compute from `leaf`) -> the leaf's subject
# as cryptography writes it in RFC 4514: 13-21 µs to write, once per new connection otherwise, for the
# same few client certificates. Least recently used out. A longer name (a client can send a ~100 KB
# subject) is written each time, never kept: at most ~4 MiB however the handshakes go.
_subject_names: OrderedDict[str, str] = OrderedDict()
_MAX_SUBJECT_NAMES: Final = 1024
#: The longest name kept in memory across connections (here and in the ``client_auth`` event's).
MAX_KEPT_NAME: Final = 1024

_T = TypeVar("_T")


def keep_names(memory: OrderedDict[str, _T], key: str, names: _T, longest: int, most: int) -> None:
    """Remember `names` (a certificate's, under its thumbprint `key`) unless the longest of them is
    over `MAX_KEPT_NAME`: a client chooses its certificate's names, and ~100 KB fit in a handshake.
    The oldest entries go past `most`."""
    if longest <= MAX_KEPT_NAME:
        memory[key] = names
        while len(memory) > most:
            memory.popitem(last=False)


def _write_subject(leaf: x509.Certificate) -> str:
    """cryptography's RFC 4514 text of `leaf`'s subject; ValueError when the name does not decode.

    cryptography loads a certificate whose names it cannot decode (a TeletexString in Latin-1,
    invalid UTF-8) and raises only when a name is read: writing the subject here, where the
    certificate arrives (the listener, the forwarded-header reader), is where such a subject is
    refused. The issuer is only ever logged (``(undecodable)``) or matched by the chain verifier,
    which both cope.
    """
    return leaf.subject.rfc4514_string()


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A presented client certificate: the leaf, what came with it, and what the delivery layer said.

    ``tls_verified``/``tls_error`` are the TLS layer's conclusion against *its* trust store (None when
    unknown, e.g. from a proxy that does not say). The application re-validates: it is authoritative.
    ``x5t_s256`` is the RFC 8705 thumbprint of ``der``, computed once.
    """

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    source: str
    tls_verified: bool | None
    tls_error: str | None
    x5t_s256: str
    der: bytes = field(repr=False)
    _chain_digest: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_der(
        cls,
        leaf_der: bytes,
        chain_der: Iterable[bytes] = (),
        *,
        source: str,
        tls_verified: bool | None,
        tls_error: str | None,
    ) -> ClientCertificate:
        """Parse the leaf and the rest of the presented chain (ValueError on a malformed one)."""
        leaf_der = bytes(leaf_der)
        return cls(
            leaf=x509.load_der_x509_certificate(leaf_der),
            chain=tuple(x509.load_der_x509_certificate(der) for der in chain_der),
            source=source,
            tls_verified=tls_verified,
            tls_error=tls_error,
            x5t_s256=x5t_s256(leaf_der),
            der=leaf_der,
        )

    @classmethod
    def from_pem(
        cls,
        pems: Iterable[str | bytes],
        *,
        source: str,
        tls_verified: bool | None,
        tls_error: str | None,
    ) -> ClientCertificate:
        """From PEM certificates, leaf first (ValueError when there is none or one is malformed)."""
        certs = [
            x509.load_pem_x509_certificate(pem.encode("ascii") if isinstance(pem, str) else pem)
            for pem in pems
        ]
        return cls.from_certificates(certs, source=source, tls_verified=tls_verified, tls_error=tls_error)

    @classmethod
    def from_certificates(
        cls,
        certs: Sequence[x509.Certificate],
        *,
        source: str,
        tls_verified: bool | None,
        tls_error: str | None,
    ) -> ClientCertificate:
        """From parsed certificates, leaf first (ValueError when there is none)."""
        if not certs:
            raise ValueError("no certificate")
        der = certs[0].public_bytes(Encoding.DER)
        return cls(
            leaf=certs[0],
            chain=tuple(certs[1:]),
            source=source,
            tls_verified=tls_verified,
            tls_error=tls_error,
            x5t_s256=x5t_s256(der),
            der=der,
        )

    @property
    def presented(self) -> tuple[x509.Certificate, ...]:
        """Everything the client sent, leaf first."""
        return (self.leaf, *self.chain)

    @property
    def chain_digest(self) -> bytes:
        """SHA-256 over the certificates sent after the leaf, each DER length-prefixed; computed once
        per object (per connection): what the chain-verdict cache keeps of a chain that failed."""
        digest = self._chain_digest
        if digest is None:
            hashed = hashlib.sha256()
            for cert in self.chain:
                der = cert.public_bytes(Encoding.DER)
                hashed.update(len(der).to_bytes(4, "big"))
                hashed.update(der)
            digest = hashed.digest()
            object.__setattr__(self, "_chain_digest", digest)  # frozen: a cache, not state
        return digest

    @property
    def subject_name(self) -> str:
        """The leaf's subject in RFC 4514 (cryptography's ``rfc4514_string``: the ASGI
        ``client_cert_name``), written once per certificate rather than once per connection;
        ValueError when the subject does not decode (see `_write_subject`)."""
        key = self.x5t_s256
        name = _subject_names.get(key)
        if name is not None:
            _subject_names.move_to_end(key)
            return name
        name = _write_subject(self.leaf)
        keep_names(_subject_names, key, name, len(name), _MAX_SUBJECT_NAMES)
        return name


class PemChain(Sequence[str]):
    """The ASGI ``client_cert_chain``: PEM strings, leaf first, encoded on first access only.

    Most requests never look at PEM (the app reads the parsed :class:`ClientCertificate`), so the
    listener does not pay for the encoding per connection.
    """

    __slots__ = ("_certs", "_pems")

    def __init__(self, certs: Sequence[x509.Certificate]) -> None:
        self._certs = tuple(certs)
        self._pems: tuple[str, ...] | None = None

    def _encoded(self) -> tuple[str, ...]:
        if self._pems is None:
            self._pems = tuple(c.public_bytes(Encoding.PEM).decode("ascii") for c in self._certs)
        return self._pems

    def __len__(self) -> int:
        return len(self._certs)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._encoded()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self._encoded()) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PemChain({len(self._certs)} certificates)"


def client_certificate_from_scope(scope: Mapping[str, Any]) -> ClientCertificate | None:
    """The client certificate of an ASGI request from its ``tls`` extension, or None.

    certbound's listener stores the parsed object (``SCOPE_KEY``): returned as is, including an explicit
    None (nothing usable was presented). From another server implementing the ASGI TLS extension, the
    PEM chain is parsed and the result stored back in that server's ``tls`` dict, which is per
    connection in practice; ``client_cert_error`` is taken as its verdict. A chain that does not
    parse gives None: the request is then treated as having no certificate.
    """
    extensions = scope.get("extensions")
    # `type(...) is dict` first: what every server gives, and far cheaper than an ABC isinstance
    if type(extensions) is not dict and not isinstance(extensions, Mapping):
        return None
    tls = extensions.get("tls")
    if type(tls) is not dict and not isinstance(tls, Mapping):
        return None
    if SCOPE_KEY in tls:
        found = tls[SCOPE_KEY]
        return found if isinstance(found, ClientCertificate) else None
    chain = tls.get("client_cert_chain")
    if not chain:
        return None
    error = tls.get("client_cert_error")
    try:
        cert: ClientCertificate | None = ClientCertificate.from_pem(
            list(chain),
            source="tls",
            tls_verified=error is None,
            tls_error=str(error) if error is not None else None,
        )
    except (ValueError, TypeError):
        cert = None
    if isinstance(tls, dict):
        tls[SCOPE_KEY] = cert
    return cert
