"""What the gateway asks its identity provider, and how: introspection over the IdP's mTLS alias with
the gateway's own certificate and client_id (the IdP's own log shows both), cached by token hash for
no longer than allowed, revocation seen once the cache lets it, and an IdP the gateway cannot trust
never letting a request pass."""

from __future__ import annotations

import time

import pytest

from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway
from tests.gateway.idps import Idp, wait_until
from tests.gateway.test_matrix import call, echoed, refused

pytestmark = pytest.mark.slow


def test_introspection_is_mutual_tls_with_the_gateways_certificate_and_client_id(
    idp: Idp, gateway: RunningGateway, material: Material
) -> None:
    before = len(idp.introspections())
    response, _ = call(gateway, f"/{idp.name}/introspect", idp.token("opaque"), material.tls_client)
    echoed(response)
    wait_until(lambda: len(idp.introspections()) > before)
    seen = idp.introspections()[-1]
    assert seen["client_id"] == "gateway"
    assert seen["cert_x5t_s256"] == material.gateway.thumbprint
    if idp.name == "certbound":  # the server's client_auth event: the method it authenticated with
        assert (seen["method"], seen["outcome"]) == ("tls_client_auth", "success")


def test_introspection_answers_are_cached(idp: Idp, gateway: RunningGateway, material: Material) -> None:
    token = idp.token("opaque")
    before = len(idp.introspections())
    for _ in range(3):
        response, marker = call(gateway, f"/{idp.name}/cached", token, material.tls_client)
        echoed(response)
    wait_until(lambda: len(idp.introspections()) > before)
    time.sleep(0.2)  # a second introspection, were there one, would be logged by now
    assert len(idp.introspections()) == before + 1
    assert gateway.event_for(marker)["cached"] is True
    # without the cache every request asks
    for _ in range(2):
        echoed(call(gateway, f"/{idp.name}/introspect", token, material.tls_client)[0])
    wait_until(lambda: len(idp.introspections()) >= before + 3)


@pytest.mark.parametrize("kind", ["jwt", "opaque"])
def test_a_cached_verdict_does_not_carry_its_certificate_over(
    kind: str, idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """A token cached as good (through the route with the binding off, and with its own certificate)
    is still refused with another certificate, or none, on the routes that check the binding: the
    cache holds what the IdP said of the token, never the request's certificate."""
    token = idp.token(kind)  # type: ignore[arg-type]
    echoed(call(gateway, f"/{idp.name}/off", token, material.second_tls_client)[0])
    checked = ("strict", "optional", "bearer" if kind == "jwt" else "cached")
    echoed(call(gateway, f"/{idp.name}/{checked[-1]}", token, material.tls_client)[0])
    for route in checked:
        response, marker = call(gateway, f"/{idp.name}/{route}", token, material.second_tls_client)
        refused(response, marker, echo, 401, "invalid_token")
        event = gateway.event_for(marker)
        assert (event["reason"], event["cached"]) == ("binding.mismatch", True)
        response, marker = call(gateway, f"/{idp.name}/{route}", token, None)
        refused(response, marker, echo, 401, "invalid_token")
        assert gateway.event_for(marker)["reason"] == "cert.missing_for_binding"


def test_a_revoked_token_is_refused(
    idp: Idp, gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """At once where answers are not cached; after cache_ttl_max (1 s here) where they are."""
    token = idp.token("opaque")
    echoed(call(gateway, f"/{idp.name}/introspect", token, material.tls_client)[0])
    echoed(call(gateway, f"/{idp.name}/ttl", token, material.tls_client)[0])
    idp.revoke(token)
    response, marker = call(gateway, f"/{idp.name}/introspect", token, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "token.inactive"
    time.sleep(1.1)  # the ttl route's cache_ttl_max
    response, marker = call(gateway, f"/{idp.name}/ttl", token, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")


def test_a_jwt_is_introspected_on_an_introspection_route(
    idps: dict[str, Idp], gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """certbound introspects its JWTs too (a revoked one is then refused); oidc-provider answers
    that it does not introspect JWTs, which the gateway takes as "not active", never as a pass."""
    certbound = idps["certbound"]
    token = certbound.token("jwt")
    echoed(call(gateway, "/certbound/introspect", token, material.tls_client)[0])
    certbound.revoke(token, "jwt")
    response, marker = call(gateway, "/certbound/introspect", token, material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    response, marker = call(gateway, "/oidc/introspect", idps["oidc"].token("jwt"), material.tls_client)
    refused(response, marker, echo, 401, "invalid_token")
    assert gateway.event_for(marker)["reason"] == "token.inactive"


@pytest.mark.parametrize("route", ["/wrong-ca", "/wrong-ca-bearer"])
def test_an_idp_whose_certificate_is_not_trusted_is_a_502_not_a_pass(
    route: str, idps: dict[str, Idp], gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    response, marker = call(gateway, route, idps["certbound"].token("opaque"), material.tls_client)
    assert response.status_code == 502, response.text
    assert "www-authenticate" not in response.headers  # the caller is not to blame
    assert response.json()["error"] == "bad_gateway"
    assert echo.reached(marker) == []
    event = gateway.event_for(marker)
    assert (event["outcome"], event["reason"]) == ("error", "idp.untrusted")
    assert "certificate" in event["detail"]


def test_an_idp_that_refuses_the_gateway_is_a_502(
    idps: dict[str, Idp], gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """The gateway's certificate is not the one registered for its client_id: the IdP answers
    invalid_client, which is the gateway's problem, not the caller's."""
    response, marker = call(gateway, "/refused", idps["certbound"].token("opaque"), material.tls_client)
    assert response.status_code == 502, response.text
    assert "www-authenticate" not in response.headers
    assert echo.reached(marker) == []
    event = gateway.event_for(marker)
    assert (event["outcome"], event["reason"]) == ("error", "idp.refused")
    assert "invalid_client" in event["detail"]
