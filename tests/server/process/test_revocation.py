"""Revocation end to end: two real `certbound serve` processes, one reading client certificates from
its own TLS handshakes (strict), one from an RFC 9440 header sent by a trusted proxy (soft fail); a
real OCSP responder and real CRLs over HTTP on 127.0.0.1 (tests/revocation_peer.py). Revoked leaves
and intermediates are refused through OCSP and through CRLs, forged answers and another CA's CRL are
not believed, a cached answer outlives the responder until it expires, bound tokens of a revoked
certificate go inactive without it being presented again, and the warm request path asks nobody."""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.devpki import ensure_dev_pki
from certbound.pki.issue import create_ca
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.revocation import build_crl, ocsp_answer, ocsp_request
from certbound.tls.headers.rfc9440 import encode_byte_sequence
from tests.revocation_peer import Authority, RevocationPki, RevocationServer, revocation_server
from tests.server.process.serverproc import CERTBOUND, RunningServer, start_server

pytestmark = pytest.mark.slow

ORG = "O=certbound revocation e2e"
LONG = timedelta(minutes=10)
SHORT = timedelta(seconds=4)  # answers the background refresh comes round to within seconds


@dataclass
class Leaf:
    name: str
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # what the client sends after the leaf
    certfile: Path
    keyfile: Path


@dataclass
class Site:
    """One server and the clients registered there (client_id by leaf name, and `rs`'s secret)."""

    server: RunningServer
    forwarded: bool
    client_ids: dict[str, str] = field(default_factory=dict)
    rs_secret: str = ""

    def _client(self, leaf: Leaf | None) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.server.pki / "ca.crt"))
        if leaf is not None and not self.forwarded:
            ctx.load_cert_chain(str(leaf.certfile), str(leaf.keyfile))
        return httpx.Client(verify=ctx, timeout=30)

    def token(self, leaf: Leaf) -> httpx.Response:
        headers = {}
        if self.forwarded:  # we are the trusted proxy (127.0.0.1): the certificate comes as headers
            headers["Client-Cert"] = encode_byte_sequence(leaf.cert.public_bytes(Encoding.DER))
            headers["Client-Cert-Chain"] = ", ".join(
                encode_byte_sequence(c.public_bytes(Encoding.DER)) for c in leaf.chain
            )
        form = {"grant_type": "client_credentials", "client_id": self.client_ids[leaf.name]}
        with self._client(leaf) as client:
            return client.post(self.server.url + "/token", data=form, headers=headers)

    def active(self, token: str) -> bool:
        with self._client(None) as client:
            response = client.post(
                self.server.url + "/introspect",
                data={"token": token},
                auth=(self.client_ids["rs"], self.rs_secret),
            )
        assert response.status_code == 200, response.text
        return bool(response.json()["active"])

    def events(self, event: str, where: Callable[[dict[str, Any]], bool] = bool) -> list[dict[str, Any]]:
        """The server's log events named `event` that satisfy `where`, waiting a little for the first
        (a request's events are written once the response has gone out)."""
        deadline = time.monotonic() + 5
        while True:
            found = []
            for line in self.server.output().splitlines():
                if line.startswith("{"):
                    record = json.loads(line)
                    if record.get("event") == event and where(record):
                        found.append(record)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def last_event(self, leaf: Leaf) -> dict[str, Any]:
        """The last client_auth event about `leaf`'s client."""
        cid = self.client_ids[leaf.name]
        found = self.events("client_auth", lambda e: e.get("client_id") == cid)
        assert found, f"no client_auth event for {leaf.name}"
        return found[-1]

    def reason(self, leaf: Leaf) -> str:
        return str(self.last_event(leaf)["reason"])


@dataclass
class World:
    responder: RevocationServer
    pki: RevocationPki
    leaves: dict[str, Leaf]
    native: Site
    proxied: Site
    authorities: dict[str, Authority]


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: Any, chain: tuple[x509.Certificate, ...]
) -> Leaf:
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(b"".join(cert_to_pem(c) for c in (cert, *chain)))
    keyfile.write_bytes(key_to_pem(key))
    return Leaf(name, cert, chain, certfile, keyfile)


def _forge(pki: RevocationPki, authority: Authority, leaf: x509.Certificate) -> None:
    """The authority's responder answers "good" about `leaf`, signed by an impostor of its name."""
    impostor = create_ca(authority.cert.subject)
    now = datetime.now(UTC)
    authority.ocsp_instead = ocsp_answer(
        ocsp_request(leaf, authority.cert), authority.cert, {}, signer=impostor,
        this_update=now - timedelta(seconds=5), next_update=now + timedelta(days=1),
    )  # fmt: skip


def _foreign_crl(authority: Authority) -> None:
    """The authority's distribution point serves another CA's CRL (same name, other key)."""
    other = create_ca(authority.cert.subject)
    now = datetime.now(UTC)
    crl = build_crl(*other, [], this_update=now - timedelta(seconds=5), next_update=now + timedelta(days=1))
    authority.crl_instead = crl.public_bytes(Encoding.DER)


