"""`certbound explain --event` on the gateway's own log lines: a refusal, a pass and an IdP failure,
each in plain words with the catalogue's meaning and advice."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from certbound.cli.main import app
from certbound.reasons import MEANINGS
from tests.client.material import Material
from tests.gateway.gatewayproc import RunningGateway
from tests.gateway.idps import Idp
from tests.gateway.test_matrix import call

pytestmark = pytest.mark.slow


def explain(line: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["explain", "--event", "-", *args], input=line + "\n")
    return result.exit_code, result.stdout


def test_gateway_events_are_explained(
    idps: dict[str, Idp], gateway: RunningGateway, material: Material
) -> None:
    token = idps["certbound"].token("jwt")
    _, wrong = call(gateway, "/certbound/strict", token, material.second_tls_client)
    _, right = call(gateway, "/certbound/strict", token, material.tls_client)
    _, failed = call(gateway, "/wrong-ca", token, material.tls_client)

    status, text = explain(json.dumps(gateway.event_for(wrong)))
    assert status == 1
    assert text.startswith(
        f"REFUSED: GET /certbound/strict/{wrong} on route 'certbound-strict' (401 invalid_token)"
    )
    assert f"reason:    binding.mismatch: {MEANINGS['binding.mismatch']}" in text
    assert f"the token is bound to the certificate {material.tls_client.thumbprint}" in text
    expected = f"present the certificate {material.tls_client.thumbprint} with this token, not "
    assert expected + material.second_tls_client.thumbprint in text

    status, text = explain(json.dumps(gateway.event_for(right)))
    assert status == 0
    assert text.startswith(f"ALLOWED: GET /certbound/strict/{right} on route 'certbound-strict'")
    assert "the upstream answered 200" in text

    status, text = explain(json.dumps(gateway.event_for(failed)), "--json")
    assert status == 1
    explained = json.loads(text)
    assert (explained["kind"], explained["outcome"], explained["reason"]) == (
        "gateway_request",
        "error",
        "idp.untrusted",
    )
    assert explained["status"] == 502
    assert explained["advice"][0].startswith("give the gateway the CA")
