"""Client-certificate chain validation verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certbound.pki.chain import MAX_INTERMEDIATES, ChainVerdict, ChainVerifier
from certbound.pki.issue import (
    create_ca,
    issue_client_cert,
    issue_server_cert,
    new_private_key,
    self_signed_client_cert,
)

from .conftest import CertAndKey

NOW = datetime.now(UTC)


def _verifier(*anchors: CertAndKey) -> ChainVerifier:
    return ChainVerifier([a[0] for a in anchors])


def test_trusted_leaf_is_ok(root_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*root_ca, "CN=client,O=Org", dns=["client.example"])
    verdict = _verifier(root_ca).verify(leaf)
    assert verdict == ChainVerdict(True, "ok", verdict.detail, (leaf, root_ca[0]))
    assert verdict.ok


def test_leaf_via_supplied_intermediate(root_ca: CertAndKey, intermediate_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*intermediate_ca, "CN=client")
    verifier = _verifier(root_ca)
    verdict = verifier.verify(leaf, [intermediate_ca[0]])
    assert verdict.ok, verdict
    assert verdict.chain == (leaf, intermediate_ca[0], root_ca[0])
    missing = verifier.verify(leaf)
    assert (missing.ok, missing.reason) == (False, "cert.untrusted")


def test_dn_only_leaf_without_san_and_without_aki_validates(root_ca: CertAndKey) -> None:
    ca_cert, ca_key = root_ca
    key = new_private_key()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dn-only")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    for cls in (x509.SubjectAlternativeName, x509.AuthorityKeyIdentifier):
        assert not any(isinstance(e.value, cls) for e in leaf.extensions)
    verdict = _verifier(root_ca).verify(leaf)
    assert verdict.ok, verdict


def test_issued_dn_only_leaf_validates(root_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*root_ca, "CN=dn-only,O=Org")
    assert _verifier(root_ca).verify(leaf).ok


def test_expired_leaf(root_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(
        *root_ca, "CN=old", not_before=NOW - timedelta(days=10), not_after=NOW - timedelta(days=1)
    )
    verdict = _verifier(root_ca).verify(leaf)
    assert (verdict.ok, verdict.reason) == (False, "cert.expired")
    assert "CN=old" in verdict.detail


def test_not_yet_valid_leaf(root_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*root_ca, "CN=future", not_before=NOW + timedelta(days=1), days=30)
    verdict = _verifier(root_ca).verify(leaf)
    assert (verdict.ok, verdict.reason) == (False, "cert.not_yet_valid")


def test_validation_time_is_a_parameter(root_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*root_ca, "CN=c", days=30)
    verifier = _verifier(root_ca)
    assert verifier.verify(leaf, at=NOW + timedelta(days=10)).ok
    assert verifier.verify(leaf, at=NOW + timedelta(days=40)).reason == "cert.expired"
    assert verifier.verify(leaf, at=NOW - timedelta(days=1)).reason == "cert.not_yet_valid"
    naive = (NOW + timedelta(days=10)).replace(tzinfo=None)
    assert verifier.verify(leaf, at=naive).ok


def test_expired_intermediate(root_ca: CertAndKey) -> None:
    inter = create_ca(
        "CN=Old Intermediate",
        issuer=root_ca,
        not_before=NOW - timedelta(days=100),
        not_after=NOW - timedelta(days=1),
    )
    leaf, _ = issue_client_cert(*inter, "CN=client", not_before=NOW - timedelta(days=50), days=100)
    verdict = _verifier(root_ca).verify(leaf, [inter[0]])
    assert (verdict.ok, verdict.reason) == (False, "cert.expired")
    assert "Old Intermediate" in verdict.detail


def test_expired_trust_anchor() -> None:
    old_root = create_ca(
        "CN=Old Root", not_before=NOW - timedelta(days=100), not_after=NOW - timedelta(days=1)
    )
    leaf, _ = issue_client_cert(*old_root, "CN=client", not_before=NOW - timedelta(days=50), days=100)
    verdict = _verifier(old_root).verify(leaf)
    assert (verdict.ok, verdict.reason) == (False, "cert.expired")


def test_untrusted_ca(root_ca: CertAndKey, other_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*other_ca, "CN=client")
    verifier = _verifier(root_ca)
    assert verifier.verify(leaf).reason == "cert.untrusted"
    # Sending the untrusted CA along does not help: only configured anchors root a chain.
    assert verifier.verify(leaf, [other_ca[0]]).reason == "cert.untrusted"


def test_self_signed_copy_of_trusted_subject_is_untrusted(root_ca: CertAndKey) -> None:
    trusted_leaf, _ = issue_client_cert(*root_ca, "CN=client,O=Org")
    copy, _ = self_signed_client_cert("CN=client,O=Org")
    verifier = _verifier(root_ca)
    assert verifier.verify(trusted_leaf).ok
    assert verifier.verify(copy).reason == "cert.untrusted"


def test_fake_ca_with_the_anchor_name_is_untrusted(root_ca: CertAndKey) -> None:
    fake = create_ca(root_ca[0].subject)
    leaf, _ = issue_client_cert(*fake, "CN=client")
    verifier = _verifier(root_ca)
    assert verifier.verify(leaf).reason == "cert.untrusted"
    assert verifier.verify(leaf, [fake[0]]).reason == "cert.untrusted"


def test_self_signed_ca_true_cert_cannot_issue(root_ca: CertAndKey) -> None:
    evil = self_signed_client_cert("CN=evil-client", ca=True)
    victim, _ = issue_client_cert(*evil, "CN=victim-client,O=Org")
    verifier = _verifier(root_ca)
    assert verifier.verify(victim, [evil[0]]).reason == "cert.untrusted"
    assert verifier.verify(victim).reason == "cert.untrusted"
    assert verifier.verify(evil[0]).reason == "cert.untrusted"


def test_ca_true_leaf_issued_by_trusted_ca_cannot_issue(root_ca: CertAndKey) -> None:
    # A CA-signed client certificate (no CA flag) used as an issuer: the chain breaks on constraints.
    client = issue_client_cert(*root_ca, "CN=client")
    victim, _ = issue_client_cert(*client, "CN=victim")
    verdict = _verifier(root_ca).verify(victim, [client[0]])
    assert (verdict.ok, verdict.reason) == (False, "cert.invalid")


def test_server_auth_only_leaf_is_invalid(root_ca: CertAndKey) -> None:
    server, _ = issue_server_cert(*root_ca)
    verdict = _verifier(root_ca).verify(server)
    assert (verdict.ok, verdict.reason) == (False, "cert.invalid")
    assert "EKU" in verdict.detail


def test_ca_certificate_presented_as_leaf_is_invalid(root_ca: CertAndKey) -> None:
    verdict = _verifier(root_ca).verify(root_ca[0])
    assert (verdict.ok, verdict.reason) == (False, "cert.invalid")


def test_path_length_constraint(root_ca: CertAndKey, intermediate_ca: CertAndKey) -> None:
    sub = create_ca("CN=Too Deep", issuer=intermediate_ca)
    leaf, _ = issue_client_cert(*sub, "CN=client")
    verdict = _verifier(root_ca).verify(leaf, [intermediate_ca[0], sub[0]])
    assert (verdict.ok, verdict.reason) == (False, "cert.invalid")


def test_no_anchors_means_untrusted(root_ca: CertAndKey) -> None:
    leaf, _ = issue_client_cert(*root_ca, "CN=client")
    assert ChainVerifier([]).verify(leaf).reason == "cert.untrusted"


def test_bad_input_never_raises(root_ca: CertAndKey) -> None:
    verifier = _verifier(root_ca)
    assert verifier.verify("not a certificate").reason == "cert.invalid"  # type: ignore[arg-type]
    leaf, _ = issue_client_cert(*root_ca, "CN=client")
    assert verifier.verify(leaf, [b"junk"]).reason == "cert.invalid"  # type: ignore[list-item]
    many = [root_ca[0]] * (MAX_INTERMEDIATES + 1)
    assert verifier.verify(leaf, many).reason == "cert.invalid"


def test_p384_chain() -> None:
    p384 = create_ca("CN=P-384 Root", key=new_private_key("ec-p384"))
    leaf, _ = issue_client_cert(*p384, "CN=p384-client", key=new_private_key("ec-p384"))
    assert ChainVerifier([p384[0]]).verify(leaf).ok


def test_ed25519_chain_is_refused_by_the_webpki_profile() -> None:
    ed = create_ca("CN=Ed Root", key=new_private_key("ed25519"))
    leaf, _ = issue_client_cert(*ed, "CN=ed-client", key=new_private_key("ed25519"))
    verdict = ChainVerifier([ed[0]]).verify(leaf)
    assert (verdict.ok, verdict.reason) == (False, "cert.invalid")
    assert "algorithm not allowed" in verdict.detail


def test_a_name_that_does_not_decode_is_judged_by_its_bytes_and_raises_nothing() -> None:
    """cryptography raises only when such a name is read; the path search compares names before it
    checks signatures, so it must neither raise nor lose a real path over one."""
    from tests.tls_server import latin1_issued, undecodable_issuer

    forged = undecodable_issuer()[0]  # a Latin-1 issuer and a signature that no longer matches
    verdict = ChainVerifier([create_ca("CN=Some CA")[0]]).verify(forged, [])
    assert (verdict.ok, verdict.reason) == (False, "cert.untrusted")
    ca, leaf, _, _ = latin1_issued()  # correctly signed: the chain verifies, by the names' bytes
    assert ChainVerifier([ca]).verify(leaf, []).ok
    assert ChainVerifier([create_ca("CN=Some CA")[0]]).verify(leaf, [ca]).reason == "cert.untrusted"


@pytest.mark.parametrize("intermediate", [False, True], ids=["latin1-root", "latin1-intermediate"])
def test_an_expired_leaf_under_a_ca_whose_name_does_not_decode_is_expired_not_untrusted(
    intermediate: bool,
) -> None:
    from tests.tls_server import latin1_issued

    yesterday = datetime.now(UTC) - timedelta(days=1)
    anchor, leaf, _, chain = latin1_issued(not_after=yesterday, intermediate=intermediate)
    verdict = ChainVerifier([anchor]).verify(leaf, list(chain))
    assert (verdict.ok, verdict.reason) == (False, "cert.expired")
    anchor, leaf, _, chain = latin1_issued(intermediate=intermediate)
    assert ChainVerifier([anchor]).verify(leaf, list(chain)).ok


def test_a_long_subject_is_clipped_in_the_detail() -> None:
    """Verdicts are cached with their detail, and a client chooses its subject."""
    units = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{i:02d}" + "x" * 60) for i in range(20)]
    leaf, _ = self_signed_client_cert(x509.Name(units))
    verdict = ChainVerifier([create_ca("CN=Some CA")[0]]).verify(leaf, [])
    assert not verdict.ok
    assert len(verdict.detail) < 400
    assert verdict.detail.startswith("OU=19x")
    assert "…" in verdict.detail


def test_a_ca_whose_name_does_not_decode_beside_a_plain_one_changes_no_other_verdict() -> None:
    """One such CA in the trust set made every failure under the others cert.invalid (its name was
    read, and raised, while searching for a path)."""
    from tests.tls_server import latin1_issued

    latin1_anchor = latin1_issued()[0]
    root = create_ca("CN=Plain Root")
    now = datetime.now(UTC)
    expired, _ = issue_client_cert(
        *root, "CN=old", not_before=now - timedelta(days=3), not_after=now - timedelta(days=1)
    )
    assert ChainVerifier([latin1_anchor, root[0]]).verify(expired, []).reason == "cert.expired"
    fine, _ = issue_client_cert(*root, "CN=fine")
    assert ChainVerifier([latin1_anchor, root[0]]).verify(fine, []).ok
