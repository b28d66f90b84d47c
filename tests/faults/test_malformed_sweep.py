"""Malformed input at every endpoint of a real `certbound serve` (Hypothesis, profile
``malformed-sweep``): forms, Authorization headers, JWT assertions, client certificates with odd
DNs and SANs, forwarded-certificate headers, registration JSON. After every request: no 5xx, a proper
error answer, no traceback in the server's log, and the store unchanged when the request was refused.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import NameOID
from hypothesis import assume, example, given
from hypothesis import strategies as st

from tests.faults.sweep import (
    JWT_BEARER,
    SWEEP,
    LogTail,
    assert_answer,
    assert_no_server_failure,
    authorization_headers,
    form_bodies,
    hostile_text,
    json_values,
    jwt_assertions,
    nested_json,
    store_digest,
)
from tests.server.process.serverproc import RunningServer, start_server

pytestmark = pytest.mark.slow

FORM_ENDPOINTS = ["/token", "/introspect", "/revoke", "/par", "/login", "/consent", "/logout", "/userinfo"]
GET_ENDPOINTS = [
    "/authorize",
    "/userinfo",
    "/logout",
    "/login",
    "/consent",
    "/jwks",
    "/readyz",
    "/.well-known/oauth-authorization-server",
    "/register/demo-client",
]


@dataclass
class Target:
    server: RunningServer
    http: httpx.Client
    log: LogTail
    database: Path

    @property
    def url(self) -> str:
        return self.server.url

    def send(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        """The answer, or None when httpx itself refuses to send the request (an invalid header)."""
        try:
            return self.http.request(method, self.url + path, **kw)
        except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
            return None

    def check(
        self, response: httpx.Response | None, before: dict[str, str], *, json_errors: bool = True
    ) -> None:
        assume(response is not None)
        assert response is not None
        assert_answer(response, json_errors=json_errors)
        assert_no_server_failure(self.log.new())
        if response.status_code >= 400:
            assert store_digest(self.database) == before, "a refused request changed the store"


def _target(server: RunningServer) -> Target:
    ctx = ssl.create_default_context(cafile=str(server.pki / "ca.crt"))
    http = httpx.Client(verify=ctx, timeout=20)
    return Target(server, http, LogTail(server.log_path), server.data_dir / "certbound.db")


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = start_server([], tmp_path_factory.mktemp("sweep") / "data")
    target = _target(server)
    yield target
    target.http.close()
    server.stop()
    assert "Traceback" not in server.output()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = start_server(
        ["--trusted-proxy", "127.0.0.1/32", "--forwarded-cert-header", "nginx"],
        tmp_path_factory.mktemp("sweep-proxy") / "data",
    )
    target = _target(server)
    yield target
    target.http.close()
    server.stop()
    assert "Traceback" not in server.output()


@SWEEP
@given(
    endpoint=st.sampled_from(FORM_ENDPOINTS),
    body=form_bodies(),
    authorization=st.one_of(st.none(), authorization_headers),
)
def test_forms(plain: Target, endpoint: str, body: tuple[bytes, str], authorization: str | None) -> None:
    content, content_type = body
    headers = {"content-type": content_type} if content_type else {}
    if authorization is not None:
        headers["authorization"] = authorization
    before = store_digest(plain.database)
    response = plain.send("POST", endpoint, content=content, headers=headers)
    pages = endpoint in ("/login", "/consent", "/logout")  # HTML pages: errors are pages, not JSON
    plain.check(response, before, json_errors=not pages)


@SWEEP
@given(
    endpoint=st.sampled_from(GET_ENDPOINTS),
    query=st.lists(st.tuples(hostile_text, hostile_text), max_size=6),
    authorization=st.one_of(
        st.none(), authorization_headers, st.builds(lambda t: "Bearer " + t, hostile_text)
    ),
)
def test_queries_and_authorization(
    plain: Target, endpoint: str, query: list[tuple[str, str]], authorization: str | None
) -> None:
    qs = "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in query
    )
    headers = {"authorization": authorization} if authorization is not None else {}
    before = store_digest(plain.database)
    response = plain.send("GET", endpoint + ("?" + qs if qs else ""), headers=headers)
    json_errors = endpoint not in ("/authorize", "/login", "/consent", "/logout")
    plain.check(response, before, json_errors=json_errors)


@SWEEP
@given(
    endpoint=st.sampled_from(["/token", "/introspect", "/revoke", "/par"]),
    data=st.data(),
    client_id=st.one_of(st.just("demo-client"), st.just("demo-app"), hostile_text),
)
def test_jwt_assertions(plain: Target, endpoint: str, data: st.DataObject, client_id: str) -> None:
    assertion = data.draw(jwt_assertions(plain.url + endpoint, client_id))
    form = {
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        "grant_type": "client_credentials",
        "token": "x",
    }
    if data.draw(st.booleans()):
        form["client_id"] = client_id
    before = store_digest(plain.database)
    body = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in form.items())
    response = plain.send(
        "POST", endpoint, content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    plain.check(response, before)
    assert response is not None
    assert response.status_code in (400, 401), response.text


# a registration document: the metadata names with values of any JSON type, deep nesting, huge arrays
METADATA_NAMES = [
    "redirect_uris",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "jwks",
    "jwks_uri",
    "scope",
    "client_name",
    "contacts",
    "tls_client_auth_subject_dn",
    "tls_client_auth_san_dns",
    "tls_client_certificate_bound_access_tokens",
    "software_statement",
    "token_endpoint_auth_signing_alg",
    "access_token_format",
    "resources",
    "client_id",
    "client_secret_expires_at",
    "post_logout_redirect_uris",
    "id_token_signed_response_alg",
]


@st.composite
def registration_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["typed", "typed", "nested", "huge-array", "raw", "any"]))
    if kind == "nested":
        deep = nested_json(
            draw(st.sampled_from([500, 1000, 5000])), draw(st.sampled_from(["array", "object"]))
        )
        return (
            '{"grant_types": ["client_credentials"], "'
            + draw(st.sampled_from(METADATA_NAMES))
            + '": '
            + deep
            + "}"
        ).encode()
    if kind == "huge-array":
        item = json.dumps(draw(st.sampled_from(["https://a.example/cb", "x", 1, None, {"k": "v"}])))
        count = draw(st.sampled_from([1000, 20_000]))
        return (
            '{"' + draw(st.sampled_from(METADATA_NAMES)) + '": [' + ",".join([item] * count) + "]}"
        ).encode()
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "any":
        return json.dumps(draw(json_values)).encode("utf-8", "surrogatepass")
    doc = draw(
        st.dictionaries(st.one_of(st.sampled_from(METADATA_NAMES), hostile_text), json_values, max_size=6)
    )
    return json.dumps(doc).encode("utf-8", "surrogatepass")


@SWEEP
@given(
    body=registration_bodies(),
    content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/json", ""]),
    method=st.sampled_from(["POST", "PUT"]),
)
# the reports, always tried: a lone surrogate as a member name, deep nesting
@example(
    body=b'{"\\ud800": 1, "grant_types": ["client_credentials"]}',
    content_type="application/json",
    method="POST",
)
@example(
    body=b'{"\\ud800": 1, "grant_types": ["client_credentials"]}',
    content_type="application/json",
    method="PUT",
)
@example(body=b'{"jwks": ' + b"[" * 1000 + b"]" * 1000 + b"}", content_type="application/json", method="POST")
def test_registration_json(plain: Target, body: bytes, content_type: str, method: str) -> None:
    token = (plain.server.data_dir / "registration-token").read_text().strip()
    path = "/register" if method == "POST" else "/register/demo-client"
    headers = {"authorization": "Bearer " + token}
    if content_type:
        headers["content-type"] = content_type
    before = store_digest(plain.database)
    response = plain.send(method, path, content=body, headers=headers)
    plain.check(response, before)
    assert response is not None
    if response.status_code == 201:  # a valid document after all: remove it again
        created = response.json()
        plain.send(
            "DELETE",
            created["registration_client_uri"].removeprefix(plain.url),
            headers={"authorization": "Bearer " + created["registration_access_token"]},
        )


# ------------------------------------------------------------------------------------------ certificates

NAME_OIDS = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.EMAIL_ADDRESS,
    NameOID.SERIAL_NUMBER,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
    x509.ObjectIdentifier("1.2.3.4.5.6.7"),
]
dn_values = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)


@st.composite
def odd_names(draw: st.DrawFn) -> x509.Name:
    rdns = []
    for _ in range(draw(st.integers(0, 4))):
        attrs = draw(
            st.lists(
                st.tuples(st.sampled_from(NAME_OIDS), dn_values),
                min_size=1,
                max_size=3,
                unique_by=lambda a: a[0],
            )
        )
        try:
            rdns.append(
                x509.RelativeDistinguishedName([x509.NameAttribute(oid, value) for oid, value in attrs])
            )
        except ValueError:
            assume(False)
    return x509.Name(rdns)


@st.composite
def odd_sans(draw: st.DrawFn) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for kind, value in draw(
        st.lists(
            st.tuples(
                st.sampled_from(["dns", "uri", "email", "ip", "oid"]),
                st.text(st.characters(codec="ascii"), max_size=30),
            ),
            max_size=4,
        )
    ):
        try:
            if kind == "dns":
                names.append(x509.DNSName(value))
            elif kind == "uri":
                names.append(x509.UniformResourceIdentifier(value))
            elif kind == "email":
                names.append(x509.RFC822Name(value))
            elif kind == "ip":
                names.append(x509.IPAddress(ipaddress.ip_address(len(value) % 250 + 1)))
            else:
                names.append(x509.RegisteredID(x509.ObjectIdentifier("1.2.3." + str(len(value)))))
        except ValueError:
            continue  # a value cryptography will not put in a certificate at all
    return names


@dataclass
class Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def dev_ca(proxied: Target) -> Ca:
    pki = proxied.server.pki
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = load_pem_private_key((pki / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Ca(cert, key)


def odd_certificate(
    ca: Ca | None, subject: x509.Name, sans: list[x509.GeneralName], key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject if ca else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key if ca else key, hashes.SHA256())


KEY = ec.generate_private_key(ec.SECP256R1())


@SWEEP
@given(
    subject=odd_names(),
    sans=odd_sans(),
    signed_by_ca=st.booleans(),
    endpoint=st.sampled_from(["/token", "/introspect", "/revoke"]),
    client_id=st.sampled_from(["demo-client", "demo-app", "nobody"]),
)
def test_odd_certificates_forwarded(
    proxied: Target,
    dev_ca: Ca,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    signed_by_ca: bool,
    endpoint: str,
    client_id: str,
) -> None:
    try:
        cert = odd_certificate(dev_ca if signed_by_ca else None, subject, sans, KEY)
    except ValueError:
        assume(False)
        return
    pem = cert.public_bytes(Encoding.PEM).decode()
    headers = {
        "x-ssl-client-cert": quote(pem),
        "x-ssl-client-verify": "SUCCESS",
        "content-type": "application/x-www-form-urlencoded",
    }
    before = store_digest(proxied.database)
    form = f"grant_type=client_credentials&client_id={client_id}&token=x"
    response = proxied.send("POST", endpoint, content=form, headers=headers)
    proxied.check(response, before)


@SWEEP
@given(subject=odd_names(), sans=odd_sans(), client_id=st.sampled_from(["demo-client", "nobody"]))
def test_odd_certificates_in_the_tls_handshake(
    plain: Target,
    tmp_path_factory: pytest.TempPathFactory,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    client_id: str,
) -> None:
    try:
        cert = odd_certificate(None, subject, sans, KEY)
    except ValueError:
        assume(False)
        return
    directory = tmp_path_factory.mktemp("odd-cert")
    (directory / "c.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (directory / "k.pem").write_bytes(KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    ctx = ssl.create_default_context(cafile=str(plain.server.pki / "ca.crt"))
    ctx.load_cert_chain(str(directory / "c.pem"), str(directory / "k.pem"))
    before = store_digest(plain.database)
    with httpx.Client(verify=ctx, timeout=20) as client:
        try:
            response = client.post(
                plain.url + "/token", data={"grant_type": "client_credentials", "client_id": client_id}
            )
        except httpx.ConnectError:
            response = None  # a handshake the server refused (degraded mode): not an HTTP answer
    if response is not None:
        plain.check(response, before)
    assert_no_server_failure(plain.log.new())


@st.composite
def forwarded_headers(draw: st.DrawFn, pem: str) -> dict[str, str]:
    kind = draw(st.sampled_from(["truncated", "bad-escape", "several", "junk", "verify", "xfcc", "rfc9440"]))
    escaped = quote(pem)
    if kind == "truncated":
        return {
            "x-ssl-client-cert": escaped[: draw(st.integers(0, len(escaped)))],
            "x-ssl-client-verify": "SUCCESS",
        }
    if kind == "bad-escape":
        cut = draw(st.integers(0, len(escaped)))
        return {
            "x-ssl-client-cert": escaped[:cut]
            + draw(st.sampled_from(["%", "%Z", "%zz", "%0", "%ED%A0%80", "%00"]))
            + escaped[cut:],
            "x-ssl-client-verify": "SUCCESS",
        }
    if kind == "several":
        return {"x-ssl-client-cert": quote(pem * draw(st.integers(2, 12))), "x-ssl-client-verify": "SUCCESS"}
    if kind == "junk":
        return {
            "x-ssl-client-cert": draw(st.text(st.characters(codec="ascii"), max_size=200)),
            "x-ssl-client-verify": draw(st.sampled_from(["SUCCESS", "NONE", "FAILED:x"])),
        }
    if kind == "verify":
        return {
            "x-ssl-client-cert": escaped,
            "x-ssl-client-verify": draw(st.text(st.characters(codec="ascii"), max_size=30)),
        }
    if kind == "xfcc":
        return {"x-forwarded-client-cert": f'By=x;Cert="{escaped[: draw(st.integers(0, len(escaped)))]}"'}
    return {"client-cert": ":" + draw(st.text(st.characters(codec="ascii"), max_size=60)) + ":"}


@SWEEP
@given(data=st.data(), endpoint=st.sampled_from(["/token", "/introspect", "/revoke", "/par", "/userinfo"]))
def test_forwarded_certificate_headers(proxied: Target, data: st.DataObject, endpoint: str) -> None:
    pem = (proxied.server.pki / "demo-client.crt").read_text()
    headers = data.draw(forwarded_headers(pem))
    headers["content-type"] = "application/x-www-form-urlencoded"
    before = store_digest(proxied.database)
    response = proxied.send(
        "POST",
        endpoint,
        content="grant_type=client_credentials&client_id=demo-client&token=x",
        headers=headers,
    )
    proxied.check(response, before)
