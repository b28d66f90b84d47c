"""CRLs and OCSP answers: what is believed, what is not (forged signers, other CAs, stale answers,
out-of-scope CRLs), and the pointers a certificate carries. Real CRLs and OCSP answers, built with
cryptography's builders through certbound.pki.revocation.build."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from certbound.pki.issue import PrivateKey, create_ca, issue_client_cert, issue_ocsp_responder_cert
from certbound.pki.keys import signature_hash
from certbound.pki.revocation import (
    CrlMemo,
    Revoked,
    build_crl,
    crl_status,
    load_crl,
    ocsp_answer,
    ocsp_get_url,
    ocsp_request,
    ocsp_status,
    revocation_pointers,
)
from certbound.pki.revocation.ocsp import cert_id_hashes

CertAndKey = tuple[x509.Certificate, PrivateKey]
NOW = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Each test's "now" is taken when it starts: in a full run the module is imported long before its
    tests run, and certificates issued during a test start only 5 minutes before the real now."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def ca() -> CertAndKey:
    return create_ca("CN=Revocation CA,O=certbound tests")


@pytest.fixture(scope="module")
def leaf(ca: CertAndKey) -> x509.Certificate:
    return issue_client_cert(*ca, "CN=leaf,O=certbound tests", crl_urls=["http://crl.test/ca.crl"])[0]


def crl_of(ca: CertAndKey, *revoked: Revoked, key: PrivateKey | None = None, **times: datetime) -> bytes:
    crl = build_crl(
        ca[0],
        key or ca[1],
        revoked,
        this_update=times.get("this_update", NOW - HOUR),
        next_update=times.get("next_update", NOW + HOUR),
    )
    return crl.public_bytes(Encoding.DER)


def status_from_crl(data: bytes, cert: x509.Certificate, ca: CertAndKey, **kwargs: object) -> str:
    found = crl_status(load_crl(data), cert, ca[0], source="crl test", at=NOW, **kwargs)  # type: ignore[arg-type]
    return found.status if found.status != "unknown" else f"unknown: {found.detail}"


# --- CRL --------------------------------------------------------------------------------------------


def test_a_crl_tells_revoked_from_good(ca: CertAndKey, leaf: x509.Certificate) -> None:
    other = issue_client_cert(*ca, "CN=other")[0]
    data = crl_of(ca, Revoked(leaf.serial_number, NOW - HOUR, x509.ReasonFlags.key_compromise))
    found = crl_status(load_crl(data), leaf, ca[0], source="crl http://crl.test/ca.crl", at=NOW)
    assert found.status == "revoked"
    assert found.revoked_at == NOW - HOUR
    assert found.reason == "keyCompromise"
    assert "keyCompromise" in found.describe()
    assert "crl http://crl.test/ca.crl" in found.describe()
    assert status_from_crl(data, other, ca) == "good"


def test_pem_and_der_load_alike(ca: CertAndKey) -> None:
    crl = build_crl(ca[0], ca[1], [], this_update=NOW, next_update=NOW + HOUR)
    assert load_crl(crl.public_bytes(Encoding.PEM)) == load_crl(crl.public_bytes(Encoding.DER))
    with pytest.raises(ValueError, match="revocation list"):
        load_crl(b"not a crl")


def test_a_crl_of_another_ca_with_the_same_name_is_not_believed(
    ca: CertAndKey, leaf: x509.Certificate
) -> None:
    impostor = create_ca(ca[0].subject)  # same name, other key
    forged = crl_of(impostor)  # says nothing is revoked
    assert status_from_crl(forged, leaf, ca).startswith("unknown: the CRL is not signed by the issuer")


def test_a_crl_of_another_issuer_is_not_for_this_certificate(ca: CertAndKey, leaf: x509.Certificate) -> None:
    other = create_ca("CN=Someone Else")
    assert status_from_crl(crl_of(other), leaf, ca).startswith("unknown: the CRL is not issued for")


def test_a_stale_or_early_crl_is_not_believed(ca: CertAndKey, leaf: x509.Certificate) -> None:
    expired = crl_of(ca, this_update=NOW - 3 * HOUR, next_update=NOW - HOUR)
    assert "expired" in status_from_crl(expired, leaf, ca)
    early = crl_of(ca, this_update=NOW + HOUR, next_update=NOW + 2 * HOUR)
    assert "not valid before" in status_from_crl(early, leaf, ca)
    # within the leeway both are fine
    slightly = crl_of(ca, this_update=NOW - HOUR, next_update=NOW - timedelta(seconds=10))
    assert status_from_crl(slightly, leaf, ca) == "good"
    # the last moment a datetime holds: nextUpdate + the leeway once raised OverflowError
    far = crl_of(ca, next_update=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert status_from_crl(far, leaf, ca) == "good"


def test_an_authorized_crl_signer_of_the_same_name_is_believed(
    ca: CertAndKey, leaf: x509.Certificate
) -> None:
    # the CA certifies a second key of its own name for signing CRLs (RFC 5280 6.3.3 f)
    crl_signer, crl_key = create_ca(ca[0].subject, issuer=ca, not_before=NOW - HOUR)
    data = crl_of(ca, Revoked(leaf.serial_number, NOW), key=crl_key)
    assert status_from_crl(data, leaf, ca).startswith("unknown")  # the signer is not known...
    assert status_from_crl(data, leaf, ca, candidates=[crl_signer]) == "revoked"  # ...now it is
    # a same-name certificate NOT issued by the CA is no authority
    stranger = create_ca(ca[0].subject)
    forged = crl_of(ca, key=stranger[1])
    assert status_from_crl(forged, leaf, ca, candidates=[stranger[0]]).startswith("unknown")


def test_a_delta_crl_is_not_a_complete_list(ca: CertAndKey, leaf: x509.Certificate) -> None:
    delta = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca[0].subject)
        .last_update(NOW - HOUR)
        .next_update(NOW + HOUR)
        .add_extension(x509.DeltaCRLIndicator(1), critical=True)
        .sign(ca[1], signature_hash(ca[1]))
    )
    assert "delta CRL" in status_from_crl(delta.public_bytes(Encoding.DER), leaf, ca)


def _crl_with_idp(ca: CertAndKey, idp: x509.IssuingDistributionPoint) -> bytes:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca[0].subject)
        .last_update(NOW - HOUR)
        .next_update(NOW + HOUR)
        .add_extension(idp, critical=True)
        .sign(ca[1], signature_hash(ca[1]))
    )
    return crl.public_bytes(Encoding.DER)


def _idp(**flags: object) -> x509.IssuingDistributionPoint:
    values: dict[str, object] = {
        "full_name": None,
        "relative_name": None,
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "only_some_reasons": None,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
    }
    values.update(flags)
    return x509.IssuingDistributionPoint(**values)  # type: ignore[arg-type]


def test_the_issuing_distribution_point_scopes_the_crl(ca: CertAndKey, leaf: x509.Certificate) -> None:
    sub_ca = create_ca("CN=Sub", issuer=ca)[0]
    ca_only = _crl_with_idp(ca, _idp(only_contains_ca_certs=True))
    assert "CA certificates only" in status_from_crl(ca_only, leaf, ca)
    assert status_from_crl(ca_only, sub_ca, ca) == "good"
    users_only = _crl_with_idp(ca, _idp(only_contains_user_certs=True))
    assert status_from_crl(users_only, leaf, ca) == "good"
    assert "end-entity certificates only" in status_from_crl(users_only, sub_ca, ca)
    partial = _crl_with_idp(ca, _idp(only_some_reasons=frozenset({x509.ReasonFlags.key_compromise})))
    assert "only some revocation reasons" in status_from_crl(partial, leaf, ca)
    # a partitioned CRL for another distribution point says nothing about this certificate
    other_partition = _idp(full_name=[x509.UniformResourceIdentifier("http://crl.test/part2.crl")])
    assert "another distribution point" in status_from_crl(_crl_with_idp(ca, other_partition), leaf, ca)
    own_partition = _idp(full_name=[x509.UniformResourceIdentifier("http://crl.test/ca.crl")])
    assert status_from_crl(_crl_with_idp(ca, own_partition), leaf, ca) == "good"


def test_a_partitioned_crl_is_not_complete_for_a_certificate_naming_no_distribution_point(
    ca: CertAndKey,
) -> None:
    """RFC 5280 6.3.3 (b)(2)(i): a CRL whose issuing distribution point names a partition covers only
    the certificates that name that partition; a certificate naming none (a PKI whose CRLs the operator
    configures) cannot learn from it that it is good: it might be in another partition."""
    bare = issue_client_cert(*ca, "CN=no pointers,O=certbound tests")[0]
    partition = _idp(full_name=[x509.UniformResourceIdentifier("http://crl.test/part1.crl")])
    assert "another distribution point" in status_from_crl(_crl_with_idp(ca, partition), bare, ca)
    # a CRL that is not partitioned (no distribution point in its IDP) is complete for it
    assert status_from_crl(_crl_with_idp(ca, _idp(only_contains_user_certs=True)), bare, ca) == "good"
    # the partition named by the issuer's directory name (RFC 5280: the default cRLIssuer) is its own
    by_name = _idp(full_name=[x509.DirectoryName(ca[0].subject)])
    assert status_from_crl(_crl_with_idp(ca, by_name), bare, ca) == "good"


def test_one_crl_is_verified_once_for_every_certificate_it_speaks_of(ca: CertAndKey) -> None:
    """A large CRL's signature costs tens of milliseconds of CPU, on the event loop: checked once per
    CRL (its memo), not once per certificate, whatever each certificate's status."""
    leaves = [issue_client_cert(*ca, f"CN=many-{n},O=certbound tests")[0] for n in range(6)]
    revoked = Revoked(leaves[0].serial_number, NOW - HOUR, x509.ReasonFlags.key_compromise)
    crl = load_crl(crl_of(ca, revoked))
    memo = CrlMemo()
    found = [crl_status(crl, c, ca[0], source="crl test", at=NOW, memo=memo).status for c in leaves]
    assert found == ["revoked"] + ["good"] * 5
    assert memo.verifications == 1
    other = create_ca(ca[0].subject)  # the same name, another key: verified once too, and refused
    for _ in range(3):
        assert crl_status(crl, leaves[1], other[0], source="crl test", at=NOW, memo=memo).status == "unknown"
    assert memo.verifications == 2


