"""What the process of ``certbound gateway`` loads depends on its routes: without login sessions it
serves without SQLAlchemy, alembic, asyncpg or redis (their modules weigh tens of MiB in every worker,
docs/performance.md); a route whose sessions live in the store loads SQLAlchemy when the gateway opens,
and its logins are written there.

Each gateway here is the real command (``python -m certbound gateway``, as every gateway test starts
it) under `modules_at_exit.py`, which writes the names of the modules it loaded when it exits: after
it served real requests over TLS, with tokens of the real certbound identity provider.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.client.material import Material
from tests.gateway.conftest import IDENTITY, idp_settings
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.idps import Idp

pytestmark = pytest.mark.slow

#: What only the stores of sessions need: SQLAlchemy and its migrations (alembic, which loads mako),
#: the PostgreSQL driver, and the Redis client.
STORE_PACKAGES = ("sqlalchemy", "alembic", "mako", "asyncpg", "redis")
WRAPPER = Path(__file__).with_name("modules_at_exit.py")


def start(config: dict[str, Any], workdir: Path, material: Material) -> tuple[RunningGateway, Path]:
    """`config`'s gateway, started as `certbound gateway`; the file its loaded modules go to."""
    modules = workdir / "modules.json"
    # -P: the wrapper's folder (tests/gateway) not on sys.path, as it is not for `python -m certbound`
    command = [sys.executable, "-P", str(WRAPPER), str(modules)]
    return start_gateway(config, workdir, ca_file=material.ca_file, command=command), modules


def stop(gateway: RunningGateway, modules: Path) -> set[str]:
    """Stop `gateway` as a service manager would (SIGTERM); the top-level packages it had loaded."""
    assert gateway.stop() == 0, gateway.output()[-3000:]
    return {name.partition(".")[0] for name in json.loads(modules.read_text())}


def bearer_route(name: str, echo: Echo, **settings: Any) -> dict[str, Any]:
    return {"name": name, "paths": [f"/{name}"], "upstream": echo.url, "idp": "certbound",
            "upstream_headers": IDENTITY, **settings}  # fmt: skip


def test_a_gateway_without_sessions_serves_without_the_stores_packages(
    material: Material, echo: Echo, idps: dict[str, Idp], tmp_path: Path
) -> None:
    idp = idps["certbound"]
    config = {
        "listener": {"tls_cert": str(material.server.cert_file), "tls_key": str(material.server.key_file)},
        "idps": {"certbound": idp_settings(idp, material)},
        "routes": [
            bearer_route("bearer", echo, auth_methods=["bearer"]),
            bearer_route("introspect", echo, auth_methods=["introspection"]),
        ],
    }
    gateway, modules = start(config, tmp_path, material)
    try:
        with gateway.client(material.tls_client) as client:
            jwt = client.get(f"{gateway.url}/bearer/a", headers={"Authorization": f"Bearer {idp.token()}"})
            opaque = client.get(
                f"{gateway.url}/introspect/b", headers={"Authorization": f"Bearer {idp.token('opaque')}"}
            )
            missing = client.get(f"{gateway.url}/bearer/c")
    finally:
        loaded = stop(gateway, modules)
    assert (jwt.status_code, opaque.status_code, missing.status_code) == (200, 200, 401), gateway.output()
    assert {"certbound", "uvicorn", "httpx"} <= loaded  # the wrapper saw the gateway's process
    assert loaded.isdisjoint(STORE_PACKAGES), sorted(loaded.intersection(STORE_PACKAGES))


def test_a_route_with_sessions_in_the_store_loads_sqlalchemy_and_writes_its_logins_there(
    material: Material, echo: Echo, idps: dict[str, Idp], tmp_path: Path
) -> None:
    idp = idps["certbound"]
    data_dir = tmp_path / "data"
    login = {"name": "app", "paths": ["/app"], "upstream": echo.url, "idp": "certbound",
             "auth_methods": ["authorization_code", "session"],
             "redirect_uri": "https://127.0.0.1/app/callback"}  # fmt: skip
    config = {
        "listener": {"tls_cert": str(material.server.cert_file), "tls_key": str(material.server.key_file)},
        "store": {"data_dir": str(data_dir)},
        "idps": {"certbound": idp_settings(idp, material)},
        "routes": [login, bearer_route("bearer", echo, auth_methods=["bearer"])],
    }
    gateway, modules = start(config, tmp_path, material)
    try:
        with gateway.client() as client:
            started = client.get(f"{gateway.url}/app/page")
    finally:
        loaded = stop(gateway, modules)
    assert started.status_code == 302, gateway.output()[-3000:]
    assert started.headers["location"].startswith(f"{idp.issuer}/authorize?")
    with sqlite3.connect(data_dir / "certbound.db") as db:
        purposes = [row[0] for row in db.execute("SELECT purpose FROM sessions")]
    assert purposes == ["gateway-login:app"]  # the pending login, in the store
    assert {"sqlalchemy", "alembic"} <= loaded
    assert "redis" not in loaded  # no route keeps its sessions in Redis
