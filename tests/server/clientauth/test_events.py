"""One structured log event and one counter increment per decision; no secret in either."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from joserfc.jwk import ECKey
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from certbound.server.clientauth.failure import REASONS, AuthFailure
from tests.server.clientauth.conftest import (
    Harness,
    Pki,
    assertion,
    basic,
    client_cert,
    jwt_bearer,
    presented,
)

SECRET = "very-secret-value-0123456789-0123456789"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "client-authentication.md"


def counter(method: str, outcome: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "certbound_client_auth_total", {"method": method, "outcome": outcome, "reason": reason}
    )
    return value or 0.0


async def test_success_event_with_certificate(harness: Harness, pki: Pki) -> None:
    await harness.register(
        "ev-1", {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=ev,O=t"}
    )
    cert = presented(client_cert(pki, "CN=ev,O=t")[0], source="header:client-cert")
    before = counter("tls_client_auth", "success", "ok")
    with capture_logs() as logs:
        await harness.authenticate({"client_id": "ev-1"}, certificate=cert, endpoint="introspection")
    assert counter("tls_client_auth", "success", "ok") == before + 1
    [event] = [e for e in logs if e["event"] == "client_auth"]
    assert event["log_level"] == "info"
    assert event["client_id"] == "ev-1"
    assert event["endpoint"] == "introspection"
    assert event["method"] == "tls_client_auth"
    assert event["presented"] == "certificate"
    assert event["outcome"] == "success"
    assert event["reason"] == "ok"
    assert event["cert_x5t_s256"] == cert.x5t_s256
    assert event["cert_subject"] == "CN=ev,O=t"
    assert event["cert_issuer"] == "CN=Client CA,O=certbound tests"
    assert event["cert_source"] == "header:client-cert"
    assert "tls_verified" in event
    assert "tls_error" in event


async def test_failure_event_and_counter(harness: Harness) -> None:
    await harness.register("ev-2", {"token_endpoint_auth_method": "client_secret_basic"}, secret=SECRET)
    before = counter("client_secret_basic", "failure", "secret.mismatch")
    with capture_logs() as logs:
        await harness.refused("secret.mismatch", authorization=basic("ev-2", "wrong-" + SECRET))
    assert counter("client_secret_basic", "failure", "secret.mismatch") == before + 1
    [event] = [e for e in logs if e["event"] == "client_auth"]
    assert event["log_level"] == "warning"
    assert (event["client_id"], event["reason"], event["outcome"]) == ("ev-2", "secret.mismatch", "failure")
    assert "cert_x5t_s256" not in event


async def test_unknown_client_counts_under_method_unknown(harness: Harness) -> None:
    before = counter("unknown", "failure", "client.unknown")
    with capture_logs() as logs:
        await harness.refused("client.unknown", {"client_id": "nobody-at-all"})
    assert counter("unknown", "failure", "client.unknown") == before + 1
    assert [e["client_id"] for e in logs if e["event"] == "client_auth"] == ["nobody-at-all"]


async def test_no_secret_or_assertion_in_the_log(harness: Harness) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "k"}, private=True)
    await harness.register(
        "ev-3",
        {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [key.as_dict(private=False)]}},
    )
    await harness.register("ev-4", {"token_endpoint_auth_method": "client_secret_post"}, secret=SECRET)
    token = assertion(key, "ev-3")
    with capture_logs() as logs:
        await harness.authenticate(jwt_bearer(token))
        await harness.refused("assertion.replayed", jwt_bearer(token))
        await harness.authenticate({"client_id": "ev-4", "client_secret": SECRET})
        await harness.refused("secret.mismatch", {"client_id": "ev-4", "client_secret": SECRET + "x"})
        await harness.refused(
            "request.multiple_mechanisms",
            {"client_id": "ev-4", "client_secret": SECRET},
            authorization=basic("ev-4", SECRET),
        )
    text = json.dumps(logs, default=str)
    assert len([e for e in logs if e["event"] == "client_auth"]) == 5
    assert SECRET not in text
    assert token not in text
    assert token.split(".")[2] not in text


async def test_one_event_per_decision_even_on_internal_errors(harness: Harness) -> None:
    class Boom(Exception):
        pass

    async def broken(client_id: str) -> None:
        raise Boom

    harness.directory.get = broken  # type: ignore[method-assign]
    with capture_logs() as logs, pytest.raises(Boom):
        await harness.authenticate({"client_id": "x"})
    [event] = [e for e in logs if e["event"] == "client_auth"]
    assert (event["outcome"], event["reason"], event["detail"]) == ("error", "internal.error", "Boom")


def test_reason_codes_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", text))
    missing = sorted(set(REASONS) - documented)
    assert not missing, f"reason codes missing from {DOCS.name}: {missing}"


def test_unknown_reason_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        AuthFailure("cert.whatever")
