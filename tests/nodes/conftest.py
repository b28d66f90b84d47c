"""Several certbound nodes on one PostgreSQL database, and nginx in front of them
(deploy/nginx/certbound-nodes.conf.template), as real processes."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from bench.nodes import Node, free_port, start_node

from tests.pg_helpers import throwaway_database
from tests.proxy.nginxproc import REPO, Nginx, client_context, find_nginx, render_template, run_nginx

TEMPLATE = REPO / "deploy" / "nginx" / "certbound-nodes.conf.template"
#: Where the tests connect to a node directly from: not the trusted proxy's address (127.0.0.1), so
#: that the node uses the TLS client certificate of that connection.
DIRECT = "127.0.0.2"


@dataclass
class Balanced:
    """Two nodes and the nginx that balances them; `url` is nginx's."""

    nodes: list[Node]
    nginx: Nginx
    database_url: str
    data_dir: Path

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    def through_nginx(self, *, cert: bool = True, timeout: float = 10) -> httpx.Client:
        ctx = client_context(self.pki / "ca.crt", *self._demo(cert))
        return httpx.Client(base_url=self.url, verify=ctx, timeout=timeout)

    def direct(self, node: Node, *, cert: bool = True, timeout: float = 10) -> httpx.Client:
        ctx = client_context(self.pki / "ca.crt", *self._demo(cert))
        transport = httpx.HTTPTransport(verify=ctx, local_address=DIRECT)
        return httpx.Client(base_url=node.url, transport=transport, timeout=timeout)

    def _demo(self, cert: bool) -> tuple[Path | None, Path | None]:
        if not cert:
            return None, None
        return self.pki / "demo-client.crt", self.pki / "demo-client.key"

    def registration_token(self) -> str:
        return (self.data_dir / "registration-token").read_text().strip()


def nginx_values(nodes: list[Node], port: int, pki: Path) -> dict[str, str]:
    return {
        "CERTBOUND_NODE_1": nodes[0].url.removeprefix("https://"),
        "CERTBOUND_NODE_2": nodes[1].url.removeprefix("https://"),
        "NGINX_LISTEN": f"127.0.0.1:{port}",
        "NGINX_SERVER_NAME": "localhost",
        "NGINX_TLS_CERT": str(pki / "server.crt"),
        "NGINX_TLS_KEY": str(pki / "server.key"),
        "NGINX_CLIENT_CA": str(pki / "ca.crt"),
        "CERTBOUND_CA": str(pki / "ca.crt"),
        "CERTBOUND_TLS_NAME": "localhost",
    }


def start_balanced(base: Path, database_url: str, *, workers: int = 1) -> Generator[Balanced, None, None]:
    """Two nodes (each with `workers`) on `database_url` behind nginx; everything stopped afterwards."""
    find_nginx()  # skip (or fail under CI) before starting anything
    port = free_port()
    issuer = f"https://localhost:{port}"
    data = base / "data"
    nodes: list[Node] = []
    try:
        for name in ("node1", "node2"):
            nodes.append(
                start_node(name, data, database_url, issuer, workers=workers, trusted_proxy="127.0.0.1/32")
            )
        text = render_template(nginx_values(nodes, port, data / "pki"), TEMPLATE)
        with run_nginx(base / "nginx", text, port) as nginx:
            yield Balanced(nodes, nginx, database_url, data)
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Balanced]:
    with throwaway_database() as url:
        yield from start_balanced(tmp_path_factory.mktemp("balanced"), url)
