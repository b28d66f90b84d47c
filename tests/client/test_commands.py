"""The commands' contract: stdout only the result, one or two lines on stderr on failure, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.client.cli import run_cli
from tests.client.material import Material
from tests.client.stub_server import StubServer


def _args(server: StubServer, material: Material, auth: str = "client_secret_post") -> list[str]:
    return ["--issuer", server.url, "--client-id", "client-1", "--auth", auth, "--ca", str(material.ca_file)]


def test_json_is_exactly_the_server_body(server: StubServer, material: Material) -> None:
    server.routes["POST /token"] = lambda s: (200, '{"access_token":"t1", "token_type":"Bearer",  "x":[1]}')
    got = run_cli(["token", *_args(server, material), "--secret", "s", "--json"])
    assert got.exit_code == 0
    assert got.stdout == '{"access_token":"t1", "token_type":"Bearer",  "x":[1]}\n'
    assert got.stderr == ""


def test_secret_sources(server: StubServer, material: Material, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    assert run_cli(["token", *_args(server, material), "--secret-file", str(secret_file)]).exit_code == 0
    assert (
        run_cli(["token", *_args(server, material)], {"CERTBOUND_CLIENT_SECRET": "from-env"}).exit_code == 0
    )
    assert [s.form["client_secret"] for s in server.posts("/token")] == [["from-file"], ["from-env"]]

    both = run_cli(["token", *_args(server, material), "--secret", "a", "--secret-file", str(secret_file)])
    assert (both.exit_code, both.stderr) == (2, "certbound token: give --secret or --secret-file, not both\n")
    none = run_cli(["token", *_args(server, material)])
    assert (none.exit_code, none.stderr) == (2, "certbound token: client_secret_post needs a client secret\n")


def test_introspection_inactive_is_success(server: StubServer, material: Material) -> None:
    server.routes["POST /introspect"] = lambda s: (200, {"active": False})
    got = run_cli(["introspect", *_args(server, material), "--secret", "s", "--", "-opaque-token"])
    assert (got.exit_code, got.stdout) == (0, "active: false\n")
    assert server.posts("/introspect")[0].form["token"] == ["-opaque-token"]


def test_oauth_error_is_one_line_and_exit_1(server: StubServer, material: Material) -> None:
    server.routes["POST /revoke"] = lambda s: (
        400,
        {"error": "unsupported_token_type", "error_description": "no"},
    )
    got = run_cli(["revoke", *_args(server, material), "--secret", "super-secret-value", "tok"])
    assert got.exit_code == 1
    assert got.stdout == ""
    assert got.stderr == f"certbound revoke: unsupported_token_type: no (HTTP 400 from {server.url}/revoke)\n"


def test_bad_key_and_public_jwk_are_usage_errors(
    server: StubServer, material: Material, tmp_path: Path
) -> None:
    cert = ["--cert", str(material.tls_client.cert_file), "--key", str(material.second_tls_client.key_file)]
    got = run_cli(["token", *_args(server, material, "tls_client_auth"), *cert])
    assert got.exit_code == 2
    assert "is not the key of the certificate" in got.stderr
    assert "Traceback" not in got.stderr
    public = tmp_path / "public.jwk"
    public.write_text(json.dumps(material.jwt_public))
    got = run_cli(["token", *_args(server, material, "private_key_jwt"), "--jwk", str(public)])
    assert (got.exit_code, got.stderr.count("\n")) == (2, 1)
    assert "public key" in got.stderr


def test_network_failure_exit_4(material: Material) -> None:
    got = run_cli(
        [
            "token",
            "--issuer",
            "https://127.0.0.1:9",
            "--client-id",
            "c",
            "--auth",
            "none",
            "--ca",
            str(material.ca_file),
        ]
    )
    assert got.exit_code == 4
    assert got.stderr.startswith("certbound token: cannot connect")
    assert len(got.stderr.splitlines()) == 1


def test_each_command_posts_to_its_own_mtls_endpoint_override(server: StubServer, material: Material) -> None:
    server.routes["POST /alt/token"] = lambda s: (200, {"access_token": "t1", "token_type": "Bearer"})
    server.routes["POST /alt/introspect"] = lambda s: (200, {"active": False})
    server.routes["POST /alt/revoke"] = lambda s: (200, "")
    client = [*_args(server, material, "tls_client_auth"), "--cert", str(material.tls_client.cert_file)]
    client += ["--key", str(material.tls_client.key_file)]
    for command, flag, path, token in [
        ("token", "--mtls-token-endpoint", "/alt/token", []),
        ("introspect", "--mtls-introspection-endpoint", "/alt/introspect", ["t1"]),
        ("revoke", "--mtls-revocation-endpoint", "/alt/revoke", ["t1"]),
    ]:
        got = run_cli([command, *client, flag, server.url + path, *token])
        assert got.exit_code == 0, got.stderr
        assert [s.path for s in server.seen if s.method == "POST"][-1] == path

    other = run_cli(["token", *client, "--mtls-revocation-endpoint", server.url + "/alt/revoke"])
    assert other.exit_code == 2
