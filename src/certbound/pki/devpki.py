"""A development PKI on disk: a CA, a localhost server certificate and a demo client certificate.

``certbound pki init`` and the test and demo setups call :func:`ensure_dev_pki`, which creates only
what is missing or no longer usable, so it is safe to run on every start. The server and client
certificates are reissued when they were issued by another CA (for example after the CA was
recreated), when they expire within :data:`RENEW_BEFORE`, when their key file does not match, or (for
the server) when they do not cover the requested hosts. Private keys are written with mode 0600.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from certbound.pki.issue import PrivateKey, create_ca, issue_client_cert, issue_server_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.keys import spki_der
from certbound.pki.pem import (
    cert_to_pem,
    key_to_pem,
    load_cert_file,
    load_key_file,
    write_private,
    write_public,
)
from certbound.pki.san import SubjectAltNames

__all__ = ["DEMO_CLIENT_DN", "DEV_CA_DN", "RENEW_BEFORE", "DevPki", "ensure_dev_pki"]

DEV_CA_DN = "CN=certbound development CA"
DEMO_CLIENT_DN = "CN=demo-client,O=certbound demo"
RENEW_BEFORE = timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class DevPki:
    """Where the development PKI files are, and which of them this call (re)created."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_jwk: Path
    created: tuple[str, ...] = ()

    @classmethod
    def at(cls, directory: Path, created: tuple[str, ...] = ()) -> DevPki:
        """The file layout inside ``directory``."""
        return cls(
            directory=directory,
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            server_cert=directory / "server.crt",
            server_key=directory / "server.key",
            client_cert=directory / "demo-client.crt",
            client_key=directory / "demo-client.key",
            client_jwk=directory / "demo-client.jwk.json",
            created=created,
        )


def _same_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    return spki_der(cert.public_key()) == spki_der(key.public_key())


def _load_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, PrivateKey] | None:
    """The certificate and its key, or None when either is missing, unreadable or they do not match."""
    if not cert_path.is_file() or not key_path.is_file():
        return None
    try:
        cert, key = load_cert_file(cert_path), load_key_file(key_path)
    except (OSError, ValueError):
        return None
    return (cert, key) if _same_key(cert, key) else None


def _usable_leaf(
    pair: tuple[x509.Certificate, PrivateKey] | None, ca_cert: x509.Certificate, now: datetime
) -> x509.Certificate | None:
    if pair is None:
        return None
    cert = pair[0]
    if cert.issuer != ca_cert.subject:
        return None
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:  # signed by another CA (or unverifiable): reissue
        return None
    if cert.not_valid_after_utc - now < RENEW_BEFORE or cert.not_valid_before_utc > now:
        return None
    return cert


def _covers(cert: x509.Certificate, hosts: Sequence[str]) -> bool:
    sans = SubjectAltNames.from_cert(cert)
    for host in hosts:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            if not sans.has_dns(host):
                return False
        else:
            if ip not in sans.ips:
                return False
    return True


def ensure_dev_pki(
    directory: Path | str,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    force: bool = False,
) -> DevPki:
    """Create (only what is missing or unusable) a dev CA, server certificate and demo client certificate.

    ``force`` recreates everything, CA included.
    """
    root = Path(directory)
    if not root.exists():
        root.mkdir(parents=True, mode=0o700)
    paths = DevPki.at(root)
    now = datetime.now(UTC)
    created: list[str] = []

    ca = None if force else _load_pair(paths.ca_cert, paths.ca_key)
    if ca is not None and ca[0].not_valid_after_utc - now < RENEW_BEFORE:
        ca = None
    if ca is None:
        ca = create_ca(DEV_CA_DN)
        write_private(paths.ca_key, key_to_pem(ca[1]))
        write_public(paths.ca_cert, cert_to_pem(ca[0]))
        created.append("ca")
    ca_cert, ca_key = ca

    server = None if force else _usable_leaf(_load_pair(paths.server_cert, paths.server_key), ca_cert, now)
    if server is None or not _covers(server, hosts):
        cert, key = issue_server_cert(ca_cert, ca_key, hosts=tuple(hosts))
        write_private(paths.server_key, key_to_pem(key))
        write_public(paths.server_cert, cert_to_pem(cert))
        created.append("server")

    client = None if force else _usable_leaf(_load_pair(paths.client_cert, paths.client_key), ca_cert, now)
    if client is None or not paths.client_jwk.is_file():
        cert, key = issue_client_cert(ca_cert, ca_key, DEMO_CLIENT_DN)
        write_private(paths.client_key, key_to_pem(key))
        write_public(paths.client_cert, cert_to_pem(cert))
        jwk = jwk_with_x5c(cert, (ca_cert,))
        write_public(paths.client_jwk, json.dumps(jwk, indent=2).encode() + b"\n")
        created.append("client")

    return DevPki.at(root, tuple(created))
