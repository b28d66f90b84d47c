"""`certbound pki` commands, run through typer's CliRunner on the sub-app."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from certbound.cli.pki import app
from certbound.pki.chain import ChainVerifier
from certbound.pki.describe import key_type
from certbound.pki.dn import dn_matches
from certbound.pki.jwk import jwk_matches_cert
from certbound.pki.pem import load_cert_file, load_key_file
from certbound.pki.san import SubjectAltNames
from certbound.pki.thumbprint import x5t_s256

runner = CliRunner()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    result = runner.invoke(app, ["init", "--dir", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


def _one_error_line(result_stderr: str) -> str:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert "Traceback" not in result_stderr
    return lines[0]


def test_init_prints_paths_and_is_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    first = runner.invoke(
        app, ["init", "--dir", str(directory), "--host", "localhost", "--host", "127.0.0.1"]
    )
    assert first.exit_code == 0, first.output
    assert "created: ca, server, client" in first.stdout
    assert str(directory / "ca.crt") in first.stdout
    assert str(directory / "server.key") in first.stdout
    second = runner.invoke(
        app, ["init", "--dir", str(directory), "--host", "localhost", "--host", "127.0.0.1"]
    )
    assert second.exit_code == 0
    assert "created: nothing" in second.stdout
    forced = runner.invoke(app, ["init", "--dir", str(directory), "--force"])
    assert "created: ca, server, client" in forced.stdout


def test_issue(dev_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "alice"
    result = runner.invoke(
        app,
        [
            "issue",
            "--ca-cert", str(dev_dir / "ca.crt"),
            "--ca-key", str(dev_dir / "ca.key"),
            "--subject", "CN=alice, O=Org",
            "--dns", "alice.example",
            "--uri", "spiffe://example/alice",
            "--ip", "192.0.2.7",
            "--email", "alice@example.com",
            "--days", "30",
            "--key-type", "ec-p384",
            "--out", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cert = load_cert_file(tmp_path / "alice.crt")
    assert _mode(tmp_path / "alice.key") == 0o600
    assert key_type(load_key_file(tmp_path / "alice.key")) == "EC P-384"
    assert dn_matches(cert.subject, "CN=alice,O=Org")
    sans = SubjectAltNames.from_cert(cert)
    assert sans.has_dns("alice.example")
    assert sans.has_uri("spiffe://example/alice")
    assert sans.has_ip("192.0.2.7")
    assert sans.has_email("alice@example.com")
    assert ChainVerifier([load_cert_file(dev_dir / "ca.crt")]).verify(cert).ok
    again = runner.invoke(
        app,
        ["issue", "--ca-cert", str(dev_dir / "ca.crt"), "--ca-key", str(dev_dir / "ca.key"),
         "--subject", "CN=alice", "--out", str(out)],
    )  # fmt: skip
    assert again.exit_code == 2
    assert "already exist" in _one_error_line(again.stderr)


def test_self_signed(tmp_path: Path) -> None:
    out = tmp_path / "selfie"
    result = runner.invoke(
        app, ["self-signed", "--subject", "CN=selfie", "--uri", "https://c.example", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    cert = load_cert_file(tmp_path / "selfie.crt")
    public = json.loads((tmp_path / "selfie.jwk.json").read_text())
    private = json.loads((tmp_path / "selfie.private.jwk.json").read_text())
    assert "d" not in public
    assert "d" in private
    assert _mode(tmp_path / "selfie.private.jwk.json") == 0o600
    assert _mode(tmp_path / "selfie.key") == 0o600
    assert _mode(tmp_path / "selfie.jwk.json") == 0o644
    assert public["x5t#S256"] == x5t_s256(cert)
    assert jwk_matches_cert(public, cert)
    assert x5t_s256(cert) in result.stdout


def test_inspect_text_bundle_and_der(dev_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((dev_dir / "demo-client.crt").read_bytes() + (dev_dir / "ca.crt").read_bytes())
    result = runner.invoke(app, ["inspect", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "certificate 1 of 2" in result.stdout
    assert "certificate 2 of 2" in result.stdout
    assert "CN=demo-client,O=certbound demo" in result.stdout
    assert "EC P-256" in result.stdout
    assert x5t_s256(load_cert_file(dev_dir / "demo-client.crt")) in result.stdout

    der = tmp_path / "server.der"
    der.write_bytes(load_cert_file(dev_dir / "server.crt").public_bytes(Encoding.DER))
    result = runner.invoke(app, ["inspect", str(der)])
    assert result.exit_code == 0, result.output
    assert "SAN DNS:" in result.stdout
    assert "127.0.0.1, ::1" in result.stdout


def test_inspect_json(dev_dir: Path) -> None:
    result = runner.invoke(app, ["inspect", "--json", str(dev_dir / "server.crt")])
    assert result.exit_code == 0, result.output
    (info,) = json.loads(result.stdout)
    assert info["subject"] == "CN=localhost"
    assert info["san"]["ip"] == ["127.0.0.1", "::1"]
    assert info["x5t#S256"] == x5t_s256(load_cert_file(dev_dir / "server.crt"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "missing.pem"], "missing.pem: no such file"),
        (["self-signed", "--subject", "CN=a;b", "--out", "{tmp}/x"], "invalid distinguished name"),
        (["self-signed", "--subject", "CN=a", "--ip", "999.1.1.1", "--out", "{tmp}/x"], "not an IP address"),
        (["self-signed", "--subject", "CN=a", "--key-type", "dsa", "--out", "{tmp}/x"], "unknown key type"),
        (
            ["issue", "--ca-cert", "{tmp}/nope.crt", "--ca-key", "{tmp}/nope.key", "--subject", "CN=a",
             "--out", "{tmp}/x"],
            "nope.crt: no such file",
        ),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert line.startswith("certbound pki: ")
    assert message in line
    assert not (tmp_path / "x.crt").exists()


def test_key_given_as_ca_cert_is_a_clear_error(dev_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["issue", "--ca-cert", str(dev_dir / "ca.key"), "--ca-key", str(dev_dir / "ca.key"),
         "--subject", "CN=a", "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "holds a private key" in _one_error_line(result.stderr)


def test_no_args_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "init" in result.output
    assert "self-signed" in result.output
