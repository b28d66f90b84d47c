# ruff: noqa: E501 - one table row per refused setting reads best unwrapped
"""The gateway's settings file: every key typed, unknown keys refused, and each bad or contradictory
setting refused with one line that names the key (what `certbound gateway --check` prints)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, get_args

import pytest
from typer.testing import CliRunner

from certbound.auth_methods import METHODS
from certbound.cli.main import app
from certbound.gateway.config import (
    AuthRequestSettings,
    ClientAuthMethod,
    GatewayConfigError,
    GatewaySettings,
    IdpSettings,
    ListenerSettings,
    RouteSettings,
    StoreSettings,
    parse_gateway_settings,
)
from tests.client.material import Material, make_material
from tests.gateway.gatewayproc import write_config


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("config-pki"))


def base(m: Material) -> dict[str, Any]:
    return {
        "listener": {"tls_cert": str(m.server.cert_file), "tls_key": str(m.server.key_file)},
        "idp": {
            "issuer": "https://idp.example.com",
            "client_id": "gateway",
            "tls_client_auth_cert": str(m.gateway.cert_file),
            "tls_client_auth_key": str(m.gateway.key_file),
            "ca_bundle": str(m.ca_file),
        },
        "routes": [{"name": "api", "paths": ["/api"], "upstream": "http://127.0.0.1:8080"}],
    }


def refused(config: dict[str, Any]) -> str:
    with pytest.raises(GatewayConfigError) as caught:
        parse_gateway_settings(config)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_issue_example_is_read_with_its_defaults(files: Material) -> None:
    config = base(files)
    config["routes"][0] |= {
        "auth_methods": ["bearer", "introspection"],
        "proof_of_possession_mtls": "strict",
        "scopes_required": ["read write", "admin"],
        "audience_required": [],
        "upstream_headers": {"X-Client-Id": "client_id", "X-Subject": "sub", "X-Scope": "scope"},
        "hide_credentials": False,
        "cache_introspection": True,
        "cache_ttl_max": 300,
    }
    settings = parse_gateway_settings(config)
    route = settings.routes[0]
    assert (route.strip_path, route.leeway, route.cache_ttl_neg, route.realm) == (False, 30, 0, None)
    assert settings.idp is not None
    assert settings.idp.tls_client_auth_ssl_verify is True
    assert settings.listener.port == 9443
    assert settings.idp_of(route) == "default"
    listener = settings.listener  # revocation (with a client_ca) is on by default, failing closed
    assert (listener.client_cert_revocation, listener.client_cert_revocation_soft_fail) == ("ocsp,crl", False)
    assert (listener.client_cert_revocation_max_age, listener.outbound_allow_private) == (86400, False)


def test_the_seven_methods() -> None:
    assert get_args(ClientAuthMethod) == METHODS


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(bogus=1), "bogus: unknown key"),
        (lambda c: c["routes"][0].update(strip=True), "routes[0].strip: unknown key"),
        (lambda c: c["idp"].update(client_authentication="x"), "idp.client_authentication: unknown key"),
        (lambda c: c["listener"].pop("tls_cert"), "listener.tls_cert: required"),
        (lambda c: c["routes"][0].update(proof_of_possession_mtls="on"), "routes[0].proof_of_possession_mtls: "),
        (lambda c: c["routes"][0].update(auth_methods=["magic"]), "routes[0].auth_methods[0]: "),
        (lambda c: c["routes"][0].update(auth_methods=["session"]), "routes[0].auth_methods: session needs authorization_code"),
        (lambda c: c["routes"][0].update(auth_methods=["authorization_code"]), "routes[0].redirect_uri: authorization_code needs"),
        (lambda c: c["routes"][0].update(auth_methods=["authorization_code"], redirect_uri="https://gw/elsewhere/cb"), "routes[0].redirect_uri: its path '/elsewhere/cb' is not under"),
        (lambda c: c["routes"][0].update(auth_methods=["authorization_code"], redirect_uri="https://gw/api/cb", scopes=["profile"]), "routes[0].scopes: authorization_code logs people in"),
        (lambda c: c["routes"][0].update(auth_methods=["authorization_code"], redirect_uri="https://gw/api/cb", login_action="redirect"), "routes[0].login_redirect_uri: login_action = 'redirect' needs it"),
        (lambda c: c["routes"][0].update(session_storage="redis", auth_methods=["authorization_code"], redirect_uri="https://gw/api/cb"), "routes[0].redis_url: session_storage = 'redis' needs it"),
        (lambda c: c["routes"][0].update(logout_uri_suffix="/logout"), "routes[0].logout_uri_suffix: only a route with sessions"),
        (lambda c: c["routes"][0].update(logout_uri_suffix="logout"), "routes[0].logout_uri_suffix: "),
        (lambda c: c["routes"][0].update(login_action="upstreams"), "routes[0].login_action: "),
        (lambda c: c["routes"][0].update(password_param_type=["query"]), "routes[0].password_param_type[0]: "),
        (lambda c: c["routes"][0].update(redirect_uri="gw/cb"), "routes[0].redirect_uri: must be an absolute"),
        (lambda c: (c["idp"].pop("client_id"), c["routes"][0].update(auth_methods=["authorization_code"], redirect_uri="https://gw/api/cb")), "idp.client_id: route 'api' gets tokens from the IdP"),
        (lambda c: c["routes"][0].update(auth_methods=[]), "routes[0].auth_methods: "),
        (lambda c: c["routes"][0].update(leeway=301), "routes[0].leeway: "),
        (lambda c: c["routes"][0].update(paths=["api"]), "routes[0].paths: 'api' must be an absolute path"),
        (lambda c: c["routes"][0].update(paths=["/a/../b"]), "routes[0].paths: '/a/../b' must not have"),
        (lambda c: c["routes"][0].update(upstream="ftp://x"), "routes[0].upstream: must be an http:// or"),
        (lambda c: c["routes"][0].update(scopes_required=[""]), "routes[0].scopes_required: '' is not"),
        (lambda c: c["routes"][0].update(upstream_headers={"Authorization": "sub"}), "routes[0].upstream_headers: 'Authorization' is set by"),
        (lambda c: c["routes"][0].update(upstream_headers={"X-A": "sub", "x_a": "aud"}), "routes[0].upstream_headers: 'x_a' names the same header"),
        (lambda c: c["routes"][0].update(upstream_headers={"X A": "sub"}), "routes[0].upstream_headers: 'X A' is not a header name"),
        (lambda c: c["routes"][0].update(upstream_access_token_header="Host"), "routes[0].upstream_access_token_header: 'Host' is set by"),
        (lambda c: c["routes"][0].update(upstream_access_token_header="transfer_encoding:x"), "routes[0].upstream_access_token_header: 'transfer_encoding' is set by"),
        (lambda c: c["routes"][0].update(realm='a"b'), "routes[0].realm: "),
        (lambda c: c["routes"].append(dict(c["routes"][0])), "routes[1].name: 'api' is the name of another route"),
        (lambda c: (c["routes"][0].update(auth_methods=["authorization_code"], redirect_uri="https://gw/api/cb"), c["routes"].insert(0, {**c["routes"][0], "name": "api-login", "paths": ["/b"], "redirect_uri": "https://gw/b/cb"})), "routes[0].name: 'api-login' is the name of route 'api''s login cookie"),
        (lambda c: c["routes"].append({**c["routes"][0], "name": "b"}), "routes[1].paths: '/api' is already a path of route 'api'"),
        (lambda c: c["routes"][0].update(paths=["/healthz"]), "routes[0].paths: '/healthz' is answered by the gateway"),
        (lambda c: c["routes"][0].update(idp="other"), "routes[0].idp: no [idps.other]"),
        (lambda c: c.update(idps={"x": c.pop("idp")}), "routes[0].idp: no [idp] is configured; name one of [idps] (x)"),
        (lambda c: c.pop("idp"), "idp: no identity provider"),
        (lambda c: c["idp"].pop("client_id"), "idp.client_id: route 'api' introspects tokens"),
        (lambda c: c["idp"].pop("tls_client_auth_cert"), "idp.tls_client_auth_cert and idp.tls_client_auth_key: give both"),
        (lambda c: [c["idp"].pop(k) for k in ("tls_client_auth_cert", "tls_client_auth_key")], "idp.tls_client_auth_cert: tls_client_auth needs"),
        (lambda c: c["idp"].update(tls_client_auth_ssl_verify=False), "idp.ca_bundle and idp.tls_client_auth_ssl_verify = false"),
        (lambda c: c["idp"].update(client_auth="client_secret_basic"), "idp.client_secret: client_secret_basic needs a client secret"),
        (lambda c: c["idp"].update(client_auth="private_key_jwt"), "idp.client_jwk_file: private_key_jwt needs"),
        (lambda c: c["idp"].update(client_secret="a", client_secret_file="/x"), "idp.client_secret and idp.client_secret_file"),
        (lambda c: c["idp"].update(introspection_endpoint_auth_method="client_secret_post"), "idp.client_secret: client_secret_post needs"),
        (lambda c: c["idp"].update(issuer="http://idp.example.com"), "idp.issuer: must be an https:// URL"),
        (lambda c: c["idp"].update(ca_bundle="/no/such.pem"), "idp.ca_bundle: no such file: /no/such.pem"),
        (lambda c: c["idp"].update(client_certificates=[{"cert": "/a", "key": "/b", "use_from": "2020-01-01T00:00:00"}]), "idp.client_certificates[0].use_from: needs a UTC offset"),
        (lambda c: c["listener"].update(trusted_proxies=["10.0.0.1/8"], forwarded_cert_header="nginx"), "listener.trusted_proxies: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"),
        (lambda c: c["listener"].update(trusted_proxies=["10.0.0.0/8"]), "listener.trusted_proxies and listener.forwarded_cert_header: give both"),
        (lambda c: c.update(auth_request={}), "auth_request: needs listener.trusted_proxies"),
        (lambda c: c.update(idps={"default": c["idp"]}), "idps.default: 'default' is the name of [idp]"),
        (lambda c: c["routes"][0].update(upstream_ca_bundle=c["idp"]["ca_bundle"]), "routes[0].upstream_ca_bundle: only for an https:// upstream"),
        (lambda c: c["routes"][0].update(cache_introspection=False, cache_ttl_neg=5), "routes[0].cache_ttl_neg: needs cache_introspection"),
        (lambda c: c.update(metrics_port=9443), "metrics_port and listener.port: both are 9443"),
        (lambda c: c["listener"].update(host="::1::"), "listener.host: must be a host name or IP address"),
        (lambda c: c["listener"].update(host="a b"), "listener.host: must be a host name or IP address"),
        (lambda c: c.update(metrics_host="not a host"), "metrics_host: must be a host name or IP address"),
        (lambda c: c["listener"].update(client_cert_revocation="on"), "listener.client_cert_revocation: "),
        (lambda c: c["listener"].update(client_cert_revocation_max_age=10), "listener.client_cert_revocation_max_age: "),
        (lambda c: c["listener"].update(client_ca_crls=["ldap://x/crl"]), "listener.client_ca_crls: 'ldap://x/crl': only files and http/https URLs"),
        (lambda c: c["listener"].update(client_ca_crls=["http://x/a.crl"]), "listener.client_ca_crls: needs listener.client_ca"),
        (lambda c: c["listener"].update(client_ca=c["idp"]["ca_bundle"], client_ca_crls=["http://x/a.crl"], client_cert_revocation="ocsp"), "listener.client_ca_crls and listener.client_cert_revocation: the CRLs are never read"),
        (lambda c: c["listener"].update(client_ca=c["idp"]["ca_bundle"], client_ca_crls=["/no/such.crl"]), "listener.client_ca_crls: no such file: /no/such.crl"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_named(files: Material, change: Any, message: str) -> None:
    config = copy.deepcopy(base(files))
    change(config)
    assert refused(config).startswith(message)


def test_check_command(files: Material, tmp_path: Path) -> None:
    """In process: exit 0 and nothing printed; 1 and one line; files are loaded, not only named."""
    good = write_config(tmp_path / "good.toml", base(files))
    result = CliRunner().invoke(app, ["gateway", "--check", "--config", str(good)])
    assert (result.exit_code, result.output) == (0, "")
    broken = tmp_path / "not-a-jwk.json"
    broken.write_text("{nope")
    config = base(files)
    config["idp"] |= {"client_auth": "private_key_jwt", "client_jwk_file": str(broken)}
    result = CliRunner().invoke(
        app, ["gateway", "--check", "--config", str(write_config(tmp_path / "b.toml", config))]
    )
    assert result.exit_code == 1
    assert result.output.startswith("certbound gateway: idp.client_jwk_file: ")
    assert result.output.count("\n") == 1
    config = base(files)
    config["idp"]["tls_client_auth_cert"] = str(files.ca_file.parent / "other-ca.crt")  # not its key's
    result = CliRunner().invoke(
        app, ["gateway", "--check", "--config", str(write_config(tmp_path / "c.toml", config))]
    )
    assert result.exit_code == 1
    assert result.output.startswith("certbound gateway: idp.tls_client_auth_key: ")
    (tmp_path / "bad.toml").write_text("[listener\n")
    result = CliRunner().invoke(app, ["gateway", "--check", "--config", str(tmp_path / "bad.toml")])
    assert result.exit_code == 1
    assert result.output.startswith("certbound gateway: config: ")
    result = CliRunner().invoke(app, ["gateway", "--check", "--config", str(tmp_path / "missing.toml")])
    assert (result.exit_code, result.output.count("\n")) == (1, 1)


def _public_jwk(files: Material, beside: Path) -> Path:
    path = beside.with_name("public.json")
    path.write_text(json.dumps({k: v for k, v in files.jwt_key.items() if k != "d"}))
    return path


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c, f, g: c["idp"].update(ca_bundle=str(g)), "idp.ca_bundle"),
        (lambda c, f, g: c["idp"].update(tls_client_auth_cert=str(g)), "idp.tls_client_auth_cert"),
        (lambda c, f, g: c["idp"].update(tls_client_auth_key=str(f.server.key_file)), "idp.tls_client_auth_key"),
        (lambda c, f, g: c["idp"].update(client_certificates=[{"cert": str(f.gateway.cert_file), "key": str(f.server.key_file)}]), "idp.client_certificates[0].key"),
        (lambda c, f, g: c["idp"].update(client_certificates=[{"cert": str(g), "key": str(f.server.key_file)}]), "idp.client_certificates[0].cert"),
        (lambda c, f, g: c["idp"].update(client_auth="client_secret_jwt", client_secret="s" * 32, client_alg="RS256"), "idp.client_alg"),
        (lambda c, f, g: c["idp"].update(client_auth="private_key_jwt", client_jwk_file=str(_public_jwk(f, g))), "idp.client_jwk_file"),
        (lambda c, f, g: c["listener"].update(tls_key=str(f.gateway.key_file)), "listener.tls_key"),
        (lambda c, f, g: c["listener"].update(tls_cert=str(g)), "listener.tls_cert"),
    ],
)  # fmt: skip
def test_check_names_the_key_of_a_file_that_cannot_be_used(
    files: Material, tmp_path: Path, change: Any, key: str
) -> None:
    """Not the section (``idp: ...``): the key whose file is wrong, alone on the one line."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    config = base(files)
    change(config, files, garbage)
    result = CliRunner().invoke(
        app, ["gateway", "--check", "--config", str(write_config(tmp_path / "g.toml", config))]
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"certbound gateway: {key}: "), result.output
    assert result.output.count("\n") == 1


