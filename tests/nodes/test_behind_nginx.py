"""deploy/nginx/certbound-nodes.conf.template for real: Debian's nginx balancing two certbound nodes on
one PostgreSQL database, forwarding the client certificate as a trusted proxy. Requests reach both
nodes; a token, a registration and a revocation made through one node hold on the other; a forged
forwarded-certificate header through nginx is overwritten."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote

import pytest

from certbound.pki.pem import load_cert_file
from certbound.pki.thumbprint import x5t_s256
from tests.nodes.conftest import Balanced

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "demo-client"}


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def test_requests_reach_both_nodes_with_the_forwarded_certificate(balanced: Balanced) -> None:
    thumbprint = x5t_s256(load_cert_file(balanced.pki / "demo-client.crt"))
    with balanced.through_nginx() as c:
        for _ in range(12):
            response = c.post("/token", data=TOKEN_FORM)
            assert response.status_code == 200, response.text
            assert _claims(response.json()["access_token"])["cnf"] == {"x5t#S256": thumbprint}
    for node in balanced.nodes:
        served = [e for e in node.events("request") if e.get("cert_x5t_s256") == thumbprint]
        assert served, f"{node.name} served nothing: nginx did not balance"
        assert {e["cert_source"] for e in served} == {"header:nginx"}


def test_what_one_node_did_holds_on_the_other(balanced: Balanced) -> None:
    one, other = balanced.nodes
    with balanced.direct(one) as c1, balanced.direct(other) as c2:
        token = c1.post("/token", data=TOKEN_FORM).json()["access_token"]
        ask = {"token": token, "client_id": "demo-client"}
        assert c2.post("/introspect", data=ask).json()["active"] is True
        assert c2.post("/revoke", data=ask).status_code == 200
        assert c1.post("/introspect", data=ask).json()["active"] is False

        body = {"token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}
        auth = {"Authorization": f"Bearer {balanced.registration_token()}"}
        created = c1.post("/register", json=body, headers=auth)
        assert created.status_code == 201, created.text
        info = created.json()
        form = {"grant_type": "client_credentials", "client_id": info["client_id"],
                "client_secret": info["client_secret"]}  # fmt: skip
        assert c2.post("/token", data=form).status_code == 200


def test_a_forged_certificate_header_through_nginx_is_overwritten(balanced: Balanced) -> None:
    escaped = quote((balanced.pki / "demo-client.crt").read_text())
    forged = {"X-SSL-Client-Cert": escaped, "X-SSL-Client-Verify": "SUCCESS"}
    with balanced.through_nginx(cert=False) as c:
        for _ in range(4):  # both nodes
            response = c.post("/token", data=TOKEN_FORM, headers=forged)
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_client"
