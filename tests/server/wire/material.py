"""Certificates and keys for the server-level matrix, made by certbound.pki and written to files.

Everything trusted is issued by the dev CA that `certbound serve --dev` uses (created beforehand with
`ensure_dev_pki`, so the test holds its key). The rest is made to be refused: a CA with the dev CA's
exact name but another key, self-signed copies, expired certificates, a self-signed CA:TRUE
certificate that issues leaves of its own.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from joserfc.jwk import ECKey

from certbound.pki.devpki import DEV_CA_DN, DevPki
from certbound.pki.issue import (
    PrivateKey,
    create_ca,
    issue_client_cert,
    issue_server_cert,
    self_signed_client_cert,
)
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.pem import cert_to_pem, key_to_pem, load_cert_file, load_key_file
from certbound.pki.thumbprint import x5t_s256

ORG = "O=certbound e2e"  # the organisation of every test subject


@dataclass(frozen=True)
class Cred:
    """A client certificate (leaf, and the chain sent after it) and its key, as files."""

    name: str
    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    cert_file: Path  # leaf then chain, PEM
    key_file: Path

    @property
    def x5t(self) -> str:
        return x5t_s256(self.cert)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    def jwk(self) -> dict[str, Any]:
        """The certificate's public key as a JWK with x5c (what a self-signed client registers)."""
        return jwk_with_x5c(self.cert)

    def ssl_context(self, ca_file: Path) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx


def write_cred(
    directory: Path,
    name: str,
    cert: x509.Certificate,
    key: PrivateKey,
    chain: tuple[x509.Certificate, ...] = (),
) -> Cred:
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(b"".join(cert_to_pem(c) for c in (cert, *chain)))
    key_file.write_bytes(key_to_pem(key))
    key_file.chmod(0o600)
    return Cred(name, cert, key, chain, cert_file, key_file)


@dataclass(frozen=True)
class SigningKey:
    """An EC key a private_key_jwt client signs its assertions with."""

    kid: str
    key: ECKey

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "kid": self.kid, "alg": "ES256", "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=True), "kid": self.kid, "alg": "ES256"}


def new_signing_key(kid: str) -> SigningKey:
    return SigningKey(kid, ECKey.generate_key("P-256", private=True))


@dataclass
class Material:
    dev: DevPki
    directory: Path
    ca_cert: x509.Certificate
    ca_key: PrivateKey
    creds: dict[str, Cred] = field(default_factory=dict)
    keys: dict[str, SigningKey] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Cred:
        return self.creds[name]

    def issue(self, name: str, dn: str, **kwargs: Any) -> Cred:
        """A client certificate from the dev CA (the CA `certbound serve --dev` trusts)."""
        cert, key = issue_client_cert(self.ca_cert, self.ca_key, dn, **kwargs)
        return self.add(name, cert, key)

    def self_signed(self, name: str, dn: str, **kwargs: Any) -> Cred:
        cert, key = self_signed_client_cert(dn, **kwargs)
        return self.add(name, cert, key)

    def add(
        self, name: str, cert: x509.Certificate, key: PrivateKey, chain: tuple[x509.Certificate, ...] = ()
    ) -> Cred:
        cred = write_cred(self.directory, name, cert, key, chain)
        self.creds[name] = cred
        return cred

    def server_cert(self, name: str) -> tuple[Path, Path]:
        """A TLS server certificate for 127.0.0.1 from the dev CA (for the test's own HTTPS servers)."""
        cert, key = issue_server_cert(self.ca_cert, self.ca_key, hosts=("127.0.0.1", "localhost"))
        cred = write_cred(self.directory, name, cert, key)
        return cred.cert_file, cred.key_file