def _leaf_with_crl_issuer(ca: CertAndKey, name: str, crl_issuer: x509.Name, url: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(url)],
        relative_name=None,
        reasons=None,
        crl_issuer=[x509.DirectoryName(crl_issuer)],
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name.from_rfc4514_string(name))
        .issuer_name(ca[0].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - HOUR)
        .not_valid_after(NOW + 24 * HOUR)
        .add_extension(x509.CRLDistributionPoints([point]), critical=False)
    )
    return builder.sign(ca[1], signature_hash(ca[1]))


@pytest.mark.parametrize("with_memo", [False, True])
def test_an_indirect_crl_of_an_authorized_crl_issuer(ca: CertAndKey, with_memo: bool) -> None:
    """RFC 5280 5.3.3: an indirect CRL, signed by the CRL issuer the certificate's distribution point
    names; an entry speaks of the certificate of the issuer its certificateIssuer names (carried over
    to the entries after it), never of another CA's certificate with the same serial number."""
    issuer_cert, issuer_key = create_ca("CN=Indirect CRL Issuer,O=certbound tests", issuer=ca)
    url = "http://crl.test/indirect.crl"
    revoked, kept, same_serial = (
        _leaf_with_crl_issuer(ca, f"CN={n},O=certbound tests", issuer_cert.subject, url)
        for n in ("indirect-revoked", "indirect-good", "same-serial")
    )
    stranger = x509.Name.from_rfc4514_string("CN=Some Other CA")

    def item(serial: int, names: x509.Name | None) -> x509.RevokedCertificate:
        builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - HOUR)
        if names is not None:
            builder = builder.add_extension(
                x509.CertificateIssuer([x509.DirectoryName(names)]), critical=True
            )
        return builder.build()

    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(NOW - HOUR)
        .next_update(NOW + HOUR)
        .add_extension(
            _idp(full_name=[x509.UniformResourceIdentifier(url)], indirect_crl=True), critical=True
        )
        .add_revoked_certificate(item(same_serial.serial_number, stranger))  # another CA's certificate
        .add_revoked_certificate(item(revoked.serial_number, ca[0].subject))
        .add_revoked_certificate(item(12345, None))  # still the CA's (carried over)
        .sign(issuer_key, signature_hash(issuer_key))
    )
    memo = CrlMemo() if with_memo else None

    def status(cert: x509.Certificate, candidates: list[x509.Certificate]) -> str:
        found = crl_status(crl, cert, ca[0], source="crl test", at=NOW, candidates=candidates, memo=memo)
        return found.status

    assert status(revoked, [issuer_cert]) == "revoked"
    assert status(kept, [issuer_cert]) == "good"
    assert status(same_serial, [issuer_cert]) == "good"
    assert status(revoked, []) == "unknown"  # the CRL issuer's certificate is not known: not believed
    impostor = create_ca(issuer_cert.subject)  # its name, not issued by the CA
    assert status(revoked, [impostor[0]]) == "unknown"


