"""Settings: precedence (flag > environment > file > default), `_file` secrets, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from certbound.config import SettingsError, load_settings


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "x.pem"
    path.write_text("placeholder")
    return path


def base(pem: Path) -> dict[str, object]:
    return {"tls_cert": pem, "tls_key": pem}


def test_defaults(pem: Path) -> None:
    s = load_settings(base(pem))
    assert (s.host, s.port, s.workers, s.mtls_port) == ("127.0.0.1", 8443, 1, None)
    assert s.issuer_url == "https://127.0.0.1:8443"
    assert s.mtls_url == s.issuer_url
    assert s.effective_database_url.startswith("sqlite:///")
    assert s.effective_database_url.endswith("data/certbound.db")
    assert s.registration_token_value() is None


def test_precedence_flag_env_file(pem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(f'port = 9001\nhost = "127.0.0.2"\nworkers = 3\ntls_cert = "{pem}"\ntls_key = "{pem}"\n')
    s = load_settings({}, toml)
    assert (s.port, s.host, s.workers) == (9001, "127.0.0.2", 3)
    monkeypatch.setenv("CERTBOUND_PORT", "9002")
    monkeypatch.setenv("CERTBOUND_WORKERS", "2")
    s = load_settings({}, toml)
    assert (s.port, s.host, s.workers) == (9002, "127.0.0.2", 2)
    s = load_settings({"port": 9003}, toml)
    assert (s.port, s.workers) == (9003, 2)


def test_secret_from_file(pem: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a-long-registration-token-value\n")
    s = load_settings({**base(pem), "registration_token_file": token})
    assert s.registration_token_value() == "a-long-registration-token-value"


def test_secret_is_not_printed(pem: Path) -> None:
    s = load_settings({**base(pem), "registration_token": "a-long-registration-token-value"})
    assert "a-long-registration-token-value" not in repr(s)


def test_mtls_port_aliases(pem: Path) -> None:
    s = load_settings({**base(pem), "mtls_port": 8444, "issuer": "https://as.example.com:8443/tenant"})
    assert s.mtls_url == "https://as.example.com:8444/tenant"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"port": 0}, "port:"),
        ({"port": "x"}, "port:"),
        ({"workers": 0}, "workers:"),
        ({"issuer": "http://as.example.com"}, "issuer: must be an https:// URL"),
        ({"issuer": "https://as.example.com/?a=b"}, "issuer: must not have a query"),
        ({"mtls_port": 8443}, "mtls_port and port"),
        ({"registration_token": "short"}, "registration_token: too short"),
        ({"database_url": "mysql://x"}, "database_url:"),
        ({"signing_alg": "none"}, "signing_alg:"),
        ({"client_ca": Path("/nonexistent/ca.pem")}, "client_ca: no such file"),
        ({"client_cert_revocation": "crl,ocsp"}, "client_cert_revocation:"),
        ({"client_cert_revocation_max_age": 10}, "client_cert_revocation_max_age:"),
        ({"client_ca_crls": ["/nonexistent/ca.crl"]}, "client_ca_crls: no such file: /nonexistent/ca.crl"),
        ({"client_ca_crls": ["ldap://ldap.example/cn=crl"]}, "client_ca_crls: 'ldap://"),
        ({"client_ca_crls": ["http:///ca.crl"]}, "client_ca_crls: 'http:///ca.crl'"),
        (
            {"client_ca_crls": ["https://pki.example/ca.crl"], "client_cert_revocation": "ocsp"},
            "client_ca_crls and client_cert_revocation",
        ),
        (
            {"client_ca_crls": ["https://pki.example/ca.crl"], "client_cert_revocation": "off"},
            "client_ca_crls and client_cert_revocation",
        ),
        (
            {"registration_token": "0123456789abcdef0", "registration_token_file": Path("/x")},
            "registration_token and registration_token_file",
        ),
    ],
)
def test_bad_settings_name_the_setting(pem: Path, flags: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({**base(pem), **flags})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_revocation_settings(pem: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings(base(pem))
    assert (s.client_cert_revocation, s.client_cert_revocation_soft_fail) == ("ocsp,crl", False)
    assert (s.client_cert_revocation_max_age, s.client_ca_crls) == (86400, [])
    crl = tmp_path / "ca.crl"
    crl.write_bytes(b"x")
    monkeypatch.setenv("CERTBOUND_CLIENT_CA_CRLS", f"{crl}, https://pki.example/ca.crl")
    monkeypatch.setenv("CERTBOUND_CLIENT_CERT_REVOCATION", "crl")
    monkeypatch.setenv("CERTBOUND_CLIENT_CERT_REVOCATION_SOFT_FAIL", "true")
    s = load_settings(base(pem))
    assert s.client_ca_crls == [str(crl), "https://pki.example/ca.crl"]
    assert (s.client_cert_revocation, s.client_cert_revocation_soft_fail) == ("crl", True)


def test_cert_without_key(pem: Path) -> None:
    with pytest.raises(SettingsError, match="tls_cert and tls_key"):
        load_settings({"tls_cert": pem})


def test_no_cert_outside_dev() -> None:
    with pytest.raises(SettingsError, match="tls_cert: required"):
        load_settings({})
    assert load_settings({"dev": True}).dev


def test_unknown_key_in_file(pem: Path, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot: unknown setting"):
        load_settings(base(pem), toml)


def test_malformed_file(pem: Path, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("port = \n")
    with pytest.raises(SettingsError, match="config:"):
        load_settings(base(pem), toml)


def test_missing_config_file(pem: Path) -> None:
    with pytest.raises(SettingsError, match="config: no such file"):
        load_settings(base(pem), Path("/nonexistent.toml"))


def test_bad_environment_value(pem: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTBOUND_WORKERS", "many")
    with pytest.raises(SettingsError, match="workers:"):
        load_settings(base(pem))


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_trusting_every_address_is_refused(pem: Path, cidr: str) -> None:
    with pytest.raises(SettingsError, match=r"trusted_proxies: .* trusts every address"):
        load_settings({**base(pem), "trusted_proxies": [cidr], "forwarded_cert_header": "nginx"})


@pytest.mark.parametrize("content", ["", "short\n"])
def test_registration_token_file_is_checked_at_start(pem: Path, tmp_path: Path, content: str) -> None:
    token = tmp_path / "token"
    token.write_text(content)
    with pytest.raises(SettingsError, match="registration_token_file: "):
        load_settings({**base(pem), "registration_token_file": token})


def test_malformed_file_is_named(pem: Path, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("port = \n")
    with pytest.raises(SettingsError, match=f"config: {toml}: "):
        load_settings(base(pem), toml)


def test_database_url_is_not_in_repr(pem: Path) -> None:
    s = load_settings({**base(pem), "database_url": "postgresql://u:hunter2@db/x"})
    assert "hunter2" not in repr(s)
