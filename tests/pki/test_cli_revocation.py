"""`certbound pki revoke`, `certbound pki crl` and `certbound pki issue --crl-url/--ocsp-url`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from typer.testing import CliRunner

from certbound.cli.pki import app
from certbound.pki.issue import create_ca, issue_client_cert
from certbound.pki.pem import cert_to_pem, load_cert_file
from certbound.pki.revocation import crl_status, load_crl, revocation_pointers

runner = CliRunner()


def _init(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    assert runner.invoke(app, ["init", "--dir", str(directory)]).exit_code == 0
    return directory


def test_revoke_then_crl(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    client = directory / "demo-client.crt"
    revoked = runner.invoke(
        app, ["revoke", str(client), "--dir", str(directory), "--reason", "keyCompromise"]
    )
    assert revoked.exit_code == 0, revoked.output
    assert "revoked: serial" in revoked.stdout
    assert (directory / "ca.revoked.json").is_file()
    again = runner.invoke(app, ["revoke", str(client), "--dir", str(directory)])
    assert again.exit_code == 0
    assert "already revoked" in again.stdout

    printed = runner.invoke(app, ["crl", "--dir", str(directory)])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith("-----BEGIN X509 CRL-----")
    crl = load_crl(printed.stdout.encode())
    ca, leaf = load_cert_file(directory / "ca.crt"), load_cert_file(client)
    found = crl_status(crl, leaf, ca, source="crl test", at=datetime.now(UTC))
    assert (found.status, found.reason) == ("revoked", "keyCompromise")
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    out = tmp_path / "ca.crl"
    written = runner.invoke(app, ["crl", "--dir", str(directory), "--out", str(out), "--days", "2", "--der"])
    assert written.exit_code == 0, written.output
    der = load_crl(out.read_bytes())
    assert der.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == number + 1
    assert der.next_update_utc is not None
    assert 1 <= (der.next_update_utc - der.last_update_utc).days <= 2


def test_revoke_refuses_a_certificate_of_another_ca(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    other = create_ca("CN=Other CA")
    stranger = tmp_path / "stranger.crt"
    stranger.write_bytes(cert_to_pem(issue_client_cert(*other, "CN=stranger")[0]))
    result = runner.invoke(app, ["revoke", str(stranger), "--dir", str(directory)])
    assert result.exit_code == 2
    assert "was not issued by the CA" in result.stderr
    bad_reason = runner.invoke(app, ["revoke", str(directory / "demo-client.crt"), "--dir", str(directory),
                                     "--reason", "tired"])  # fmt: skip
    assert bad_reason.exit_code == 2
    assert "unknown reason 'tired'" in bad_reason.stderr
    missing = runner.invoke(app, ["crl", "--dir", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr


def test_issue_with_revocation_pointers(tmp_path: Path) -> None:
    directory = _init(tmp_path)
    out = tmp_path / "pointed"
    args = ["issue", "--ca-cert", str(directory / "ca.crt"), "--ca-key", str(directory / "ca.key"),
            "--subject", "CN=pointed", "--out", str(out), "--crl-url", "http://pki.test/ca.crl",
            "--ocsp-url", "http://ocsp.pki.test"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pointers = revocation_pointers(load_cert_file(tmp_path / "pointed.crt"))
    assert (pointers.crl, pointers.ocsp) == (("http://pki.test/ca.crl",), ("http://ocsp.pki.test",))
    bad = runner.invoke(app, [*args[:-4], "--crl-url", "ldap://x/cn=crl", "--force"])
    assert bad.exit_code == 2
    assert "--crl-url 'ldap://x/cn=crl'" in bad.stderr
