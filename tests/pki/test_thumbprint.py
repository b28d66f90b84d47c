"""x5t#S256 against RFC 8705 Appendix A."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.issue import self_signed_client_cert
from certbound.pki.pem import load_certs_pem
from certbound.pki.thumbprint import x5t_s256

# RFC 8705 Appendix A, Figure 6 (the client certificate) and Figure 5's "x5t#S256" value.
RFC8705_CERT_PEM = b"""-----BEGIN CERTIFICATE-----
MIIBBjCBrAIBAjAKBggqhkjOPQQDAjAPMQ0wCwYDVQQDDARtdGxzMB4XDTE4MTAx
ODEyMzcwOVoXDTIyMDUwMjEyMzcwOVowDzENMAsGA1UEAwwEbXRsczBZMBMGByqG
SM49AgEGCCqGSM49AwEHA0IABNcnyxwqV6hY8QnhxxzFQ03C7HKW9OylMbnQZjjJ
/Au08/coZwxS7LfA4vOLS9WuneIXhbGGWvsDSb0tH6IxLm8wCgYIKoZIzj0EAwID
SQAwRgIhAP0RC1E+vwJD/D1AGHGzuri+hlV/PpQEKTWUVeORWz83AiEA5x2eXZOV
bUlJSGQgjwD5vaUaKlLR50Q2DmFfQj1L+SY=
-----END CERTIFICATE-----
"""
RFC8705_X5T_S256 = "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0"


def test_rfc8705_appendix_a_example() -> None:
    (cert,) = load_certs_pem(RFC8705_CERT_PEM)
    assert x5t_s256(cert) == RFC8705_X5T_S256


def test_der_bytes_give_the_same_thumbprint() -> None:
    (cert,) = load_certs_pem(RFC8705_CERT_PEM)
    assert x5t_s256(cert.public_bytes(Encoding.DER)) == RFC8705_X5T_S256


def test_is_unpadded_base64url_of_sha256() -> None:
    cert, _ = self_signed_client_cert("CN=t")
    value = x5t_s256(cert)
    assert "=" not in value
    assert len(value) == 43
    digest = base64.urlsafe_b64decode(value + "=")
    assert digest == hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()


def test_same_subject_different_key_differs() -> None:
    a, _ = self_signed_client_cert("CN=t")
    b, _ = self_signed_client_cert("CN=t")
    assert x5t_s256(a) != x5t_s256(b)
