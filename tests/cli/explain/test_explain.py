"""`certbound explain`: log events in plain words, and the server's own check run on a client_id and a
certificate file (real SQLite store written by `initialize`, real certificates from certbound.pki)."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from certbound.cli.explain import METHOD_HOWTO, client_auth_events, parse_log_line
from certbound.config import load_settings
from certbound.pki.pem import cert_to_pem
from certbound.reasons import ADVICE
from certbound.server.bootstrap import initialize
from certbound.server.clientauth.failure import REASONS
from certbound.server.clientauth.types import METHODS
from tests.cli.explain.cli import Server, clients_toml, run
from tests.pg_helpers import throwaway_database


def one_json(result: Result) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def usage_error(result: Result, text: str) -> None:
    assert result.exit_code == 2, result.output
    assert text in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


# -- events ------------------------------------------------------------------------------------------

UNTRUSTED = {
    "client_id": "tls-dn",
    "endpoint": "token",
    "method": "tls_client_auth",
    "presented": "certificate",
    "outcome": "failure",
    "reason": "cert.untrusted",
    "detail": "candidates exhausted",
    "cert_x5t_s256": "abc",
    "cert_subject": "CN=e2e-dn,O=certbound e2e",
    "cert_issuer": "CN=e2e-dn,O=certbound e2e",
    "cert_source": "tls",
    "tls_verified": False,
    "tls_error": "self-signed certificate",
    "event": "client_auth",
    "level": "warning",
    "logger": "certbound.auth",
    "timestamp": "2026-01-01T00:00:00Z",
}
SUCCESS = {
    "client_id": "basic",
    "endpoint": "introspection",
    "method": "client_secret_basic",
    "presented": "basic",
    "outcome": "success",
    "reason": "ok",
    "event": "client_auth",
}


def test_a_json_event_from_a_file_is_explained(tmp_path: Path) -> None:
    log = tmp_path / "event.json"
    log.write_text(json.dumps(UNTRUSTED) + "\n")
    result = run("--event", str(log))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert out.startswith("REFUSED: client 'tls-dn' at the token endpoint (invalid_client, 401)")
    assert f"cert.untrusted: {REASONS['cert.untrusted']}" in out
    assert "candidates exhausted" in out
    assert "self-signed" in out  # its issuer is its subject: the advice says so
    assert "TLS layer: self-signed certificate (only logged" in out
    assert ADVICE["cert.untrusted"] in out


def test_a_success_event_on_stdin_exits_0() -> None:
    result = run("--event", "-", stdin=json.dumps(SUCCESS))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ACCEPTED: client 'basic' authenticated at the introspection endpoint")


def test_console_rendered_log_lines_are_read_too() -> None:
    line = (
        "2026-11-29 02:53:51 [warning  ] client_auth                    client_id=demo-client "
        "endpoint=token method=tls_client_auth outcome=failure presented=client_id_only "
        "reason=cert.missing cert_subject='CN=demo-client,O=certbound demo' tls_error=None"
    )
    event = parse_log_line(line)
    assert event is not None
    assert event["event"] == "client_auth"
    assert event["cert_subject"] == "CN=demo-client,O=certbound demo"
    assert event["tls_error"] is None
    result = run("--event", "-", stdin=f"noise\n\x1b[2m{line}\x1b[0m\n")
    assert result.exit_code == 1
    assert "reason:    cert.missing" in result.stdout
    assert "only a client_id" in result.stdout


def test_a_whole_log_is_explained_event_by_event_as_json_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    other = {"event": "request", "path": "/token", "status": 401}
    log.write_text("\n".join(json.dumps(e) for e in (SUCCESS, other, UNTRUSTED)) + "\nplain text\n")
    result = run("--event", str(log), "--json")
    assert result.exit_code == 1  # one of them was refused
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["accepted"], e["reason"]) for e in lines] == [(True, "ok"), (False, "cert.untrusted")]
    assert lines[1]["meaning"] == REASONS["cert.untrusted"]
    assert lines[1]["certificate"]["x5t_s256"] == "abc"
    assert lines[1]["advice"]


def test_an_unknown_reason_code_is_still_explained() -> None:
    event = {**UNTRUSTED, "reason": "cert.revoked_someday"}
    result = run("--event", "-", "--json", stdin=json.dumps(event))
    assert result.exit_code == 1
    assert "does not know" in one_json(result)["meaning"]


@pytest.mark.parametrize("stdin", ["", "not a log\n", json.dumps({"event": "request"})])
def test_no_event_is_a_usage_error(stdin: str) -> None:
    usage_error(run("--event", "-", stdin=stdin), "no client_auth or gateway_request event")


def test_every_reason_code_and_method_has_words() -> None:
    assert set(REASONS) <= set(ADVICE)
    assert set(METHODS) == set(METHOD_HOWTO)


def test_client_auth_events_skips_other_lines() -> None:
    text = "\n".join([json.dumps(SUCCESS), "{broken", "[1, 2]", json.dumps({"reason": "x", "outcome": "y"})])
    assert [e.get("client_id") for e in client_auth_events(text)] == ["basic", None]


# -- the certificate check ---------------------------------------------------------------------------


def check(server: Server, client_id: str, cert: str | None, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run(*server.args(client_id, cert, "--json", *extra))
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, one_json(result)


def test_a_matching_certificate_would_be_accepted(server_data: Server) -> None:
    code, out = check(server_data, "tls-dn", "dn")
    assert (code, out["accepted"], out["reason"], out["method"]) == (0, True, "ok", "tls_client_auth")
    assert out["certificate"]["x5t_s256"] == server_data.m["dn"].x5t
    facts = "\n".join(out["facts"])
    assert "the chain validates" in facts
    assert f"cnf.x5t#S256 = {server_data.m['dn'].x5t}" in facts  # the client's tokens are bound


def test_human_output_for_an_accepted_certificate(server_data: Server) -> None:
    result = run(*server_data.args("tls-dn", "dn"))
    assert result.exit_code == 0
    assert result.stdout.startswith(
        "ACCEPTED: client 'tls-dn' authenticated at the token endpoint with tls_client_auth"
    )


@pytest.mark.parametrize(
    ("client_id", "cert", "reason"),
    [
        ("tls-dn", "dn-other", "cert.subject_mismatch"),
        ("tls-dn", "dn-rogue-ca", "cert.untrusted"),
        ("tls-dn", "dn-self-signed", "cert.untrusted"),
        ("tls-dn", "dn-expired", "cert.expired"),
        ("tls-dn", "dn-not-yet-valid", "cert.not_yet_valid"),
        ("tls-dn", None, "cert.missing"),
        ("tls-dns", "dns-other", "cert.subject_mismatch"),
        ("tls-inter", "inter-leaf-only", "cert.untrusted"),
        ("self-signed", "ss-other", "cert.unregistered"),
        ("self-signed", "ss-expired", "cert.expired"),
        ("self-signed", "dn", "cert.unregistered"),
        ("basic", "dn", "client.method_mismatch"),
        ("pk-jwt", "binder", "client.method_mismatch"),
        ("nobody", "dn", "client.unknown"),
    ],
)
def test_the_servers_reason_for_a_refused_certificate(
    server_data: Server, client_id: str, cert: str | None, reason: str
) -> None:
    code, out = check(server_data, client_id, cert)
    assert (code, out["accepted"], out["reason"]) == (1, False, reason), out
    assert out["meaning"] == REASONS[reason]
    assert out["advice"], "a refusal always says what to do"


def test_subject_mismatch_names_the_registered_value_and_the_certificates_names(server_data: Server) -> None:
    _, out = check(server_data, "tls-dns", "dns-other")
    facts = "\n".join(out["facts"])
    assert "registered subject (tls_client_auth_san_dns): 'client.e2e.example'" in facts
    assert "DNS:other.e2e.example" in facts


def test_a_self_signed_copy_is_called_self_signed(server_data: Server) -> None:
    result = run(*server_data.args("tls-dn", "dn-self-signed"))
    assert result.exit_code == 1
    assert "this certificate is self-signed" in result.stdout


def test_the_chain_option_supplies_intermediates(server_data: Server, tmp_path: Path) -> None:
    cred = server_data.m["inter-leaf-only"]
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        server_data.m["inter"].cert_file.read_bytes().split(b"-----END CERTIFICATE-----\n", 1)[1]
    )
    code, out = check(server_data, "tls-inter", "inter-leaf-only", "--chain", str(chain))
    assert (code, out["reason"]) == (0, "ok"), out
    assert out["certificate"]["x5t_s256"] == cred.x5t
    # the same certificate file with the chain after the leaf works as well
    assert check(server_data, "tls-inter", "inter")[0] == 0


def test_a_registered_self_signed_certificate_would_be_accepted(server_data: Server) -> None:
    code, out = check(server_data, "self-signed", "ss")
    assert (code, out["method"]) == (0, "self_signed_tls_client_auth")


def test_a_certificate_never_authenticates_a_secret_client(server_data: Server) -> None:
    result = run(*server_data.args("basic", "dn"))
    assert result.exit_code == 1
    assert "a certificate alone never authenticates this client: it uses client_secret_basic" in result.stdout
    assert "Authorization: Basic" in result.stdout


def test_a_public_client_needs_only_its_client_id(server_data: Server) -> None:
    code, out = check(server_data, "public", None)
    assert (code, out["method"]) == (0, "none")


def test_the_endpoint_option_uses_that_endpoints_method(server_data: Server) -> None:
    assert check(server_data, "split", "dn")[1]["reason"] == "client.method_mismatch"  # token: Basic
    code, out = check(server_data, "split", "dn", "--endpoint", "introspection")
    assert (code, out["method"], out["endpoint"]) == (0, "tls_client_auth", "introspection")
    code, out = check(server_data, "split", "dn-other", "--endpoint", "introspection")
    assert (code, out["reason"]) == (1, "cert.subject_mismatch")


def test_an_explicit_client_ca_replaces_the_dev_ca(server_data: Server, tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.pem"
    other_ca.write_bytes(cert_to_pem(server_data.m["dn-rogue-ca"].chain[0]))
    code, out = check(server_data, "tls-dn", "dn", "--client-ca", str(other_ca))
    assert (code, out["reason"]) == (1, "cert.untrusted")
    code, out = check(server_data, "tls-dn", "dn-rogue-ca", "--client-ca", str(other_ca))
    assert (code, out["reason"]) == (0, "ok")


def test_without_a_client_ca_tls_client_auth_cannot_succeed(server_data: Server) -> None:
    result = run(
        "--client-id",
        "tls-dn",
        "--cert",
        str(server_data.m["dn"].cert_file),
        "--data-dir",
        str(server_data.data_dir),
        "--json",
    )
    out = one_json(result)
    assert (result.exit_code, out["reason"]) == (1, "cert.untrusted")
    assert any("no client CA is configured" in fact for fact in out["facts"])


def test_the_check_writes_nothing(server_data: Server, tmp_path: Path) -> None:
    """--dev reads the dev CA if it is there; it never creates a PKI or a key-encryption key."""
    data = tmp_path / "copy"
    shutil.copytree(server_data.data_dir, data, ignore=shutil.ignore_patterns("pki", "kek"))
    before = sorted(p.name for p in data.iterdir())
    result = run(
        "--client-id",
        "tls-dn",
        "--cert",
        str(server_data.m["dn"].cert_file),
        "--data-dir",
        str(data),
        "--dev",
    )
    assert result.exit_code == 1  # no dev CA there: untrusted
    assert sorted(p.name for p in data.iterdir()) == before


# -- usage errors ------------------------------------------------------------------------------------


def test_usage_errors_are_one_line_and_exit_2(server_data: Server, tmp_path: Path) -> None:
    data = str(server_data.data_dir)
    cert = str(server_data.m["dn"].cert_file)
    usage_error(run(), "give either --event")
    usage_error(run("--event", "-", "--client-id", "x"), "give either --event")
    usage_error(run("--event", str(tmp_path / "missing.log")), "no such file")
    usage_error(
        run("--client-id", "tls-dn", "--cert", str(tmp_path / "nope.pem"), "--data-dir", data), "no such file"
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    usage_error(run("--client-id", "tls-dn", "--cert", str(garbage), "--data-dir", data), "not a PEM or DER")
    key_only = server_data.m["dn"].key_file
    usage_error(run("--client-id", "tls-dn", "--cert", str(key_only), "--data-dir", data), "private key")
    usage_error(
        run("--client-id", "tls-dn", "--cert", cert, "--data-dir", data, "--endpoint", "authorize"),
        "--endpoint",
    )
    usage_error(
        run("--client-id", "tls-dn", "--cert", cert, "--data-dir", str(tmp_path / "empty")), "no database"
    )
    usage_error(run("--client-id", "tls-dn", "--chain", cert, "--data-dir", data), "--chain needs --cert")
    usage_error(
        run("--client-id", "tls-dn", "--cert", cert, "--config", str(tmp_path / "none.toml")),
        "config: no such file",
    )
    bad_ca = tmp_path / "bad-ca.pem"
    bad_ca.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    usage_error(
        run("--client-id", "tls-dn", "--cert", cert, "--data-dir", data, "--client-ca", str(bad_ca)),
        "client_ca",
    )


@pytest.mark.postgres
def test_the_check_reads_a_postgresql_store(server_data: Server, tmp_path: Path) -> None:
    clients = {
        "pg-tls": {
            "token_endpoint_auth_method": "tls_client_auth",
            "grant_types": ["client_credentials"],
            "tls_client_auth_subject_dn": server_data.m["dn"].subject,
        }
    }
    clients_file = tmp_path / "clients.toml"
    clients_file.write_text(clients_toml(clients))
    with throwaway_database() as url:
        settings = load_settings(
            {"data_dir": tmp_path, "database_url": url, "clients_file": clients_file}, serving=False
        )
        asyncio.run(initialize(settings))
        ca = str(server_data.data_dir / "pki" / "ca.crt")
        common = ["--data-dir", str(tmp_path), "--database-url", url, "--client-ca", ca, "--json"]
        accepted = run("--client-id", "pg-tls", "--cert", str(server_data.m["dn"].cert_file), *common)
        refused = run("--client-id", "pg-tls", "--cert", str(server_data.m["dn-other"].cert_file), *common)
    assert (accepted.exit_code, one_json(accepted)["reason"]) == (0, "ok"), accepted.output
    assert (refused.exit_code, one_json(refused)["reason"]) == (1, "cert.subject_mismatch")
    assert url.split("@")[-1] in "\n".join(one_json(accepted)["facts"])  # which store it read
