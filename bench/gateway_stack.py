"""The processes of the gateway benchmark, and the configuration each one runs with.

One identity provider (a real ``certbound serve``) issues the tokens; one upstream (nginx, plain HTTP
on 127.0.0.1, a fixed JSON answer) sits behind every resource server; three resource servers stand in
front of it, each with the same two protected paths:

* ``/jwt/...``: a certificate-bound JWT, verified with the IdP's JWKS, binding required;
* ``/introspected/...``: an opaque certificate-bound token, introspected at the IdP over mutual TLS
  with the resource server's own certificate (``GATEWAY_DN``), the verdict cached (mod_oauth2 cannot
  introspect over mutual TLS: with a client secret, `SECRET_CLIENT`).

The resource servers are ``certbound gateway`` and Apache httpd with mod_oauth2 or mod_auth_openidc
(each Apache its own ServerRoot, config, logs and pid file in a temporary directory: never the system
service). The renderers are plain functions of their inputs so the tests can read what each server
is told; `docs/performance.md` shows them side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx
import tomli_w

from bench.material import GATEWAY_DN, OPAQUE_CLIENT, RESOURCE, SCOPE, Material
from bench.nodes import free_port
from bench.servers import Server, start_certbound

__all__ = [
    "APACHE",
    "APACHE_MODULES",
    "INTROSPECTED_PATH",
    "JWT_PATH",
    "UPSTREAM_BODY",
    "Apache",
    "ApacheKind",
    "Idp",
    "apache_config",
    "apache_missing",
    "gateway_config",
    "idp_clients_toml",
    "start_apache",
    "start_gateway",
    "start_idp",
    "start_upstream",
    "upstream_config",
]

ROOT: Final = Path(__file__).resolve().parents[1]
APACHE: Final = Path("/usr/sbin/apache2")
MODULES_DIR: Final = Path("/usr/lib/apache2/modules")
#: The Apache modules each peer needs beyond the core (mod_ssl, mod_proxy, the event MPM, ...).
APACHE_MODULES: Final = {
    "mod_oauth2": ("oauth2_module", "mod_oauth2.so"),
    "mod_auth_openidc": ("auth_openidc_module", "mod_auth_openidc.so"),
}
_BASE_MODULES: Final = (
    ("mpm_event_module", "mod_mpm_event.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authz_core_module", "mod_authz_core.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("socache_shmcb_module", "mod_socache_shmcb.so"),
    ("ssl_module", "mod_ssl.so"),
    ("proxy_module", "mod_proxy.so"),
    ("proxy_http_module", "mod_proxy_http.so"),
)

JWT_PATH: Final = "/jwt/item"
INTROSPECTED_PATH: Final = "/introspected/item"
#: What the upstream answers on every path: the proof that an answer came through, not from the front.
UPSTREAM_BODY: Final = b'{"item":1,"owner":"bench","ok":true}'

GATEWAY_CLIENT: Final = "gateway"
#: mod_oauth2's introspection client: liboauth2 1.4.5 sends no ``client_id`` with a client certificate
#: (RFC 8705 section 2 wants one; certbound refuses), so it introspects with a secret instead.
SECRET_CLIENT: Final = "rs-basic"  # noqa: S105 - a client id
TOKEN_LIFETIME: Final = 3600  # the tokens outlive a full run, warm-up included

ApacheKind = Literal["mod_oauth2", "mod_auth_openidc"]


def apache_missing() -> list[str]:
    """What of Apache and its two OAuth modules is not installed here (empty: all there)."""
    missing = [] if os.access(APACHE, os.X_OK) else [str(APACHE)]
    needed = [f for _, f in _BASE_MODULES] + [f for _, f in APACHE_MODULES.values()]
    return missing + [str(MODULES_DIR / f) for f in needed if not (MODULES_DIR / f).exists()]


# -- the IdP ---------------------------------------------------------------------------------------


def idp_clients_toml(material: Material) -> str:
    """The bench's clients for certbound (`OPAQUE_CLIENT`, tls-dn's twin with opaque tokens, among
    them) plus two clients of the resource servers that may introspect tokens issued for `RESOURCE`:
    ``gateway`` (tls_client_auth with `GATEWAY_DN`) and ``rs-basic`` (client_secret_basic with the
    bench's basic secret)."""
    base = material.certbound_clients_toml()
    extra = [
        {
            "client_id": GATEWAY_CLIENT,
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": GATEWAY_DN,
            "grant_types": ["client_credentials"],
            "resource_server_audiences": [RESOURCE],
        },
        {
            "client_id": SECRET_CLIENT,
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret_sha256": hashlib.sha256(material.basic_secret.encode()).hexdigest(),
            "grant_types": ["client_credentials"],
            "resource_server_audiences": [RESOURCE],
        },
    ]
    return base + "\n" + tomli_w.dumps({"client": extra})


@dataclass
class Idp:
    """The running IdP and the two tokens every resource server is sent."""

    server: Server
    issuer: str
    jwt: str
    opaque: str

    def introspections(self) -> int:
        """How many introspection requests it has answered (its `client_auth` events)."""
        count = 0
        for line in self.server.log.read_text(errors="replace").splitlines():
            if '"client_auth"' in line and '"introspection"' in line:
                count += 1
        return count


def mint_token(issuer: str, material: Material, client_id: str) -> str:
    """A client_credentials token of `client_id`, bound to the tls-dn certificate, for `RESOURCE`."""
    ctx = ssl.create_default_context(cafile=str(material.ca))
    ctx.load_cert_chain(str(material.tls_cert), str(material.tls_key))
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": SCOPE, "resource": RESOURCE}
    with httpx.Client(verify=ctx, timeout=30, trust_env=False) as client:
        answer = client.post(issuer + "/token", data=form)
    if answer.status_code != 200:
        raise RuntimeError(
            f"the IdP refused a token for {client_id}: {answer.status_code} {answer.text[:300]}"
        )
    return str(answer.json()["access_token"])


def start_idp(material: Material, work: Path, *, pin: str | None) -> Idp:
    """``certbound serve`` with the clients above; mints the JWT and the opaque token."""
    config = work / "idp.toml"
    config.write_text(tomli_w.dumps({"access_token_lifetime": TOKEN_LIFETIME}))
    server = start_certbound(
        material, work / "idp", pin=pin, clients_toml=idp_clients_toml(material),
        extra_args=["--config", str(config)],
    )  # fmt: skip
    issuer = f"https://127.0.0.1:{server.port}"
    try:
        jwt = mint_token(issuer, material, "tls-dn")
        opaque = mint_token(issuer, material, OPAQUE_CLIENT)
    except Exception:
        server.stop()
        raise
    if jwt.count(".") != 2 or opaque.count(".") == 2:
        server.stop()
        raise RuntimeError("the IdP did not issue one JWT and one opaque token")
    return Idp(server, issuer, jwt, opaque)


# -- the upstream ----------------------------------------------------------------------------------


def upstream_config(prefix: Path, port: int, tls: tuple[int, Material] | None = None) -> str:
    """nginx: one worker, plain HTTP on 127.0.0.1, `UPSTREAM_BODY` on every path, no access log,
    keep-alive connections that are never closed by nginx during a run.

    With `tls` (a port and the bench PKI), the same answer also over TLS with the resource servers'
    certificate, asking for a client certificate without checking it as they do, in TLS 1.3 as they
    speak it (nginx 1.22 offers at most TLS 1.2 unless told): the reference that tells the handshake,
    which any mutual-TLS endpoint pays, from what a server in front adds."""
    body = UPSTREAM_BODY.decode().replace("\\", "\\\\").replace("'", "\\'")
    temps = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
daemon off;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
{temps}
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
{_tls_server(body, tls)}}}
"""


def _tls_server(body: str, tls: tuple[int, Material] | None) -> str:
    if tls is None:
        return ""
    port, material = tls
    return f"""    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {material.server_cert};
        ssl_certificate_key {material.server_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_verify_client optional_no_ca;
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
"""


def _nginx() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise RuntimeError("nginx is needed for the upstream (apt-get install nginx-light)")
    return found


def _pin(cpus: str | None) -> list[str]:
    return [] if cpus is None else ["taskset", "-c", cpus]


def _wait_http(server: Server, timeout: float = 30) -> None:
    """Until a plain HTTP GET answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}):\n{server.log.read_text()}")
        with contextlib.suppress(OSError, httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{server.port}/", timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer within {timeout:.0f} s")


