"""The header readers, one format at a time: what each accepts, and that anything else is refused."""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.issue import create_ca, issue_client_cert
from certbound.pki.thumbprint import x5t_s256
from certbound.tls.headers import ALL_HEADERS, FORMATS, ForwardedCertError, envoy_xfcc, nginx, rfc9440
from certbound.tls.headers.rfc9440 import encode_byte_sequence

ROOT = create_ca("CN=Header Root")
INTER = create_ca("CN=Header Intermediate", issuer=ROOT, path_length=0)
LEAF, _ = issue_client_cert(*INTER, "CN=header leaf")
DER = LEAF.public_bytes(Encoding.DER)
INTER_DER = INTER[0].public_bytes(Encoding.DER)


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode()


def h(**values: str | list[str]) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        out[name.replace("_", "-").lower().encode()] = [v.encode("latin-1") for v in items]
    return out


def refused(fmt: str, headers: dict[bytes, list[bytes]]) -> str:
    with pytest.raises(ForwardedCertError) as info:
        FORMATS[fmt].read(headers)
    return info.value.reason


# -- RFC 9440 ---------------------------------------------------------------------------------------


def test_rfc9440_leaf_and_chain() -> None:
    cert = rfc9440.read(
        h(client_cert=encode_byte_sequence(DER), client_cert_chain=encode_byte_sequence(INTER_DER))
    )
    assert cert is not None
    assert cert.source == "header:rfc9440"
    assert cert.x5t_s256 == x5t_s256(LEAF)
    assert cert.chain == (INTER[0],)
    assert cert.tls_verified is None


def test_rfc9440_chain_lines_are_one_list_and_parameters_are_ignored() -> None:
    root_der = ROOT[0].public_bytes(Encoding.DER)
    cert = rfc9440.read(
        h(
            client_cert=encode_byte_sequence(DER) + ";foo=1",
            client_cert_chain=[encode_byte_sequence(INTER_DER), " " + encode_byte_sequence(root_der)],
        )
    )
    assert cert is not None
    assert cert.chain == (INTER[0], ROOT[0])


def test_rfc9440_absent_is_no_certificate() -> None:
    assert rfc9440.read({}) is None


@pytest.mark.parametrize(
    "headers",
    [
        h(client_cert=base64.b64encode(DER).decode()),  # no colons: a token, not a byte sequence
        h(client_cert=":" + base64.b64encode(DER).decode()[:-4] + ":"),  # bad padding / truncated
        h(client_cert=":not base64!:"),
        h(client_cert="::"),
        h(client_cert=":" + base64.b64encode(b"not a certificate").decode() + ":"),
        h(client_cert=[encode_byte_sequence(DER), encode_byte_sequence(DER)]),  # twice
        h(client_cert=encode_byte_sequence(DER) + ", " + encode_byte_sequence(DER)),  # a list
        h(client_cert_chain=encode_byte_sequence(INTER_DER)),  # chain without the leaf
        h(
            client_cert=encode_byte_sequence(DER),
            client_cert_chain=", ".join([encode_byte_sequence(INTER_DER)] * 11),
        ),
        h(client_cert=encode_byte_sequence(DER) + ';x="a,b"'),
        {b"client-cert": [b":" + "é".encode() + b":"]},
    ],
)
def test_rfc9440_malformed(headers: dict[bytes, list[bytes]]) -> None:
    assert refused("rfc9440", headers) == "proxy.malformed_header"


# -- nginx ------------------------------------------------------------------------------------------


def test_nginx_escaped_pem_with_verdicts() -> None:
    escaped = quote(pem(LEAF))
    ok = nginx.read(h(x_ssl_client_cert=escaped, x_ssl_client_verify="SUCCESS"))
    assert ok is not None
    assert (ok.source, ok.tls_verified, ok.tls_error) == ("header:nginx", True, None)
    assert ok.x5t_s256 == x5t_s256(LEAF)
    failed = nginx.read(h(x_ssl_client_cert=escaped, x_ssl_client_verify="FAILED:certificate has expired"))
    assert failed is not None
    assert (failed.tls_verified, failed.tls_error) == (False, "certificate has expired")
    unknown = nginx.read(h(x_ssl_client_cert=escaped))
    assert unknown is not None
    assert (unknown.tls_verified, unknown.tls_error) == (None, None)