def test_remove_from_crl_does_not_revoke(ca: CertAndKey, leaf: x509.Certificate) -> None:
    data = crl_of(ca, Revoked(leaf.serial_number, NOW, x509.ReasonFlags.remove_from_crl))
    assert status_from_crl(data, leaf, ca) == "good"


# --- OCSP -------------------------------------------------------------------------------------------


def answer(
    cert: x509.Certificate,
    ca: CertAndKey,
    *,
    revoked: dict[int, Revoked] | None = None,
    signer: CertAndKey | None = None,
    this_update: datetime = NOW - HOUR,
    next_update: datetime | None = NOW + HOUR,
    known: tuple[int, ...] | None = None,
    nonce: bytes | None = None,
) -> bytes:
    request = ocsp_request(cert, ca[0], nonce=nonce)
    return ocsp_answer(
        request,
        ca[0],
        revoked or {},
        signer=signer or ca,
        this_update=this_update,
        next_update=next_update,
        known=known,
    )


def status_from_ocsp(data: bytes, cert: x509.Certificate, ca: CertAndKey, **kwargs: object) -> str:
    found = ocsp_status(data, cert, ca[0], source="ocsp test", at=NOW, **kwargs)  # type: ignore[arg-type]
    return found.status if found.status != "unknown" else f"unknown: {found.detail}"


ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")  # the DER OID of ecdsa-with-SHA256
NO_SUCH_ALGORITHM = bytes.fromhex("06082a8648ce3d040309")  # the same arc, an algorithm nobody defined