def make_material(dev: DevPki, directory: Path) -> Material:
    """Every certificate and key of the matrix."""
    m = Material(dev, directory, load_cert_file(dev.ca_cert), load_key_file(dev.ca_key))
    now = datetime.now(UTC)

    # tls_client_auth, one client per subject type, with a matching and a non-matching certificate
    m.issue("dn", f"CN=e2e-dn,{ORG}")
    m.issue("dn-other", f"CN=e2e-someone-else,{ORG}")
    m.issue("dns", f"CN=e2e-dns,{ORG}", dns=["client.e2e.example"])
    m.issue("dns-other", f"CN=e2e-dns,{ORG}", dns=["other.e2e.example", "*.e2e.example"])
    m.issue("dns-upper", f"CN=e2e-dns,{ORG}", dns=["Client.E2E.Example"])  # DNS names ignore case
    m.issue("uri", f"CN=e2e-uri,{ORG}", uris=["spiffe://e2e.example/client"])
    m.issue("uri-other", f"CN=e2e-uri,{ORG}", uris=["spiffe://e2e.example/client/other"])
    m.issue("ip", f"CN=e2e-ip,{ORG}", ips=["10.1.2.3"])
    m.issue("ip-other", f"CN=e2e-ip,{ORG}", ips=["10.1.2.4", "::ffff:10.1.2.3"])
    m.issue("email", f"CN=e2e-email,{ORG}", emails=["client@e2e.example"])
    m.issue("email-other", f"CN=e2e-email,{ORG}", emails=["other@e2e.example"])
    # the registered address as the subject's emailAddress attribute, not as an rfc822Name SAN
    m.issue("email-in-dn", f"CN=e2e-email,{ORG},1.2.840.113549.1.9.1=client@e2e.example")

    # the right DN, refused: another CA with the dev CA's very name, a self-signed copy, expired
    rogue_ca, rogue_key = create_ca(DEV_CA_DN)
    cert, key = issue_client_cert(rogue_ca, rogue_key, f"CN=e2e-dn,{ORG}")
    m.add("dn-rogue-ca", cert, key, (rogue_ca,))
    m.self_signed("dn-self-signed", f"CN=e2e-dn,{ORG}")
    past = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
    m.issue("dn-expired", f"CN=e2e-dn,{ORG}", **past)
    m.issue("dn-not-yet-valid", f"CN=e2e-dn,{ORG}", not_before=now + timedelta(days=1), days=30)
    # the right DN from the trusted CA, but a server certificate (EKU serverAuth only)
    cert, key = issue_server_cert(m.ca_cert, m.ca_key, hosts=("localhost",), subject_dn=f"CN=e2e-dn,{ORG}")
    m.add("dn-server-eku", cert, key)

    # an intermediate CA: the client must send it along
    inter_cert, inter_key = create_ca(
        "CN=certbound e2e intermediate", issuer=(m.ca_cert, m.ca_key), path_length=0
    )
    cert, key = issue_client_cert(inter_cert, inter_key, f"CN=e2e-via-intermediate,{ORG}")
    m.add("inter", cert, key, (inter_cert,))
    m.add("inter-leaf-only", cert, key)

    # self_signed_tls_client_auth
    m.self_signed("ss", f"CN=e2e-self-signed,{ORG}")
    m.self_signed("ss-other", f"CN=e2e-self-signed,{ORG}")  # same name, other key: not registered
    m.self_signed("ss-expired", f"CN=e2e-self-signed-expired,{ORG}", **past)
    # A registered self-signed certificate with CA:TRUE that issues a leaf for another client's subject
    ss_ca = m.self_signed("ss-ca", f"CN=e2e-self-signed-ca,{ORG}", ca=True)
    cert, key = issue_client_cert(ss_ca.cert, ss_ca.key, f"CN=e2e-victim,{ORG}")
    m.add("ss-ca-leaf", cert, key, (ss_ca.cert,))
    m.self_signed("ss-victim", f"CN=e2e-victim,{ORG}")
    m.issue("victim", f"CN=e2e-victim,{ORG}")  # the victim's own, legitimate certificate

    # certificates presented only to bind tokens, and the rotation pairs for jwks_uri clients
    m.self_signed("binder", f"CN=e2e-binder,{ORG}")
    m.self_signed("ss-uri-1", f"CN=e2e-rotating,{ORG}")
    m.self_signed("ss-uri-2", f"CN=e2e-rotating,{ORG}")
    for kid in ("pk", "pk-other", "pk-uri-1", "pk-uri-2", "replay"):
        m.keys[kid] = new_signing_key(kid)
    return m
