"""certbound.pki: X.509 facts and checks for mutual-TLS client authentication (RFC 8705).

Thumbprints, RFC 4514 DN parsing and comparison by meaning, SAN matching, client chain validation,
certificate issuance for development and tests, PEM I/O and JWKs with ``x5c``. The protocol core
imports from here; nothing here knows about HTTP or the store. See docs/pki.md.
"""

from certbound.pki.chain import ChainVerdict, ChainVerifier
from certbound.pki.describe import describe_cert
from certbound.pki.dn import canonical_dn, dn_matches, dn_to_rfc4514, parse_dn
from certbound.pki.issue import (
    KeyKind,
    PrivateKey,
    create_ca,
    issue_client_cert,
    issue_server_cert,
    new_private_key,
    self_signed_client_cert,
)
from certbound.pki.jwk import jwk_matches_cert, jwk_with_x5c
from certbound.pki.san import SubjectAltNames, dns_matches, email_matches, ip_matches, uri_matches
from certbound.pki.thumbprint import x5t_s256

__all__ = [
    "ChainVerdict",
    "ChainVerifier",
    "KeyKind",
    "PrivateKey",
    "SubjectAltNames",
    "canonical_dn",
    "create_ca",
    "describe_cert",
    "dn_matches",
    "dn_to_rfc4514",
    "dns_matches",
    "email_matches",
    "ip_matches",
    "issue_client_cert",
    "issue_server_cert",
    "jwk_matches_cert",
    "jwk_with_x5c",
    "new_private_key",
    "parse_dn",
    "self_signed_client_cert",
    "uri_matches",
    "x5t_s256",
]
