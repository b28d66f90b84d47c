"""`certbound gateway` between the echo upstream and a real identity provider (certbound's own server
and npm oidc-provider, each test against both), over real TLS: what passes, what is refused with
which answer, and that a refused request never reaches the upstream."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.client.material import CertFiles, Material
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway
from tests.gateway.idps import Idp, sign_with_certbound_key

pytestmark = pytest.mark.slow


def call(
    gateway: RunningGateway,
    route: str,
    token: str | None,
    cert: CertFiles | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, str]:
    """GET a fresh path under `route` (a marker to find it at the upstream and in the log)."""
    marker = secrets.token_hex(6)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    with gateway.client(cert) as client:
        response = client.get(f"{gateway.url}{route}/{marker}", headers=sent)
    return response, marker


def echoed(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def header(body: dict[str, Any], name: str) -> list[str]:
    return [v for n, v in body["headers"] if n.lower() == name.lower()]


def refused(
    response: httpx.Response, marker: str, echo: Echo, status: int, error: str | None
) -> dict[str, Any]:
    """The RFC 6750 answer (status, WWW-Authenticate, JSON body) and the upstream saw nothing."""
    assert response.status_code == status, response.text
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
        assert response.json()["error"] == error
        assert "error_description=" in challenge
    assert echo.reached(marker) == []
    body: dict[str, Any] = response.json()
    return body


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


@pytest.mark.parametrize("kind", ["jwt", "opaque"])
def test_a_bound_token_with_its_certificate_reaches_the_upstream(
    kind: str, idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    token = idp.token(kind)  # type: ignore[arg-type]
    response, marker = call(gateway, f"/{idp.name}/strict", token, material.tls_client)
    body = echoed(response)
    assert header(body, "X-Client-Id") == [
        "api-opaque" if kind == "opaque" and idp.name == "certbound" else "api"
    ]
    assert header(body, "X-Scope") == ["api:read api:write"]
    if kind == "jwt":
        assert header(body, "X-Subject") == [claims(token)["sub"]]
    elif idp.name == "oidc":  # its introspection of a client_credentials token has no sub: no header
        assert header(body, "X-Subject") == []
    assert header(body, "X-Client-Cert-Thumbprint") == [material.tls_client.thumbprint]
    assert header(body, "Authorization") == [f"Bearer {token}"]
    confirmation = json.loads(header(body, "X-Confirmation")[0])  # an object goes as JSON
    assert confirmation == {"x5t#S256": material.tls_client.thumbprint}
    event = gateway.event_for(marker)
    assert (event["outcome"], event["reason"], event["status"]) == ("allowed", "ok", 200)
    assert event["token_source"] == ("jwt" if kind == "jwt" else "introspection")
    assert event["bound"] is True
    assert event["cert_x5t_s256"] == material.tls_client.thumbprint


@pytest.mark.parametrize("kind", ["jwt", "opaque"])
def test_another_certificate_or_none_is_refused(
    kind: str, idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    token = idp.token(kind)  # type: ignore[arg-type]
    # the same subject, another key: the thumbprint is what counts
    response, marker = call(gateway, f"/{idp.name}/strict", token, material.second_tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "binding.mismatch"
    response, marker = call(gateway, f"/{idp.name}/strict", token, None)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "cert.missing_for_binding"


def test_no_token(idp: Idp, gateway: RunningGateway, material: Material, echo: Echo) -> None:
    response, marker = call(gateway, f"/{idp.name}/strict", None, material.tls_client)
    body = refused(response, marker, echo, 401, None)
    assert response.headers["www-authenticate"] == f'Bearer realm="{idp.name}-strict"'
    assert body["error"] == "unauthorized"
    assert gateway.event_for(marker)["reason"] == "token.missing"
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}  # another scheme is no bearer token at all
    response, marker = call(gateway, f"/{idp.name}/strict", None, material.tls_client, basic)
    refused(response, marker, echo, 401, None)


def test_a_malformed_authorization_header(gateway: RunningGateway, material: Material, echo: Echo) -> None:
    response, marker = call(
        gateway, "/certbound/strict", None, material.tls_client, {"Authorization": "Bearer a b"}
    )
    refused(response, marker, echo, 400, "invalid_request")
    assert gateway.event_for(marker)["reason"] == "token.malformed"


def test_a_token_without_cnf_under_strict(
    idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    token = idp.token("unbound")
    response, marker = call(gateway, f"/{idp.name}/strict", token, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "cnf.unbound"


def test_optional_checks_only_bound_tokens(
    idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """Kong's `optional`: an unbound token passes without a certificate; a bound one needs its own."""
    response, marker = call(gateway, f"/{idp.name}/optional", idp.token("unbound"), None)
    body = echoed(response)
    assert header(body, "X-Client-Id") == ["unbound"]
    assert header(body, "X-Client-Cert-Thumbprint") == []
    assert gateway.event_for(marker)["bound"] is False
    bound = idp.token("jwt")
    response, marker = call(gateway, f"/{idp.name}/optional", bound, material.second_tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    response, _ = call(gateway, f"/{idp.name}/optional", bound, material.tls_client)
    assert header(echoed(response), "X-Client-Cert-Thumbprint") == [material.tls_client.thumbprint]


def test_off_does_not_check_the_binding(idp: Idp, gateway: RunningGateway, material: Material) -> None:
    """Kong's `off`: a bound token passes with another certificate, or none; no thumbprint goes up."""
    token = idp.token("jwt")
    for cert in (material.second_tls_client, None):
        response, marker = call(gateway, f"/{idp.name}/off", token, cert)
        body = echoed(response)
        assert header(body, "X-Client-Id") == ["api"]
        assert header(body, "X-Client-Cert-Thumbprint") == []
        assert gateway.event_for(marker)["bound"] is False


def test_a_wrong_signature(idp: Idp, gateway: RunningGateway, material: Material, echo: Echo) -> None:
    token = idp.token("jwt")
    head, payload, signature = token.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    response, marker = call(
        gateway, f"/{idp.name}/strict", f"{head}.{payload}.{flipped}", material.tls_client
    )
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "jws.bad_signature"


def test_a_token_of_another_issuer(
    idps: dict[str, Idp], gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """Each provider's JWT at a route of the other: not signed by a key of its IdP. Bearer alone
    refuses it so; with introspection too it is asked about, and is not active there."""
    for here, there in (("certbound", "oidc"), ("oidc", "certbound")):
        foreign = idps[there].token("jwt")
        response, marker = call(gateway, f"/{here}/bearer", foreign, material.tls_client)
        refused(response, marker, echo, 401, "invalid_token")
        assert gateway.event_for(marker)["reason"] == "jws.unknown_key"
        response, marker = call(gateway, f"/{here}/strict", foreign, material.tls_client)
        refused(response, marker, echo, 401, "invalid_token")
        assert gateway.event_for(marker)["reason"] == "token.inactive"


def test_an_opaque_token_the_idp_does_not_know(
    idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    response, marker = call(gateway, f"/{idp.name}/strict", secrets.token_urlsafe(32), material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "token.inactive"
    response, marker = call(gateway, f"/{idp.name}/bearer", secrets.token_urlsafe(32), material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "jws.malformed"


def test_an_expired_token(
    idps: dict[str, Idp], gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """certbound: a JWT its own key signed, expired; oidc-provider: tokens that live 2 s, then used."""
    now = int(time.time())
    live = claims(idps["certbound"].token("jwt"))
    expired = sign_with_certbound_key(
        idps["certbound"].server,  # type: ignore[arg-type]
        {**live, "iat": now - 120, "exp": now - 60, "jti": secrets.token_hex(8)},
    )
    response, marker = call(gateway, "/certbound/expiry", expired, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "token.expired"

    oidc = idps["oidc"]
    short_jwt = oidc.token("jwt", client_id="short-lived")
    short_opaque = oidc.token("opaque", client_id="short-lived")
    response, _ = call(gateway, "/oidc/expiry", short_jwt, material.tls_client)
    assert response.status_code == 200  # fresh
    time.sleep(max(0.0, claims(short_jwt)["exp"] - time.time()) + 1.1)
    response, marker = call(gateway, "/oidc/expiry", short_jwt, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "token.expired"
    response, marker = call(gateway, "/oidc/expiry", short_opaque, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "token.inactive"


def test_scopes_required_and_audience(
    idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """Kong's form: ["api:write admin", "api:admin"] needs both of the first, or the second; aud is
    checked only when audience_required is set, and a mismatch is 403."""
    response, marker = call(gateway, f"/{idp.name}/scoped", idp.token("jwt"), material.tls_client)
    body = refused(response, marker, echo, 403, "insufficient_scope")
    assert "'admin api:write' or 'api:admin'" in body["error_description"]
    assert gateway.event_for(marker)["reason"] == "scope.insufficient"
    response, marker = call(gateway, f"/{idp.name}/audience", idp.token("jwt"), material.tls_client)
    refused(response, marker, echo, 403, "insufficient_scope")
    assert gateway.event_for(marker)["reason"] == "jwt.bad_audience"


def test_forged_identity_headers_never_reach_the_upstream(
    idp: Idp, gateway: RunningGateway, material: Material
) -> None:
    forged = [
        ("X-Client-Id", "admin"),
        ("x-client-id", "admin"),
        ("X_Client_Id", "admin"),
        ("X-Client-Cert-Thumbprint", "forged"),
        ("x_client_cert_thumbprint", "forged"),
        ("X-Subject", "root"),
    ]
    marker = secrets.token_hex(6)
    with gateway.client(material.tls_client) as client:
        response = client.get(
            f"{gateway.url}/{idp.name}/strict/{marker}",
            headers=[("Authorization", f"Bearer {idp.token('opaque')}"), *forged],
        )
    body = echoed(response)
    names = [n.lower().replace("_", "-") for n, _ in body["headers"]]
    assert names.count("x-client-id") == 1
    assert header(body, "X-Client-Id") in (["api"], ["api-opaque"])
    assert header(body, "X-Client-Cert-Thumbprint") == [material.tls_client.thumbprint]
    assert "admin" not in json.dumps(body["headers"])
    assert "forged" not in json.dumps(body["headers"])
    assert "root" not in json.dumps(body["headers"])
    # a token without the claim sends no header: the forged one does not slip through either
    marker = secrets.token_hex(6)
    with gateway.client() as client:
        response = client.get(
            f"{gateway.url}/{idp.name}/optional/{marker}",
            headers=[
                ("Authorization", f"Bearer {idp.token('unbound')}"),
                ("X-Client-Cert-Thumbprint", "forged"),
            ],
        )
    assert "forged" not in json.dumps(echoed(response)["headers"])


def test_underscore_spellings_of_the_headers_the_gateway_owns_never_reach_the_upstream(
    gateway: RunningGateway, idps: dict[str, Idp], material: Material
) -> None:
    """WSGI, CGI and PHP upstreams read ``X_SSL_Client_Cert`` as ``X-SSL-Client-Cert``: the underscore
    spelling of a certificate-forwarding or X-Forwarded-* header must go where the dashed one goes
    (removed), or a caller could hand the upstream a certificate or an address of its choosing."""
    forged = [("X_SSL_Client_Cert", "forged-cert"), ("Client_Cert", ":Zm9yZ2Vk:"),
              ("X_Forwarded_Client_Cert", "Hash=forged"), ("X_Forwarded_For", "6.6.6.6"),
              ("X_Real_IP", "6.6.6.6"), ("X_Forwarded_Host", "forged.example")]  # fmt: skip
    marker = secrets.token_hex(6)
    with gateway.client(material.tls_client) as client:
        response = client.get(
            f"{gateway.url}/certbound/strict/{marker}",
            headers=[("Authorization", f"Bearer {idps['certbound'].token('jwt')}"), *forged],
        )
    sent = json.dumps(echoed(response)["headers"])
    for value in ("forged", "Zm9yZ2Vk", "6.6.6.6"):
        assert value not in sent
