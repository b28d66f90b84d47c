"""Settings for proxies, logs and metrics: validation in one line, CLI flags, and the settings table."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from certbound.config import Settings, SettingsError, load_settings
from tests.proxy.nginxproc import REPO, free_port
from tests.server.process.serverproc import CERTBOUND


def test_defaults_are_off_and_safe() -> None:
    s = load_settings({"dev": True})
    assert s.trusted_proxies == []
    assert s.forwarded_cert_header is None
    assert s.metrics_port is None  # no extra listener unless asked
    assert s.metrics_host == "127.0.0.1"  # and loopback when asked without a host
    assert s.log_format == "json"


def test_trusted_proxies_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = {"dev": True, "forwarded_cert_header": "nginx"}
    given = load_settings({**flags, "trusted_proxies": ["127.0.0.1", "::1", "10.0.0.0/8"]})
    assert given.trusted_proxies == ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]
    monkeypatch.setenv("CERTBOUND_TRUSTED_PROXIES", "192.0.2.0/24, 127.0.0.1")
    assert load_settings(flags).trusted_proxies == ["192.0.2.0/24", "127.0.0.1/32"]
    monkeypatch.setenv("CERTBOUND_TRUSTED_PROXIES", '["192.0.2.0/24"]')
    assert load_settings(flags).trusted_proxies == ["192.0.2.0/24"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"trusted_proxies": ["10.0.0.1/8"], "forwarded_cert_header": "nginx"},
         "trusted_proxies: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"),
        ({"trusted_proxies": ["proxy.local"], "forwarded_cert_header": "nginx"},
         "trusted_proxies: 'proxy.local' is not an IP address or CIDR"),
        ({"trusted_proxies": ["127.0.0.1"]}, "trusted_proxies and forwarded_cert_header: give both"),
        ({"forwarded_cert_header": "rfc9440"}, "trusted_proxies and forwarded_cert_header: give both"),
        ({"forwarded_cert_header": "haproxy", "trusted_proxies": ["127.0.0.1"]}, "forwarded_cert_header:"),
        ({"forwarded_cert_intermediates": "/etc/hostname"}, "forwarded_cert_intermediates: needs"),
        ({"metrics_port": 8443}, "metrics_port and port/mtls_port: 8443 is taken"),
        ({"log_format": "xml"}, "log_format:"),
    ],
)  # fmt: skip
def test_refused_in_one_line(flags: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"dev": True, **flags})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_keys_commands_need_no_server_certificate() -> None:
    with pytest.raises(SettingsError, match="tls_cert: required"):
        load_settings({})
    assert load_settings({}, serving=False).tls_cert is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trusted-proxy", "127.0.0.1/32"], "trusted_proxies and forwarded_cert_header"),
        (["--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.1/8",
          "--forwarded-cert-header", "nginx"], "did you mean 10.0.0.0/8"),
        (["--trusted-proxy", "127.0.0.1", "--forwarded-cert-header", "nginx",
          "--forwarded-cert-intermediates", "/etc/hostname"], "start-up: forwarded_cert_intermediates:"),
    ],
)  # fmt: skip
def test_serve_flags_refuse_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [*CERTBOUND, "serve", "--dev", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_metrics_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [*CERTBOUND, "serve", "--dev", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
             "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2
    assert f"metrics_port: cannot listen on 127.0.0.1:{port}" in proc.stderr


def settings_table() -> str:
    """docs/settings.md's table, as generated from `Settings` (paste it there when a setting changes)."""
    rows = ["| setting | environment | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = "" if field.default_factory is not None or field.default is None else f"`{field.default}`"
        rows.append(f"| `{name}` | `CERTBOUND_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


def test_settings_table_lists_every_setting_with_its_default_and_description() -> None:
    text = (REPO / "docs" / "settings.md").read_text()
    table = "\n".join(line for line in text.splitlines() if line.startswith("| "))
    expected = settings_table()
    assert table == expected, f"docs/settings.md is out of date; its table should read:\n{expected}"
