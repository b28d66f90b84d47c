"""Requests shaped to slip past the gateway (review of issue 12): a route's protection cannot be
sidestepped by spelling its path another way, and oversized headers are not passed on.

A gateway with a permissive catch-all route (``/``) and a strict one (``/admin``, a scope no token
has) in front of the echo upstream. Each request below is sent byte for byte over a real TLS
connection; an upstream (Tomcat, Spring, Jetty, nginx's ``merge_slashes``) could read its path as
``/admin``, so the gateway must either refuse it (400) or decide it as ``/admin`` (403): the echo
upstream must never see it.
"""

from __future__ import annotations

import secrets
import socket
import ssl
from collections.abc import Iterator

import pytest

from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.idps import Idp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_routes(
    material: Material, echo: Echo, idps: dict[str, Idp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    certbound = idps["certbound"]
    route = {"upstream": echo.url, "auth_methods": ["bearer"]}
    config = {
        "listener": {"tls_cert": str(material.server.cert_file), "tls_key": str(material.server.key_file)},
        "idp": {"issuer": certbound.issuer, "ca_bundle": str(certbound.ca_file)},
        "routes": [
            {"name": "everything", "paths": ["/"], **route},
            {"name": "admin", "paths": ["/admin"], **route, "scopes_required": ["nobody-has-this"]},
        ],
    }
    running = start_gateway(config, tmp_path_factory.mktemp("paths"), ca_file=material.ca_file)
    yield running
    running.stop()


def raw_get(
    gateway: RunningGateway,
    material: Material,
    target: str,
    token: str,
    extra: str = "",
    *,
    method: str = "GET",
    body: bytes = b"",
) -> int:
    """Send ``<method> <target>`` exactly as written (`extra`: more header lines, then `body`); the
    answer's status."""
    context = ssl.create_default_context(cafile=str(gateway.ca_file))
    context.load_cert_chain(str(material.tls_client.cert_file), str(material.tls_client.key_file))
    port = int(gateway.url.rsplit(":", 1)[1])
    request = (
        f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n{extra}"
        "Connection: close\r\n\r\n"
    )
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as tls,
    ):
        tls.sendall(request.encode("latin-1") + body)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def test_the_strict_route_is_strict(
    two_routes: RunningGateway, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    token = idps["certbound"].token("jwt")
    marker = secrets.token_hex(6)
    assert raw_get(two_routes, material, f"/admin/{marker}", token) == 403
    assert raw_get(two_routes, material, f"/other/{marker}", token) == 200
    assert [s.target for s in echo.reached(marker)] == [f"/other/{marker}"]


@pytest.mark.parametrize(
    "spelling",
    [
        "/admin;jsessionid=1/{m}",  # path parameters: Tomcat and Spring read /admin/{m}
        "/admin%3Bx/{m}",
        "/other/..;/admin/{m}",  # Tomcat's ..; is ..
        "/other/%2E%2E;/admin/{m}",
        "/other/.;/../admin/{m}",
        "//admin/{m}",  # empty segments: merge_slashes, Spring
        "/%2Fadmin/{m}",
        "/other//../admin/{m}",
        "/admin%5C{m}",  # a backslash is a separator to some servers
        "/other%5C..%5Cadmin/{m}",
    ],
)
def test_another_spelling_of_the_strict_path_does_not_pass(
    spelling: str, two_routes: RunningGateway, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    marker = secrets.token_hex(6)
    status = raw_get(two_routes, material, spelling.format(m=marker), idps["certbound"].token("jwt"))
    assert status in (400, 403)
    assert echo.reached(marker) == []


@pytest.mark.parametrize(
    "target",
    [
        "@127.0.0.1:1/{m}",  # a target that is not a path: never glued to the upstream's URL
        "http://localhost/admin/{m}",  # absolute form: decided by its path
    ],
)
def test_a_target_that_is_not_an_origin_form_path(
    target: str, two_routes: RunningGateway, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    marker = secrets.token_hex(6)
    status = raw_get(two_routes, material, target.format(m=marker), idps["certbound"].token("jwt"))
    assert status in (400, 403)
    assert echo.reached(marker) == []


@pytest.mark.parametrize(
    "extra",
    [
        "X-Big: " + "a" * 70_000 + "\r\n",  # one field over the limit
        "".join(f"X-Part-{i}: " + "b" * 3000 + "\r\n" for i in range(30)),  # many, together over it
        "".join(f"X-Field-{i}: c\r\n" for i in range(250)),  # too many fields
    ],
    ids=["one-large", "large-in-total", "too-many"],
)
def test_oversized_headers_are_refused_not_forwarded(
    extra: str, two_routes: RunningGateway, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    marker = secrets.token_hex(6)
    token = idps["certbound"].token("jwt")
    # the listener refuses the head before the app sees it (its warning names no path)
    assert raw_get(two_routes, material, f"/other/{marker}", token, extra) == 431
    assert echo.reached(marker) == []
    usual = "X-Usual: " + "d" * 8000 + "\r\n" + "".join(f"X-F{i}: e\r\n" for i in range(50))
    assert raw_get(two_routes, material, f"/other/{marker}", token, usual) == 200


@pytest.mark.parametrize(
    ("extra", "body"),
    [
        ("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nGET /admin/{m} HTTP/1.1\r\n\r\n"),
        ("Transfer-Encoding: chunked\r\nContent-Length: 40\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
        ("Transfer-Encoding: xchunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
        ("Transfer-Encoding : chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    ],
    ids=["cl-te", "te-cl", "two-cl", "unknown-te", "te-space"],
)
def test_a_body_framed_two_ways_is_refused(
    extra: str, body: bytes, two_routes: RunningGateway, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    """Request smuggling: a body whose length the gateway and the upstream could read differently is
    refused before it reaches anything (the listener's parser answers 400)."""
    marker = secrets.token_hex(6)
    data = body.replace(b"{m}", marker.encode())
    status = raw_get(two_routes, material, f"/other/{marker}", idps["certbound"].token("jwt"), extra,
                     method="POST", body=data)  # fmt: skip
    assert status == 400
    assert echo.reached(marker) == []
