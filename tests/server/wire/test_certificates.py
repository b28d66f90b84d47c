"""tls_client_auth and self_signed_tls_client_auth with real handshakes: each subject type with the
matching and a non-matching certificate, and the certificates that must never authenticate."""

from __future__ import annotations

import pytest

from tests.server.wire.wire import assert_invalid_client
from tests.server.wire.world import World

pytestmark = pytest.mark.slow

# (client, its certificate, a certificate from the same CA without the registered value)
SUBJECTS = [
    ("tls-dn", "dn", "dn-other"),
    ("tls-dns", "dns", "dns-other"),  # other name, and a wildcard that would cover the registered one
    ("tls-uri", "uri", "uri-other"),  # a longer URI with the registered one as prefix
    ("tls-ip", "ip", "ip-other"),  # another address, and the registered IPv4 address IPv4-mapped in IPv6
    ("tls-email", "email", "email-other"),
    ("tls-email", "email", "email-in-dn"),  # the address in the subject's emailAddress, not an rfc822Name
]


def refused(world: World, name: str, cert: str | None, reason: str, endpoint: str = "/token") -> None:
    """`name` presenting `cert` at `endpoint` is invalid_client on the wire and `reason` in the log."""
    client_id = world[name].client_id
    mark = world.wire.mark()
    data = {"grant_type": "client_credentials", "token": "x"}
    resp = world.call(name, endpoint, data, cert=cert)
    assert_invalid_client(resp)
    event = world.wire.wait_event(mark, client_id=client_id)
    assert (event["outcome"], event["reason"]) == ("failure", reason), event
    if cert is not None:
        assert event["cert_x5t_s256"] == world.m[cert].x5t
        assert event["cert_source"] == "tls"


@pytest.mark.parametrize(("name", "good", "bad"), SUBJECTS, ids=[f"{n}-vs-{b}" for n, _, b in SUBJECTS])
def test_subject_types_match_only_the_registered_value(world: World, name: str, good: str, bad: str) -> None:
    accepted = world.token(name, cert=good)
    assert accepted.status_code == 200, accepted.text
    refused(world, name, bad, "cert.subject_mismatch")


@pytest.mark.parametrize("endpoint", ["/introspect", "/revoke"])
def test_subject_mismatch_is_refused_at_introspection_and_revocation(world: World, endpoint: str) -> None:
    refused(world, "tls-dn", "dn-other", "cert.subject_mismatch", endpoint)


def test_right_dn_from_an_untrusted_ca_is_refused(world: World) -> None:
    """A CA with the dev CA's very name but another key issued a certificate with the registered DN;
    the client even sends that CA along."""
    assert world.m["dn-rogue-ca"].subject == world.m["dn"].subject
    refused(world, "tls-dn", "dn-rogue-ca", "cert.untrusted")


def test_self_signed_copy_of_a_registered_dn_is_refused(world: World) -> None:
    assert world.m["dn-self-signed"].subject == world.m["dn"].subject
    refused(world, "tls-dn", "dn-self-signed", "cert.untrusted")


def test_expired_certificate_from_the_trusted_ca_is_refused(world: World) -> None:
    refused(world, "tls-dn", "dn-expired", "cert.expired")


def test_dns_names_compare_without_case(world: World) -> None:
    assert world.token("tls-dns", cert="dns-upper").status_code == 200


def test_a_server_certificate_is_not_a_client_certificate(world: World) -> None:
    """The registered DN, from the trusted CA, but EKU serverAuth only: the chain is validated for
    client authentication."""
    refused(world, "tls-dn", "dn-server-eku", "cert.invalid")


def test_certificate_not_yet_valid_is_refused(world: World) -> None:
    refused(world, "tls-dn", "dn-not-yet-valid", "cert.not_yet_valid")


def test_no_certificate_is_refused(world: World) -> None:
    refused(world, "tls-dn", None, "cert.missing")
    refused(world, "self-signed", None, "cert.missing")


def test_intermediate_sent_by_the_client_completes_the_chain(world: World) -> None:
    assert world.token("tls-inter", cert="inter").status_code == 200
    refused(world, "tls-inter", "inter-leaf-only", "cert.untrusted")


def test_self_signed_registered_certificate_authenticates_and_others_do_not(world: World) -> None:
    assert world.token("self-signed", cert="ss").status_code == 200
    refused(world, "self-signed", "ss-other", "cert.unregistered")  # same subject, other key
    refused(world, "self-signed", "dn", "cert.unregistered")  # a CA-issued certificate is no better


def test_registered_but_expired_self_signed_certificate_is_refused(world: World) -> None:
    refused(world, "self-signed", "ss-expired", "cert.expired")


def test_registered_ca_true_certificate_cannot_vouch_for_another_client(world: World) -> None:
    """Client ss-ca registered a self-signed CA:TRUE certificate, which issued a leaf carrying client
    victim's DN. That leaf (with ss-ca's certificate sent along) authenticates nobody: not the
    tls_client_auth victim, not the self-signed victim, not ss-ca itself."""
    assert world.token("ss-ca").status_code == 200  # its own certificate works
    leaf = world.m["ss-ca-leaf"]
    assert leaf.subject == world.m["victim"].subject
    refused(world, "victim", "ss-ca-leaf", "cert.untrusted")
    refused(world, "ss-victim", "ss-ca-leaf", "cert.unregistered")
    refused(world, "ss-ca", "ss-ca-leaf", "cert.unregistered")
    assert world.token("victim").status_code == 200  # the victim's real certificate still works


def test_certificate_methods_need_the_client_id(world: World) -> None:
    mark = world.wire.mark()
    resp = world.wire.post("/token", {"grant_type": "client_credentials"}, cert=world.m["ss"])
    assert_invalid_client(resp)
    event = world.wire.wait_event(mark, reason="request.client_id_missing")
    assert event["cert_x5t_s256"] == world.m["ss"].x5t