def _register(site: Site, leaves: dict[str, Leaf]) -> None:
    token = (site.server.data_dir / "registration-token").read_text().strip()
    ctx = ssl.create_default_context(cafile=str(site.server.pki / "ca.crt"))
    with httpx.Client(verify=ctx, timeout=30) as client:

        def register(metadata: dict[str, Any]) -> dict[str, Any]:
            response = client.post(
                site.server.url + "/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text
            body: dict[str, Any] = response.json()
            return body

        for name in leaves:
            site.client_ids[name] = register({
                "token_endpoint_auth_method": "tls_client_auth",
                "tls_client_auth_subject_dn": f"CN={name},{ORG}",
                "tls_client_certificate_bound_access_tokens": True,
                "grant_types": ["client_credentials"],
            })["client_id"]  # fmt: skip
        rs = register({"grant_types": [], "resource_server_audiences": [site.server.url]})
        site.client_ids["rs"], site.rs_secret = rs["client_id"], rs["client_secret"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("revocation-e2e")
    with revocation_server() as responder:
        pki = RevocationPki.create(responder)
        pki.root.validity = pki.intermediate.validity = LONG
        authorities = {
            "short": pki.add_intermediate("short"),
            "revoked-by-ocsp": pki.add_intermediate("revoked-by-ocsp", via="ocsp"),
            "revoked-by-crl": pki.add_intermediate("revoked-by-crl", via="crl"),
            "forged": pki.add_intermediate("forged"),
            "foreign": pki.add_intermediate("foreign"),
        }
        authorities["short"].validity = SHORT
        plan = {  # leaf name: (its CA, the pointers it carries)
            "warm": (pki.intermediate, "ocsp"),
            "revoked-ocsp": (pki.intermediate, "ocsp"),
            "revoked-crl": (pki.intermediate, "crl"),
            "under-ocsp": (authorities["revoked-by-ocsp"], "ocsp"),
            "under-crl": (authorities["revoked-by-crl"], "crl"),
            "forged": (authorities["forged"], "ocsp"),
            "foreign": (authorities["foreign"], "crl"),
            "bound": (authorities["short"], "ocsp"),
            "flaky": (authorities["short"], "ocsp"),
        }
        material = base / "material"
        material.mkdir()
        leaves = {}
        for name, (ca, via) in plan.items():
            cert, key = pki.leaf(f"CN={name},{ORG}", via=via, issuer=ca)
            leaves[name] = _write(material, name, cert, key, (ca.cert,))
        pki.intermediate.revoke(leaves["revoked-ocsp"].cert, x509.ReasonFlags.key_compromise)
        pki.intermediate.revoke(leaves["revoked-crl"].cert, x509.ReasonFlags.superseded)
        pki.root.revoke(authorities["revoked-by-ocsp"].cert, x509.ReasonFlags.ca_compromise)
        pki.root.revoke(authorities["revoked-by-crl"].cert, x509.ReasonFlags.ca_compromise)
        _forge(pki, authorities["forged"], leaves["forged"].cert)
        _foreign_crl(authorities["foreign"])
        client_ca = material / "client-ca.pem"
        client_ca.write_bytes(cert_to_pem(pki.root.cert))
        native = start_server(["--client-ca", str(client_ca)], base / "native")
        try:
            proxied = start_server(
                ["--client-ca", str(client_ca), "--trusted-proxy", "127.0.0.1/32",
                 "--forwarded-cert-header", "rfc9440", "--client-cert-revocation-soft-fail"],
                base / "proxied",
            )  # fmt: skip
        except BaseException:
            native.stop()
            raise
        try:
            sites = Site(native, forwarded=False), Site(proxied, forwarded=True)
            for site in sites:
                _register(site, leaves)
            yield World(responder, pki, leaves, *sites, authorities)
        finally:
            native.stop()
            proxied.stop()


@pytest.fixture(params=["native", "proxied"])
def site(request: pytest.FixtureRequest, world: World) -> Site:
    found: Site = getattr(world, request.param)
    return found


def test_a_good_certificate_is_checked_once_then_the_request_path_asks_nobody(
    world: World, site: Site
) -> None:
    leaf = world.leaves["warm"]
    assert site.token(leaf).status_code == 200, site.server.output()[-3000:]
    asked = world.responder.count()
    for _ in range(20):
        assert site.token(leaf).status_code == 200
    assert world.responder.count() == asked


@pytest.mark.parametrize(
    ("name", "source", "reason"),
    [
        ("revoked-ocsp", "ocsp", "keyCompromise"),
        ("revoked-crl", "crl", "superseded"),
        ("under-ocsp", "ocsp", "cACompromise"),
        ("under-crl", "crl", "cACompromise"),
    ],
)
def test_revoked_leaves_and_intermediates_are_refused(
    world: World, site: Site, name: str, source: str, reason: str
) -> None:
    response = site.token(world.leaves[name])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    event = site.last_event(world.leaves[name])
    assert event["reason"] == "cert.revoked"
    assert event["revocation_source"].startswith(f"{source} {world.responder.base}/")
    assert event["revocation_reason"] == reason
    assert datetime.fromisoformat(event["revoked_at"]) <= datetime.now(UTC)


@pytest.mark.parametrize("name", ["forged", "foreign"])
def test_a_forged_ocsp_answer_and_another_cas_crl_are_not_believed(
    world: World, site: Site, name: str
) -> None:
    response = site.token(world.leaves[name])
    if site.forwarded:  # soft fail: accepted, with a warning naming what was not believed
        assert response.status_code == 200
        warnings = site.events("client_cert_soft_fail", lambda e: e["client_id"] == site.client_ids[name])
        assert warnings
        assert "not signed by the issuer" in warnings[-1]["detail"]
    else:
        assert response.status_code == 401
        assert site.reason(world.leaves[name]) == "cert.revocation_unknown"


def test_bound_tokens_of_a_revoked_certificate_go_inactive(world: World) -> None:
    leaf = world.leaves["bound"]
    tokens = {}
    for site in (world.native, world.proxied):
        response = site.token(leaf)
        assert response.status_code == 200, response.text
        tokens[site.forwarded] = response.json()["access_token"]
        assert site.active(tokens[site.forwarded])
    world.authorities["short"].revoke(leaf.cert, x509.ReasonFlags.key_compromise)
    deadline = time.monotonic() + 60  # nextUpdate (4 s) plus the refresh: the certificate is not presented
    for site in (world.native, world.proxied):
        while site.active(tokens[site.forwarded]):
            assert time.monotonic() < deadline, "the token stayed active"
            time.sleep(0.5)
    assert world.native.token(leaf).status_code == 401


def test_a_cached_answer_outlives_the_responder_until_it_expires(world: World) -> None:
    leaf = world.leaves["flaky"]
    for site in (world.native, world.proxied):
        assert site.token(leaf).status_code == 200
    cid = world.proxied.client_ids["flaky"]

    def soft_fails() -> int:
        return len(world.proxied.events("client_cert_soft_fail", lambda e: e["client_id"] == cid))

    before = soft_fails()  # none expected; counted so that only a later one passes
    world.responder.down = True
    try:
        for site in (world.native, world.proxied):
            assert site.token(leaf).status_code == 200  # the cached answer is fresh: no wait, no refusal
        deadline = time.monotonic() + 60
        while world.native.token(leaf).status_code == 200:  # until nextUpdate has passed
            assert time.monotonic() < deadline, "the stale answer was still believed"
            time.sleep(0.5)
        assert world.native.reason(leaf) == "cert.revocation_unknown"
        # the proxied server fetched its own answer a moment after the native one (later under load):
        # it may still be fresh there for a little while
        while True:
            assert world.proxied.token(leaf).status_code == 200  # soft fail: accepted, and said so
            if soft_fails() > before:
                break
            assert time.monotonic() < deadline, "no soft fail on the proxied server"
    finally:
        world.responder.down = False


def test_the_dev_flow_revoke_then_publish_the_crl(tmp_path: Path) -> None:
    """`certbound pki revoke` + `certbound pki crl --out data/pki/ca.crl` on a running `serve --dev`: the
    demo client is refused (cert.revoked) and its bound token goes inactive, without a restart."""
    data = tmp_path / "data"
    pki_dir = ensure_dev_pki(data / "pki").directory

    def pki(*args: str) -> None:
        command = [*CERTBOUND, "pki", *args, "--dir", str(pki_dir)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr

    pki("crl", "--out", str(pki_dir / "ca.crl"))  # an empty CRL: `serve --dev` reads it from now on
    server = start_server([], data)
    try:
        form = {"grant_type": "client_credentials", "client_id": "demo-client"}
        with server.client() as client:
            first = client.post(server.url + "/token", data=form)
            assert first.status_code == 200, first.text
            token = first.json()["access_token"]
            pki("revoke", str(pki_dir / "demo-client.crt"), "--reason", "keyCompromise")
            pki("crl", "--out", str(pki_dir / "ca.crl"))
            deadline = time.monotonic() + 30
            while client.post(server.url + "/token", data=form).status_code == 200:
                assert time.monotonic() < deadline, "the new CRL was not read"
                time.sleep(0.3)
            answer = client.post(
                server.url + "/introspect", data={"token": token, "client_id": "demo-client"}
            )
        assert answer.status_code == 401  # the demo client itself is refused now
        events = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
        refused = [e for e in events if e.get("event") == "client_auth" and e.get("reason") == "cert.revoked"]
        assert refused
        assert refused[-1]["revocation_source"] == f"crl {pki_dir / 'ca.crl'}"
        assert refused[-1]["revocation_reason"] == "keyCompromise"
    finally:
        server.stop()