def test_an_unknown_signature_algorithm_is_unknown_not_an_error(
    ca: CertAndKey, leaf: x509.Certificate
) -> None:
    """OCSP travels over plain HTTP: whoever is on the path can send an answer cryptography cannot
    verify, which must give ``unknown`` (refused or soft fail), never an exception (a 500 for the
    client, and a background refresh pass lost for every certificate)."""
    good = answer(leaf, ca)
    assert good.count(ECDSA_SHA256) == 1
    found = status_from_ocsp(good.replace(ECDSA_SHA256, NO_SUCH_ALGORITHM), leaf, ca)
    assert found.startswith("unknown: ")
    crl = crl_of(ca)
    assert crl.count(ECDSA_SHA256) == 2  # in the signed part and beside the signature
    assert status_from_crl(crl.replace(ECDSA_SHA256, NO_SUCH_ALGORITHM), leaf, ca).startswith("unknown: ")
    garbled = (  # an issuing distribution point that is not one: the extensions cannot be parsed
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca[0].subject)
        .last_update(NOW - HOUR)
        .next_update(NOW + HOUR)
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.ISSUING_DISTRIBUTION_POINT, b"\x01\x02"), critical=True
        )
        .sign(ca[1], signature_hash(ca[1]))
    )
    assert status_from_crl(garbled.public_bytes(Encoding.DER), leaf, ca).startswith("unknown: ")


def test_ocsp_good_revoked_and_unknown(ca: CertAndKey, leaf: x509.Certificate) -> None:
    assert status_from_ocsp(answer(leaf, ca), leaf, ca) == "good"
    revoked = {leaf.serial_number: Revoked(leaf.serial_number, NOW - HOUR, x509.ReasonFlags.superseded)}
    found = ocsp_status(answer(leaf, ca, revoked=revoked), leaf, ca[0], source="ocsp http://o.test", at=NOW)
    assert (found.status, found.revoked_at, found.reason) == ("revoked", NOW - HOUR, "superseded")
    assert "does not know" in status_from_ocsp(answer(leaf, ca, known=()), leaf, ca)


def test_a_delegated_responder_needs_the_ocsp_signing_usage_and_the_issuer(
    ca: CertAndKey, leaf: x509.Certificate
) -> None:
    delegated = issue_ocsp_responder_cert(*ca, not_before=NOW - HOUR)
    assert status_from_ocsp(answer(leaf, ca, signer=delegated), leaf, ca) == "good"
    no_eku = issue_ocsp_responder_cert(*ca, eku=ExtendedKeyUsageOID.CLIENT_AUTH, not_before=NOW - HOUR)
    assert "not signed by the issuer" in status_from_ocsp(answer(leaf, ca, signer=no_eku), leaf, ca)
    other_ca = create_ca("CN=Other CA")
    foreign = issue_ocsp_responder_cert(*other_ca, not_before=NOW - HOUR)  # right usage, wrong CA
    assert "not signed by the issuer" in status_from_ocsp(answer(leaf, ca, signer=foreign), leaf, ca)
    expired = issue_ocsp_responder_cert(*ca, not_before=NOW - 3 * HOUR, not_after=NOW - 2 * HOUR)
    assert "not signed by the issuer" in status_from_ocsp(answer(leaf, ca, signer=expired), leaf, ca)


