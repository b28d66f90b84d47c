"""Shared certificates for the pki tests (EC keys: RSA generation is slow)."""

from __future__ import annotations

import pytest
from cryptography import x509

from certbound.pki.issue import PrivateKey, create_ca

CertAndKey = tuple[x509.Certificate, PrivateKey]


@pytest.fixture(scope="session")
def root_ca() -> CertAndKey:
    return create_ca("CN=Test Root CA,O=certbound tests")


@pytest.fixture(scope="session")
def intermediate_ca(root_ca: CertAndKey) -> CertAndKey:
    return create_ca("CN=Test Intermediate CA,O=certbound tests", issuer=root_ca, path_length=0)


@pytest.fixture(scope="session")
def other_ca() -> CertAndKey:
    return create_ca("CN=Some Other CA")
