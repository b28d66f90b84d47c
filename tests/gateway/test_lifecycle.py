"""Starting, checking and outliving an identity provider: `certbound gateway --check`, a gateway whose
IdP is down when it starts (it serves 503s, then picks the IdP up), and an IdP that goes away."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from certbound.pki.devpki import ensure_dev_pki
from tests.client.material import Material
from tests.gateway.conftest import gateway_config
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import start_gateway, write_config
from tests.gateway.idps import Idp, start_certbound_idp
from tests.server.process.serverproc import CERTBOUND, free_port

pytestmark = pytest.mark.slow


def check(config_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CERTBOUND, "gateway", "--check", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_prints_nothing_or_one_line(
    material: Material, echo: Echo, idps: dict[str, Idp], workdir: Path
) -> None:
    config = gateway_config(material, echo, idps)
    good = check(write_config(workdir / "good.toml", config))
    assert (good.returncode, good.stdout, good.stderr) == (0, "", "")
    config["routes"][3]["proof_of_possession_mtls"] = "sometimes"
    bad = check(write_config(workdir / "bad.toml", config))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith("certbound gateway: routes[3].proof_of_possession_mtls: ")
    config["routes"][3]["proof_of_possession_mtls"] = "strict"
    config["listener"]["tls_key"] = str(material.gateway.key_file)  # not the key of tls_cert
    bad = check(write_config(workdir / "bad.toml", config))
    assert (bad.returncode, bad.stdout) == (1, "")
    assert bad.stderr.startswith("certbound gateway: listener.tls_key: cannot load it")
    assert bad.stderr.count("\n") == 1


def test_an_idp_down_at_start_then_back(material: Material, echo: Echo, workdir: Path) -> None:
    """The gateway starts, answers 503 (not 401, and never a pass) while its IdP is down, picks the
    IdP up when it comes back, and answers 503 again for new tokens when it goes."""
    data = workdir / "idp" / "data"
    pki = ensure_dev_pki(data / "pki")  # the IdP's CA exists before the IdP does
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    settings: dict[str, Any] = {
        "listener": {"tls_cert": str(material.server.cert_file), "tls_key": str(material.server.key_file)},
        "idp": {
            "issuer": issuer,
            "client_id": "gateway",
            "tls_client_auth_cert": str(material.gateway.cert_file),
            "tls_client_auth_key": str(material.gateway.key_file),
            "ca_bundle": str(pki.ca_cert),
        },
        "routes": [
            {"name": "late", "paths": ["/late"], "upstream": echo.url, "proof_of_possession_mtls": "strict"}
        ],
    }
    gateway = start_gateway(settings, workdir / "gateway", ca_file=material.ca_file)
    try:
        marker = secrets.token_hex(6)
        with gateway.client(material.tls_client) as client:
            response = client.get(
                f"{gateway.url}/late/{marker}", headers={"Authorization": "Bearer opaque-or-not"}
            )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert "www-authenticate" not in response.headers
        assert echo.reached(marker) == []
        assert gateway.event_for(marker)["reason"] == "idp.unavailable"
        assert "not ready" in gateway.output()  # the warm-up at start said so

        idp = start_certbound_idp(material, workdir / "idp", port=port)
        try:
            token = idp.token("opaque")
            deadline = time.monotonic() + 20
            while True:  # a failed discovery is retried at most every 2 s
                with gateway.client(material.tls_client) as client:
                    response = client.get(
                        f"{gateway.url}/late/back", headers={"Authorization": f"Bearer {token}"}
                    )
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert response.status_code == 200, response.text
        finally:
            idp.stop()
        fresh = secrets.token_urlsafe(24)  # never cached: the IdP must be asked, and is gone
        with gateway.client(material.tls_client) as client:
            response = client.get(f"{gateway.url}/late/gone", headers={"Authorization": f"Bearer {fresh}"})
        assert response.status_code == 503
    finally:
        gateway.stop()


def test_stopping_is_clean(material: Material, echo: Echo, idps: dict[str, Idp], workdir: Path) -> None:
    gateway = start_gateway(gateway_config(material, echo, idps), workdir, ca_file=material.ca_file)
    with gateway.client() as client:
        assert client.get(gateway.url + "/healthz").json() == {"status": "ok"}
    assert gateway.stop() == 0
    assert "Traceback" not in gateway.output()
