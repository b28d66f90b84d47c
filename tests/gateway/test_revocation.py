"""Revocation at the gateway (issue 16): with `[listener] client_ca`, a proof-of-possession certificate
whose chain is revoked is refused, through OCSP and through a CRL, for a leaf and for an intermediate;
a status that cannot be had follows `client_cert_revocation_soft_fail`; a revocation made while the
gateway runs is learned by the background refresh, without the request path asking anybody.

Real parts: two `certbound gateway` processes (strict and soft fail) over real TLS, the certbound IdP
whose key signs the bound tokens, and a real OCSP responder and CRL server on 127.0.0.1
(tests/revocation_peer.py)."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from certbound.pki.issue import issue_client_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.thumbprint import x5t_s256
from tests.client.material import Material
from tests.gateway.conftest import idp_settings
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.idps import Idp, sign_with_certbound_key
from tests.gateway.test_matrix import claims, echoed
from tests.revocation_peer import Authority, RevocationPki, RevocationServer, revocation_server
from tests.server.process.serverproc import CERTBOUND

pytestmark = pytest.mark.slow

SHORT = timedelta(seconds=4)  # answers the background refresh comes round to within seconds


@dataclass
class Leaf:
    """A client certificate of the revocation PKI, its chain file (leaf then intermediate) and key."""

    cert: x509.Certificate
    cert_file: Path
    key_file: Path


@dataclass
class Setup:
    server: RevocationServer
    pki: RevocationPki
    short: Authority  # an intermediate whose answers live SHORT
    strict: RunningGateway
    soft: RunningGateway
    template: dict[str, Any]  # the claims of a real token of the certbound IdP
    idp: Idp
    directory: Path

    def leaf(self, name: str, *, via: str = "ocsp,crl", issuer: Authority | None = None, **kw: Any) -> Leaf:
        ca = issuer or self.pki.intermediate
        subject = f"CN={name},O=certbound gateway revocation"
        if "ocsp_urls" in kw:  # pointers of the test's own
            cert, key = issue_client_cert(ca.cert, ca.key, subject, **kw)
        else:
            cert, key = self.pki.leaf(subject, via=via, issuer=ca, **kw)
        cert_file, key_file = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        cert_file.write_bytes(cert_to_pem(cert) + cert_to_pem(ca.cert))
        key_file.write_bytes(key_to_pem(key))
        return Leaf(cert, cert_file, key_file)

    def token(self, leaf: Leaf) -> str:
        """A JWT the IdP's own key signs, bound to `leaf` (what the IdP issues to its client)."""
        now = int(time.time())
        bound = {**self.template, "cnf": {"x5t#S256": x5t_s256(leaf.cert)}, "jti": secrets.token_hex(8)}
        bound |= {"iat": now, "exp": now + 600}
        return sign_with_certbound_key(self.idp.server, bound)  # type: ignore[arg-type]


def call(gateway: RunningGateway, leaf: Leaf, token: str) -> tuple[httpx.Response, str]:
    marker = secrets.token_hex(6)
    with gateway.client(leaf) as client:
        response = client.get(f"{gateway.url}/rv/{marker}", headers={"Authorization": f"Bearer {token}"})
    return response, marker


def gateway_config(material: Material, echo: Echo, idp: Idp, root: Path, **listener: Any) -> dict[str, Any]:
    route = {"name": "rv", "paths": ["/rv"], "upstream": echo.url, "auth_methods": ["bearer"]}
    return {
        "listener": {
            "tls_cert": str(material.server.cert_file),
            "tls_key": str(material.server.key_file),
            "client_ca": str(root),
            "outbound_allow_private": True,  # the responder is on 127.0.0.1
            **listener,
        },
        "idp": idp_settings(idp, material),
        "routes": [{**route, "proof_of_possession_mtls": "strict"}],
    }