def test_a_forged_answer_is_not_believed(ca: CertAndKey, leaf: x509.Certificate) -> None:
    impostor = create_ca(ca[0].subject)  # the CA's name, another key
    request = ocsp.load_der_ocsp_request(ocsp_request(leaf, ca[0]))
    forged = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            request.issuer_name_hash,
            request.issuer_key_hash,
            leaf.serial_number,
            hashes.SHA1(),  # noqa: S303  (the CertID of RFC 5019)
            ocsp.OCSPCertStatus.GOOD,
            NOW - HOUR,
            NOW + HOUR,
            None,
            None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, impostor[0])
        .certificates([impostor[0]])
        .sign(impostor[1], hashes.SHA256())
    )
    assert "not signed by the issuer" in status_from_ocsp(forged.public_bytes(Encoding.DER), leaf, ca)


def test_an_answer_about_another_certificate_or_issuer_is_not_believed(
    ca: CertAndKey, leaf: x509.Certificate
) -> None:
    other = issue_client_cert(*ca, "CN=other")[0]
    assert "not about this certificate" in status_from_ocsp(answer(other, ca), leaf, ca)
    other_ca = create_ca("CN=Other CA")
    stranger = issue_client_cert(*other_ca, "CN=leaf,O=certbound tests")[0]
    assert "unauthorized" in status_from_ocsp(answer(stranger, ca), stranger, other_ca)


def test_ocsp_times_and_nonce(ca: CertAndKey, leaf: x509.Certificate) -> None:
    stale = answer(leaf, ca, this_update=NOW - 3 * HOUR, next_update=NOW - HOUR)
    assert "expired" in status_from_ocsp(stale, leaf, ca)
    early = answer(leaf, ca, this_update=NOW + HOUR, next_update=NOW + 2 * HOUR)
    assert "not valid before" in status_from_ocsp(early, leaf, ca)
    assert status_from_ocsp(answer(leaf, ca, next_update=None), leaf, ca) == "good"
    far = answer(leaf, ca, next_update=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert status_from_ocsp(far, leaf, ca) == "good"  # nextUpdate + the leeway once overflowed
    sent = answer(leaf, ca, nonce=b"n" * 16)
    assert status_from_ocsp(sent, leaf, ca, nonce=b"n" * 16) == "good"
    assert "nonce" in status_from_ocsp(sent, leaf, ca, nonce=b"m" * 16)
    assert status_from_ocsp(answer(leaf, ca), leaf, ca, nonce=b"n" * 16) == "good"  # a nonce is optional


def test_malformed_and_unsuccessful_answers(ca: CertAndKey, leaf: x509.Certificate) -> None:
    assert "not a DER OCSP response" in status_from_ocsp(b"<html>", leaf, ca)
    refused = ocsp_answer(b"junk", ca[0], {}, signer=ca, this_update=NOW, next_update=None)
    assert "malformed_request" in status_from_ocsp(refused, leaf, ca)


def test_get_url_is_rfc6960_appendix_a() -> None:
    url = ocsp_get_url("http://ocsp.test/", b"\xfb\xff\xfe")
    assert url == "http://ocsp.test/%2B%2F%2F%2B"  # base64 '+//+', url-encoded


# --- pointers ---------------------------------------------------------------------------------------


def test_pointers_come_from_aia_and_distribution_points(ca: CertAndKey) -> None:
    cert = issue_client_cert(
        *ca,
        "CN=x",
        crl_urls=["http://crl.test/a.crl", "ldap://ldap.test/cn=crl"],
        ocsp_urls=["http://ocsp.test"],
    )[0]
    pointers = revocation_pointers(cert)
    assert pointers.ocsp == ("http://ocsp.test",)
    assert pointers.crl == ("http://crl.test/a.crl",)  # LDAP is not fetched
    bare = issue_client_cert(*ca, "CN=y")[0]
    assert not revocation_pointers(bare)


def test_cert_id_hashes_are_the_ones_cryptography_puts_in_a_request(ca: CertAndKey) -> None:
    rsa_ca = create_ca(
        "CN=RSA CA", key=__import__("certbound.pki.keys", fromlist=["x"]).new_private_key("rsa-2048")
    )
    for issuer in (ca, rsa_ca):
        cert = issue_client_cert(*issuer, "CN=x")[0]
        for algorithm in (hashes.SHA1(), hashes.SHA256()):  # noqa: S303
            request = ocsp.load_der_ocsp_request(
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, issuer[0], algorithm)
                .build()
                .public_bytes(Encoding.DER)
            )
            assert cert_id_hashes(issuer[0], algorithm) == (request.issuer_name_hash, request.issuer_key_hash)
