"""The `introspect-opaque` row: what certbound is registered with, what is sent, and what the run
accepts as a right answer (an answer it wrongly took for right would inflate the row's req/s)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from bench.http import Response
from bench.loadgen import Target
from bench.material import OPAQUE_CLIENT, RESOURCE, Material, make_material
from bench.scenarios import BY_NAME, INTROSPECTION_PATH, Pools, build_workload, is_jwt

from certbound.server.clients.file_clients import parse_clients_toml
from certbound.server.clients.model import client_model

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ0bHMtZG4ifQ.c2lnbmF0dXJl"
OPAQUE = "q3Qk0cXh1s2Yl6eN8o9bV4mZt7wR5uI0pA1sD2fG3hJ"  # 43 base64url characters, as certbound mints


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("pki"))


def _workload_request(material: Material, scenario: str, kind: str, token: str) -> bytes:
    workload = build_workload(BY_NAME[scenario], kind, Target("127.0.0.1", 8443), material,
                              Pools([], [], token), connections=4)  # fmt: skip
    return next(workload.requests)


def _check(material: Material, kind: str = "certbound") -> Callable[[Response], str | None]:
    workload = build_workload(BY_NAME["introspect-opaque"], kind, Target("127.0.0.1", 8443), material,
                              Pools([], [], OPAQUE), connections=4)  # fmt: skip
    return workload.check


def _answer(body: object, status: int = 200) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, raw, close=False)


def test_certbound_knows_an_opaque_twin_of_tls_dn_and_lets_tls_dn_introspect_its_tokens(
    material: Material,
) -> None:
    clients = {c.client_id: client_model(c) for c in parse_clients_toml(material.certbound_clients_toml())}
    tls_dn, opaque = clients["tls-dn"], clients[OPAQUE_CLIENT]
    assert opaque.access_token_format == "opaque"
    assert tls_dn.access_token_format is None  # tls-dn's own tokens stay JWTs (the `introspect` row)
    assert opaque.tls_client_auth_subject == tls_dn.tls_client_auth_subject
    assert opaque.certificate_bound
    assert RESOURCE in opaque.resources
    assert tls_dn.resource_server_audiences == frozenset({RESOURCE})
    # the peer is configured as before: the four clients, none of certbound's additions
    peer = material.peer_config(1, {})["clients"]
    assert [c["client_id"] for c in peer] == ["tls-dn", "self-signed", "pk-jwt", "basic"]
    assert all("resource_server_audiences" not in c and "access_token_format" not in c for c in peer)


def test_the_opaque_row_sends_what_the_jwt_row_sends_but_the_token(material: Material) -> None:
    for kind in ("certbound", "peer"):
        request = _workload_request(material, "introspect-opaque", kind, OPAQUE)
        assert request == _workload_request(material, "introspect", kind, OPAQUE)
        assert request.startswith(f"POST {INTROSPECTION_PATH[kind]} HTTP/1.1\r\n".encode())
        assert request.endswith(f"token={OPAQUE}&client_id=tls-dn".encode())


def test_the_opaque_row_refuses_to_introspect_a_jwt(material: Material) -> None:
    assert is_jwt(JWT)
    assert not is_jwt(OPAQUE)
    with pytest.raises(ValueError, match="opaque"):
        _workload_request(material, "introspect-opaque", "certbound", JWT)
    assert _workload_request(material, "introspect", "certbound", JWT)  # the JWT row takes one


def test_the_opaque_row_accepts_only_an_active_answer_bound_to_the_certificate(material: Material) -> None:
    check = _check(material)
    bound = {"x5t#S256": material.tls_thumbprint}
    assert check(_answer({"active": True, "client_id": OPAQUE_CLIENT, "cnf": bound})) is None
    refusals = {
        "not an active token": [{"active": False}, {"active": "true", "cnf": bound}, [True]],
        "not bound": [{"active": True}, {"active": True, "cnf": {"x5t#S256": "other"}}],
    }
    for reason, bodies in refusals.items():
        for body in bodies:
            assert reason in (check(_answer(body)) or ""), body
    # an RFC 9701 answer (a JWT, not JSON) is not what the request asked for
    assert "not JSON" in (check(_answer(JWT.encode())) or "")
    assert "invalid_client" in (check(_answer({"error": "invalid_client"}, status=401)) or "")
    # the peer's row is judged alike
    assert _check(material, "peer")(_answer({"active": False})) is not None