@pytest.fixture(scope="module")
def setup(
    material: Material, echo: Echo, idps: dict[str, Idp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("gateway-revocation")
    certbound = idps["certbound"]
    template = claims(certbound.token("jwt"))
    with revocation_server() as server:
        pki = RevocationPki.create(server, prefix="gw-")
        short = pki.add_intermediate("gw-short", "Short-lived answers")
        short.validity = SHORT
        root = directory / "root.crt"
        root.write_bytes(cert_to_pem(pki.root.cert))
        strict = start_gateway(
            gateway_config(material, echo, certbound, root), directory / "strict", ca_file=material.ca_file
        )
        try:
            soft = start_gateway(
                gateway_config(material, echo, certbound, root, client_cert_revocation_soft_fail=True),
                directory / "soft",
                ca_file=material.ca_file,
            )
            try:
                yield Setup(server, pki, short, strict, soft, template, certbound, directory)
            finally:
                soft.stop()
        finally:
            strict.stop()


def refused_for(gateway: RunningGateway, response: httpx.Response, marker: str, echo: Echo) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["error"] == "invalid_token"
    assert echo.reached(marker) == []
    return gateway.event_for(marker)


def test_a_good_certificate_with_its_bound_token_passes(setup: Setup, echo: Echo) -> None:
    leaf = setup.leaf("gw-good")
    response, marker = call(setup.strict, leaf, setup.token(leaf))
    echoed(response)
    event = setup.strict.event_for(marker)
    assert event["reason"] == "ok"
    assert event["bound"] is True


@pytest.mark.parametrize("via", ["ocsp", "crl"])
def test_a_revoked_leaf_is_refused_with_its_source_and_time(setup: Setup, echo: Echo, via: str) -> None:
    leaf = setup.leaf(f"gw-revoked-{via}", via=via)
    when = setup.pki.intermediate.revoke(leaf.cert, x509.ReasonFlags.key_compromise)
    for gateway in (setup.strict, setup.soft):  # soft fail is about unknown, never about revoked
        response, marker = call(gateway, leaf, setup.token(leaf))
        event = refused_for(gateway, response, marker, echo)
        assert event["reason"] == "cert.revoked"
        url = setup.server.ocsp_url("gw-inter") if via == "ocsp" else setup.server.crl_url("gw-inter")
        assert event["revocation_source"] == f"{via} {url}"
        assert event["revoked_at"] == when.isoformat()
        assert event["revocation_reason"] == "keyCompromise"
    explained = subprocess.run(
        [*CERTBOUND, "explain", "--event", "-"], input=json.dumps(event), capture_output=True, text=True
    )
    assert f"revoked:   CN=gw-revoked-{via}" in explained.stdout, explained.stdout + explained.stderr
    assert when.isoformat() in explained.stdout
    assert f"said by: {via} {url}" in explained.stdout


@pytest.mark.parametrize("via", ["ocsp", "crl"])
def test_a_revoked_intermediate_refuses_its_leaves(setup: Setup, echo: Echo, via: str) -> None:
    inter = setup.pki.add_intermediate(f"gw-doomed-{via}", via=via)
    leaf = setup.leaf(f"gw-under-doomed-{via}", issuer=inter)
    setup.pki.root.revoke(inter.cert)
    response, marker = call(setup.strict, leaf, setup.token(leaf))
    event = refused_for(setup.strict, response, marker, echo)
    assert event["reason"] == "cert.revoked"
    assert event["revocation_subject"].startswith(f"CN=gw-doomed-{via}")


def test_an_unknown_status_is_refused_unless_soft_fail(setup: Setup, echo: Echo) -> None:
    # the certificate names a responder that knows nothing of its CA (404): no status to be had
    leaf = setup.leaf("gw-unknown", ocsp_urls=[setup.server.ocsp_url("nobody")])
    token = setup.token(leaf)
    response, marker = call(setup.strict, leaf, token)
    event = refused_for(setup.strict, response, marker, echo)
    assert event["reason"] == "cert.revocation_unknown"
    assert setup.server.ocsp_url("nobody") in event["revocation_source"]
    response, marker = call(setup.soft, leaf, token)
    echoed(response)
    warned = setup.soft.events(
        lambda e: e.get("cert_x5t_s256") == x5t_s256(leaf.cert), event="client_cert_soft_fail"
    )
    assert warned
    assert setup.server.ocsp_url("nobody") in warned[0]["revocation_source"]


def test_a_revocation_is_learned_in_the_background_and_the_warm_path_asks_nobody(
    setup: Setup, echo: Echo
) -> None:
    leaf = setup.leaf("gw-later", via="ocsp", issuer=setup.short)
    token = setup.token(leaf)

    def asked() -> int:
        return sum(1 for path in list(setup.server.requests) if path.startswith("/ocsp/gw-short/"))

    echoed(call(setup.strict, leaf, token)[0])  # first sight: waits for the answer
    first = asked()
    assert first >= 1
    for _ in range(5):
        echoed(call(setup.strict, leaf, token)[0])
    assert asked() - first <= 2  # none of the 5 asked; at most a background refresh or two came round
    setup.short.revoke(leaf.cert)
    deadline = time.monotonic() + SHORT.total_seconds() + 10
    while True:
        response, marker = call(setup.strict, leaf, token)
        if response.status_code == 401:
            assert setup.strict.event_for(marker)["reason"] == "cert.revoked"
            break
        assert time.monotonic() < deadline, "the revocation was not learned in the background"
        time.sleep(0.5)
