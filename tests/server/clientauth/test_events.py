"""One structured log event and one counter increment per decision; no secret in either."""

from __future__ import annotations

import contextlib
import json
import re
from collections import OrderedDict
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from joserfc.jwk import ECKey
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from certbound.errors import OAuthError
from certbound.pki.issue import self_signed_client_cert
from certbound.pki.thumbprint import x5t_s256
from certbound.server.clientauth import events
from certbound.server.clientauth.events import event_fields, record
from certbound.server.clientauth.failure import REASONS, AuthFailure
from certbound.server.clientauth.types import AuthRequest
from certbound.tls.client_certificate import ClientCertificate
from tests.server.clientauth.conftest import (
    AUDIENCES,
    Harness,
    Pki,
    assertion,
    basic,
    client_cert,
    jwt_bearer,
    presented,
)
from tests.tls_server import undecodable_issuer

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


# -- decisions as values: the event is made from the decision, and stays as it was --------------------

#: The event's keys in the order they are logged (the JSON line follows it): as before decide() existed.
EVENT_KEYS = ["client_id", "endpoint", "method", "presented", "outcome", "reason"]
CERT_KEYS = ["cert_x5t_s256", "cert_subject", "cert_issuer", "cert_source", "tls_verified", "tls_error"]


def _request(
    form: dict[str, str], *, authorization: str | None = None, certificate: ClientCertificate | None = None
) -> AuthRequest:
    return AuthRequest("token", form, authorization, certificate, AUDIENCES)


async def test_decide_gives_the_whole_decision_and_records_nothing(harness: Harness, pki: Pki) -> None:
    await harness.register(
        "dv-1", {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=dv,O=t"}
    )
    good = presented(client_cert(pki, "CN=dv,O=t")[0])
    other = presented(client_cert(pki, "CN=someone-else,O=t")[0])
    before = (
        counter("tls_client_auth", "success", "ok"),
        counter("tls_client_auth", "failure", "cert.subject_mismatch"),
    )
    with capture_logs() as logs:
        accepted = await harness.auth.decide(_request({"client_id": "dv-1"}, certificate=good))
        refused = await harness.auth.decide(_request({"client_id": "dv-1"}, certificate=other))
        unknown = await harness.auth.decide(_request({"client_id": "nobody"}))
    assert [e for e in logs if e["event"] == "client_auth"] == []
    after = (
        counter("tls_client_auth", "success", "ok"),
        counter("tls_client_auth", "failure", "cert.subject_mismatch"),
    )
    assert after == before

    assert (accepted.outcome, accepted.reason, accepted.detail, accepted.accepted) == (
        "success",
        "ok",
        "",
        True,
    )
    assert (accepted.client_id, accepted.method, accepted.presented) == (
        "dv-1",
        "tls_client_auth",
        "certificate",
    )
    assert accepted.certificate is good
    assert accepted.client is not None
    assert accepted.client.client.client_id == "dv-1"
    assert accepted.error is None

    assert (refused.outcome, refused.reason, refused.accepted) == ("failure", "cert.subject_mismatch", False)
    assert refused.detail  # says which subject rule
    assert refused.client is not None  # found, then refused: explain reads the client from here

    assert (unknown.outcome, unknown.reason, unknown.method, unknown.client) == (
        "failure",
        "client.unknown",
        None,
        None,
    )
    assert unknown.presented == "client_id_only"


async def test_the_event_is_the_decisions_fields_in_the_same_order(harness: Harness, pki: Pki) -> None:
    await harness.register(
        "dv-2", {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=dv2,O=t"}
    )
    await harness.register("dv-3", {"token_endpoint_auth_method": "client_secret_basic"}, secret=SECRET)
    cert = presented(client_cert(pki, "CN=dv2,O=t")[0], source="header:client-cert")
    requests = [
        _request({"client_id": "dv-2"}, certificate=cert),  # success with a certificate
        _request({}, authorization=basic("dv-3", "wrong-" + SECRET)),  # failure with a detail-less reason
        _request({"client_id": "dv-3"}),  # method mismatch: a detail
    ]
    for request in requests:
        decision = await harness.auth.decide(request)
        with capture_logs() as logs, contextlib.suppress(OAuthError):
            await harness.auth.authenticate(request)
        [event] = [e for e in logs if e["event"] == "client_auth"]
        logged = {k: v for k, v in event.items() if k not in ("event", "log_level")}
        assert logged == event_fields(decision)
        keys = (
            EVENT_KEYS + (["detail"] if decision.detail else []) + (CERT_KEYS if decision.certificate else [])
        )
        assert list(logged) == keys
        assert event["log_level"] == ("info" if decision.accepted else "warning")


async def test_an_internal_error_is_a_decision_holding_the_exception(harness: Harness) -> None:
    class Boom(Exception):
        pass

    boom = Boom()

    async def broken(client_id: str) -> None:
        raise boom

    harness.directory.get = broken  # type: ignore[method-assign]
    decision = await harness.auth.decide(_request({"client_id": "x"}))
    assert (decision.outcome, decision.reason, decision.detail) == ("error", "internal.error", "Boom")
    assert decision.error is boom
    with pytest.raises(Boom) as raised:
        await harness.authenticate({"client_id": "x"})
    assert raised.value is boom  # re-raised as it was, not wrapped


def test_reason_codes_are_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_]+\.[a-z_]+)`", text))
    missing = sorted(set(REASONS) - documented)
    assert not missing, f"reason codes missing from {DOCS.name}: {missing}"


def test_unknown_reason_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        AuthFailure("cert.whatever")


async def test_an_issuer_that_does_not_decode_is_logged_as_such_not_a_500(harness: Harness) -> None:
    """The listener and the forwarded-header reader pass such a certificate on (only the subject
    must decode there); cryptography raises when the name is read, which the event does."""
    metadata = {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=fine"}
    await harness.register("ev-undecodable", metadata)
    cert = presented(undecodable_issuer()[0])
    with capture_logs() as logs:
        await harness.refused("cert.untrusted", {"client_id": "ev-undecodable"}, certificate=cert)
    [event] = [e for e in logs if e["event"] == "client_auth"]
    assert (event["cert_subject"], event["cert_issuer"]) == ("CN=fine", "(undecodable)")


async def test_long_certificate_names_are_written_each_time_not_kept(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client chooses its certificate's names: 100 KB of them must not stay in memory 1,024 times."""
    monkeypatch.setattr(events, "_names", OrderedDict())
    units = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{i:02d}" + "x" * 60) for i in range(20)]
    long_cert, _ = self_signed_client_cert(x509.Name(units))
    short_cert, _ = self_signed_client_cert("CN=short")
    for cert in (long_cert, short_cert, long_cert):
        record(endpoint="token", client_id="c", registered_method=None, presented="certificate",
               outcome="failure", reason="client.unknown", certificate=presented(cert))  # fmt: skip
    assert list(events._names) == [x5t_s256(short_cert)]