def test_nginx_no_certificate() -> None:
    assert nginx.read({}) is None
    assert nginx.read(h(x_ssl_client_verify="NONE")) is None


def test_nginx_verdict_without_certificate_is_a_proxy_configuration_problem() -> None:
    assert refused("nginx", h(x_ssl_client_verify="SUCCESS")) == "proxy.certificate_missing"


@pytest.mark.parametrize(
    "headers",
    [
        h(x_ssl_client_cert=quote(pem(LEAF)), x_ssl_client_verify="NONE"),
        h(x_ssl_client_cert=quote(pem(LEAF)), x_ssl_client_verify="MAYBE"),
        h(x_ssl_client_cert="garbage"),
        h(x_ssl_client_cert=quote(pem(LEAF)).replace("MII", "XXX")),
        h(x_ssl_client_cert=[quote(pem(LEAF)), quote(pem(LEAF))]),
        h(x_ssl_client_cert="%ff%fe"),
        h(x_ssl_client_cert="x" * 70_000),
    ],
)
def test_nginx_malformed(headers: dict[bytes, list[bytes]]) -> None:
    assert refused("nginx", headers) == "proxy.malformed_header"


# -- Envoy XFCC -------------------------------------------------------------------------------------


def test_xfcc_cert_and_chain_in_quotes() -> None:
    element = (
        'By=spiffe://example/certbound;Hash=abc;Subject="CN=header leaf,O=x";'
        f'Cert="{quote(pem(LEAF))}";Chain="{quote(pem(LEAF) + pem(INTER[0]))}";URI=spiffe://client;DNS=a;DNS=b'
    )
    cert = envoy_xfcc.read(h(x_forwarded_client_cert=element))
    assert cert is not None
    assert cert.source == "header:envoy-xfcc"
    assert cert.x5t_s256 == x5t_s256(LEAF)
    assert cert.chain == (INTER[0],)  # the leaf, repeated at the head of Chain, is dropped
    assert cert.tls_verified is None


def test_xfcc_uses_the_right_most_element() -> None:
    other, _ = issue_client_cert(*ROOT, "CN=further away")
    header = f'By=a;Cert={quote(pem(other))},By=b;Subject="CN=x,O=y";Cert={quote(pem(LEAF))}'
    cert = envoy_xfcc.read(h(x_forwarded_client_cert=header))
    assert cert is not None
    assert cert.x5t_s256 == x5t_s256(LEAF)
    # several header lines are one list too
    cert = envoy_xfcc.read(
        h(x_forwarded_client_cert=[f"Cert={quote(pem(other))}", f"Cert={quote(pem(LEAF))}"])
    )
    assert cert is not None
    assert cert.x5t_s256 == x5t_s256(LEAF)


def test_xfcc_chain_only_and_escaped_quotes() -> None:
    header = f'Subject="CN=a \\"quoted\\" name";Chain={quote(pem(LEAF) + pem(INTER[0]))}'
    cert = envoy_xfcc.read(h(x_forwarded_client_cert=header))
    assert cert is not None
    assert cert.x5t_s256 == x5t_s256(LEAF)
    assert cert.chain == (INTER[0],)


def test_xfcc_element_without_certificate() -> None:
    assert refused("envoy-xfcc", h(x_forwarded_client_cert="By=a;Hash=0123")) == "proxy.certificate_missing"
    assert envoy_xfcc.read({}) is None


@pytest.mark.parametrize(
    "value",
    [
        'Cert="unterminated',
        "Cert",
        "=x",
        f"Cert={quote(pem(LEAF))};Cert={quote(pem(LEAF))}",
        "Cert=abc",
        'Cert=a"b',
    ],
)
def test_xfcc_malformed(value: str) -> None:
    assert refused("envoy-xfcc", h(x_forwarded_client_cert=value)) == "proxy.malformed_header"


def test_every_format_header_is_known() -> None:
    assert {b"client-cert", b"client-cert-chain", b"x-ssl-client-cert", b"x-ssl-client-verify",
            b"x-forwarded-client-cert"} == ALL_HEADERS  # fmt: skip