async def test_revocation_fetches_follow_the_outbound_address_rules(files: Material) -> None:
    """The OCSP and CRL URLs a client's certificate names never reach loopback or private addresses
    unless `outbound_allow_private` says so (the gateway has no issuer of its own to go by)."""
    from certbound.gateway.services import build_services
    from certbound.net.errors import FetchError

    config = base(files)
    config["listener"]["client_ca"] = str(files.ca_file)
    services = build_services(parse_gateway_settings(config))
    try:
        assert services.revocation is not None
        with pytest.raises(FetchError, match="outbound_allow_private"):
            await services.revocation.downloads.ocsp("http://127.0.0.1:9/ocsp/x")
    finally:
        await services.aclose()
    config["listener"]["client_cert_revocation"] = "off"
    services = build_services(parse_gateway_settings(config))
    assert services.revocation is None
    await services.aclose()
    config["listener"] |= {"client_cert_revocation": "ocsp", "outbound_allow_private": True}
    services = build_services(parse_gateway_settings(config))
    try:
        assert services.revocation is not None
        with pytest.raises(FetchError) as refused:  # now it is tried: nothing listens on port 9
            await services.revocation.downloads.ocsp("http://127.0.0.1:9/ocsp/x")
        assert "outbound_allow_private" not in str(refused.value)
    finally:
        await services.aclose()


def test_docs_gateway_md_names_every_key() -> None:
    """Every key of the file has its row in docs/gateway.md's settings tables."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "gateway.md").read_text()
    rows = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    models = (
        GatewaySettings,
        ListenerSettings,
        IdpSettings,
        RouteSettings,
        StoreSettings,
        AuthRequestSettings,
    )
    missing = [
        f"{model.__name__}.{name}"
        for model in models
        for name in model.model_fields
        if f"`{name}`" not in rows
        and name not in ("listener", "idp", "idps", "routes", "auth_request", "store")
    ]
    assert not missing
