"""RFC 8705 section 3.1 certificate thumbprint (``x5t#S256``).

The thumbprint binds an access token to the client certificate: base64url (no padding) of the SHA-256
digest of the certificate's DER encoding. It is computed over the exact DER bytes, never over a
re-encoding, so a certificate compares equal only to itself.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["x5t_s256"]


def x5t_s256(cert: x509.Certificate | bytes) -> str:
    """Return the ``x5t#S256`` thumbprint of a certificate (or of its DER bytes)."""
    der = cert if isinstance(cert, bytes | bytearray) else cert.public_bytes(Encoding.DER)
    digest = hashlib.sha256(der).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