@dataclass
class Upstream(Server):
    """The upstream nginx, and the port of its TLS reference (None without one)."""

    tls_port: int | None = None


def start_upstream(work: Path, *, pin: str | None, material: Material | None = None) -> Upstream:
    """nginx with `upstream_config`, in the foreground, in its own prefix under `work`; with
    `material`, its TLS reference too."""
    prefix = work / "upstream"
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    tls = None if material is None else (free_port(), material)
    conf = prefix / "nginx.conf"
    conf.write_text(upstream_config(prefix, port, tls))
    log = prefix / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pin(pin), _nginx(), "-p", str(prefix), "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT
        )
    server = Upstream("nginx (upstream)", port, proc, log, pin, tls_port=None if tls is None else tls[0])
    _wait_http(server)
    return server


# -- certbound gateway -----------------------------------------------------------------------------


def gateway_config(
    material: Material, idp: str, upstream_port: int, port: int, data_dir: Path
) -> dict[str, Any]:
    """`certbound gateway`'s settings: a JWT route with binding strict, an introspection route
    (mTLS with the gateway's certificate, verdicts cached for 300 s), identity headers, info logs."""
    upstream = f"http://127.0.0.1:{upstream_port}"
    common: dict[str, Any] = {
        "upstream": upstream,
        "proof_of_possession_mtls": "strict",
        "scopes_required": [SCOPE],
        "upstream_headers": {"X-Client-Id": "client_id", "X-Subject": "sub", "X-Scope": "scope"},
    }
    return {
        "workers": 1,
        "log_level": "info",
        "listener": {
            "host": "127.0.0.1",
            "port": port,
            "tls_cert": str(material.server_cert),
            "tls_key": str(material.server_key),
        },
        "idp": {
            "issuer": idp,
            "client_id": GATEWAY_CLIENT,
            "client_auth": "tls_client_auth",
            "tls_client_auth_cert": str(material.gateway_cert),
            "tls_client_auth_key": str(material.gateway_key),
            "ca_bundle": str(material.ca),
        },
        "store": {"data_dir": str(data_dir)},
        "routes": [
            {"name": "jwt", "paths": [JWT_PATH.rsplit("/", 1)[0]], "auth_methods": ["bearer"], **common},
            {"name": "introspected", "paths": [INTROSPECTED_PATH.rsplit("/", 1)[0]],
             "auth_methods": ["introspection"], "cache_introspection": True, "cache_ttl_max": 300, **common},
        ],
    }  # fmt: skip


def _wait_tls(server: Server, ca: Path, timeout: float = 60) -> None:
    """Until ``/healthz``-style TLS requests get an HTTP answer (any status)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}):\n{server.log.read_text()}")
        try:
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=2) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if tls.recv(16).startswith(b"HTTP/1."):
                    return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"{server.name} did not answer within {timeout:.0f} s:\n{server.log.read_text()[-3000:]}"
    )


def start_gateway(
    material: Material, idp: Idp, upstream: Server, work: Path, *, pin: str | None, patch: str = ""
) -> Server:
    """``certbound gateway --config`` with `gateway_config`, its JSON log in `work`/gateway; `patch`
    names experiments of `bench.experiments` to apply in the gateway process."""
    directory = work / "gateway"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "gateway.toml"
    config.write_text(
        tomli_w.dumps(gateway_config(material, idp.issuer, upstream.port, port, directory / "data"))
    )
    log = directory / "gateway.log"
    module = ["bench.experiments", patch, "--"] if patch else ["certbound"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pin(pin), sys.executable, "-m", *module, "gateway", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory, env=env,
        )  # fmt: skip
    server = Server("certbound gateway" + (f" +{patch}" if patch else ""), port, proc, log, pin)
    _wait_tls(server, material.ca)
    return server


# -- Apache httpd ----------------------------------------------------------------------------------


@dataclass
class ApacheFiles:
    """Where one Apache instance keeps its things, and the user its children run as (root only)."""

    root: Path
    user: str | None
    gateway_cert: Path  # copies readable by the children: they present them at the IdP
    gateway_key: Path
    idp_ca: Path


def _verify_options(files: ApacheFiles, introspect: bool, secret: str) -> str:
    """mod_oauth2's ``OAuth2TokenVerify`` options (form-encoded): binding required, cached 300 s.

    liboauth2 has no CA setting for its own calls (libcurl's system store), so it cannot verify the
    bench IdP's certificate: ``ssl_verify=false`` on the JWKS and introspection calls. Introspection
    authenticates with ``client_secret_basic`` (`SECRET_CLIENT`): with ``client_cert`` it sends no
    ``client_id`` and has no option to add one in this version."""
    parts = ["type=mtls", "mtls.policy=required", "expiry=300"]
    if introspect:
        parts += ["introspect.auth=client_secret_basic", f"client_id={SECRET_CLIENT}",
                  f"client_secret={quote(secret, safe='')}", "introspect.ssl_verify=false"]  # fmt: skip
    else:
        parts += ["jwks_uri.ssl_verify=false"]
    return "&".join(parts)


def _location(
    kind: str, path: str, idp: str, files: ApacheFiles, upstream_port: int, introspect: bool, secret: str
) -> str:
    prefix = path.rsplit("/", 1)[0]
    proxy = f"ProxyPass http://127.0.0.1:{upstream_port}{prefix}\n"
    if kind == "mod_oauth2":
        how = f"introspect {idp}/introspect" if introspect else f"jwks_uri {idp}/jwks"
        auth = (
            f"    AuthType oauth2\n"
            f"    OAuth2TokenVerify {how} {_verify_options(files, introspect, secret)}\n"
            f"    Require oauth2_claim scope:{SCOPE}\n"
        )
    else:
        auth = f"    AuthType oauth20\n    Require claim scope:{SCOPE}\n"
    return f"<Location {prefix}>\n{auth}    {proxy}</Location>\n"


def _openidc_server(idp: str, files: ApacheFiles, introspect: bool) -> str:
    """mod_auth_openidc's server-level OAuth 2.0 settings (one validation method per virtual host)."""
    lines = [f"OIDCCABundlePath {files.idp_ca}", "OIDCOAuthSSLValidateServer On"]
    if introspect:
        lines += [
            f"OIDCOAuthIntrospectionEndpoint {idp}/introspect",
            f"OIDCOAuthClientID {GATEWAY_CLIENT}",
            "OIDCOAuthIntrospectionEndpointAuth none",
            f"OIDCOAuthIntrospectionEndpointCert {files.gateway_cert}",
            f"OIDCOAuthIntrospectionEndpointKey {files.gateway_key}",
            "OIDCOAuthTokenIntrospectionInterval 300",
        ]
    else:
        lines += [f"OIDCOAuthVerifyJwksUri {idp}/jwks"]
    return "".join(f"    {line}\n" for line in lines)


def apache_config(
    kind: ApacheKind,
    files: ApacheFiles,
    material: Material,
    idp: str,
    upstream_port: int,
    ports: Mapping[str, int],
    *,
    log_level: str = "warn",
) -> str:
    """A whole httpd.conf: event MPM with one child process (pinned with its parent to one core),
    TLS with the bench server certificate asking every client for a certificate (``optional_no_ca``:
    any certificate passes the handshake, only its thumbprint counts, as at certbound gateway without
    ``client_ca``), one virtual host per scenario family (`ports`: ``jwt``, ``introspected``) with
    the module's token check in front of ``ProxyPass`` to the upstream, an access log line per request."""
    root = files.root
    name, so = APACHE_MODULES[kind]
    modules = "".join(f"LoadModule {n} {MODULES_DIR / f}\n" for n, f in (*_BASE_MODULES, (name, so)))
    user = f"User {files.user}\nGroup {files.user}\n" if files.user else ""
    module_server = ""
    if kind == "mod_auth_openidc":
        module_server = ""
    hosts = []
    for family, path in (("jwt", JWT_PATH), ("introspected", INTROSPECTED_PATH)):
        introspect = family == "introspected"
        server_level = _openidc_server(idp, files, introspect) if kind == "mod_auth_openidc" else ""
        hosts.append(
            f"Listen 127.0.0.1:{ports[family]}\n"
            f"<VirtualHost 127.0.0.1:{ports[family]}>\n"
            f"    ServerName 127.0.0.1\n"
            f"    SSLEngine on\n"
            f"    SSLCertificateFile {material.server_cert}\n"
            f"    SSLCertificateKeyFile {material.server_key}\n"
            f"    SSLVerifyClient optional_no_ca\n"
            f"    SSLVerifyDepth 5\n"
            f"{server_level}"
            + textwrap.indent(
                _location(kind, path, idp, files, upstream_port, introspect, material.basic_secret), "    "
            )
            + "</VirtualHost>\n"
        )
    return f"""ServerRoot {root}
ServerName 127.0.0.1
PidFile {root / "httpd.pid"}
DefaultRuntimeDir {root / "run"}
ErrorLog {root / "error.log"}
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
CustomLog {root / "access.log"} common
{user}{modules}LogLevel {log_level}
StartServers 1
ServerLimit 1
ThreadsPerChild 64
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 128
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 300
Timeout 60
Mutex file:{root / "run"} default
SSLSessionCache shmcb:{root / "run" / "ssl_scache"}(512000)
SSLRandomSeed startup builtin
ProxyRequests Off
{module_server}
{"".join(hosts)}"""


@dataclass
class Apache(Server):
    """An Apache instance: its ports per scenario family; stopped by signalling its process group."""

    ports: dict[str, int] | None = None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # a child the parent left behind
            os.killpg(self.proc.pid, signal.SIGKILL)


def _apache_files(material: Material, root: Path) -> ApacheFiles:
    """The instance's directory, and copies of what its children read at request time (the
    introspection certificate and key, the IdP's CA): as root, Apache's children run as www-data,
    which must then be able to reach the work directory (the default temporary directory is)."""
    user = None
    if os.geteuid() == 0:
        user = "www-data"
        pwd.getpwnam(user)  # KeyError: no such user
    (root / "run").mkdir(parents=True, exist_ok=True)
    secrets = root / "client"
    secrets.mkdir(exist_ok=True)
    files = ApacheFiles(root, user, secrets / "gateway.crt", secrets / "gateway.key", secrets / "idp-ca.crt")
    shutil.copyfile(material.gateway_cert, files.gateway_cert)
    shutil.copyfile(material.gateway_key, files.gateway_key)
    shutil.copyfile(material.ca, files.idp_ca)
    if user is not None:
        account = pwd.getpwnam(user)
        for path in (secrets, files.gateway_cert, files.gateway_key, files.idp_ca, root / "run"):
            os.chown(path, account.pw_uid, account.pw_gid)
        files.gateway_key.chmod(0o600)
        for directory in (root, root.parent):  # the children must reach `secrets`: the bench's own
            directory.chmod(directory.stat().st_mode | 0o011)  # directories, traversable (not listable)
    return files


def start_apache(
    kind: ApacheKind, material: Material, idp: Idp, upstream: Server, work: Path, *, pin: str | None
) -> Apache:
    """``apache2 -f <own config> -DFOREGROUND`` in its own session (so its whole group can be
    stopped), with `apache_config`; waits until both virtual hosts answer over TLS."""
    root = work / kind
    root.mkdir(parents=True, exist_ok=True)
    files = _apache_files(material, root)
    ports = {"jwt": free_port(), "introspected": free_port()}
    conf = root / "httpd.conf"
    log_level = os.environ.get("BENCH_APACHE_LOG_LEVEL", "warn")  # e.g. "warn oauth2:debug" to see why
    conf.write_text(
        apache_config(kind, files, material, idp.issuer, upstream.port, ports, log_level=log_level)
    )
    log = root / "stderr.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pin(pin), str(APACHE), "-d", str(root), "-f", str(conf), "-DFOREGROUND"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"},
        )  # fmt: skip
    server = Apache(f"Apache {kind}", ports["jwt"], proc, log, pin, ports=ports)
    try:
        for port in ports.values():
            _wait_tls(Server(server.name, port, proc, log, pin), material.ca)
    except Exception:
        server.stop()
        error_log = root / "error.log"
        detail = error_log.read_text(errors="replace")[-3000:] if error_log.exists() else ""
        raise RuntimeError(
            f"Apache {kind} did not start:\n{log.read_text(errors='replace')}\n{detail}"
        ) from None
    return server
