"""The Node.js peers: install the pinned npm packages, run oidc-provider as a real HTTPS process."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from tests.client.material import CertFiles, Material
from tests.interop.cases import CASES

INTEROP = Path(__file__).resolve().parents[2] / "interop"
STAMP = INTEROP / "node_modules" / ".certbound-lock-sha256"


def _unavailable(reason: str) -> None:
    """No Node.js here: skip on a developer's machine, fail in CI (where the interop tests must run)."""
    if os.environ.get("CI"):
        pytest.fail(f"interop tests cannot run in CI: {reason}")
    pytest.skip(reason)


def ensure_node_modules() -> Path:
    """`npm ci --prefix interop` from the lock file, skipped when node_modules already matches it."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for the interop tests")
    lock = hashlib.sha256((INTEROP / "package-lock.json").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == lock:
        return INTEROP
    done = subprocess.run(
        [str(npm), "ci", "--prefix", str(INTEROP), "--no-audit", "--no-fund", "--loglevel=error"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm ci failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    STAMP.write_text(lock + "\n")
    return INTEROP


@dataclass
class OidcProvider:
    """A running oidc-provider: its issuer, the mTLS alias base, and the process."""

    proc: subprocess.Popen[str]
    issuer: str
    mtls_base: str | None
    log: list[str]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


RESOURCE = "https://api.certbound.test/"
_SIGNING_ALGS = {"private_key_jwt": "ES256", "client_secret_jwt": "HS256"}


def client_registrations(material: Material) -> list[dict[str, Any]]:
    """The CASES as oidc-provider registers them: secrets in clear, bound clients get both scopes."""
    clients = []
    for case in CASES:
        client = case.registration(material)
        if case.secret:
            client["client_secret"] = case.secret
        if case.method in _SIGNING_ALGS:
            client["token_endpoint_auth_signing_alg"] = _SIGNING_ALGS[case.method]
        if case.bound:
            client |= {"tls_client_certificate_bound_access_tokens": True, "scope": "api:read api:write"}
        else:
            client["scope"] = "api:read"
        clients.append(client)
    return clients


def _reader(proc: subprocess.Popen[str], sink: list[str], ready: threading.Event) -> None:
    """Keep the process's output (for failure messages); `ready` is set by its JSON address line."""
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.append(line.rstrip("\n"))
        if line.startswith('{"issuer"'):
            ready.set()
    ready.set()


def start_oidc_provider(
    material: Material,
    workdir: Path,
    *,
    server: CertFiles,
    mtls_listener: bool = True,
    clients: list[dict[str, Any]] | None = None,
    short_lived: tuple[str, ...] = (),
    log_introspection: bool = False,
    code_flow: bool = False,
    password_grant: dict[str, str] | None = None,
) -> OidcProvider:
    """Write the provider's configuration and start it; returns when it prints its address.

    `clients`: the registrations (default: the CASES); `short_lived`: client_ids whose tokens live
    2 s; `log_introspection`: one JSON line per introspection request (`OidcProvider.log`);
    `code_flow`: the development login pages, and a line per token, revocation and PAR request;
    `password_grant`: ``{username, password}`` for a resource owner password grant."""
    interop = ensure_node_modules()
    signing = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    signing |= {"kid": "op-key-1", "alg": "ES256", "use": "sig"}
    config = {
        "tls": {
            "cert": str(server.cert_file),
            "key": str(server.key_file),
            "clientCa": str(material.ca_file),
        },
        "mtlsListener": mtls_listener,
        "jwks": {"keys": [signing]},
        "clients": clients if clients is not None else client_registrations(material),
        "shortLived": list(short_lived),
        "logIntrospection": log_introspection,
        "codeFlow": code_flow,
        **({"passwordGrant": password_grant} if password_grant else {}),
        "resourceServers": {
            RESOURCE: {
                "scope": "api:read api:write",
                "audience": RESOURCE,
                "accessTokenFormat": "jwt",
                "jwt": {"sign": {"alg": "ES256"}},
            }
        },
    }
    workdir.mkdir(parents=True, exist_ok=True)
    config_file = workdir / "oidc-provider.json"
    config_file.write_text(json.dumps(config))
    config_file.chmod(0o600)
    proc = subprocess.Popen(
        ["node", str(interop / "oidc-provider-server.mjs"), str(config_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()
    threading.Thread(target=_reader, args=(proc, lines, ready), daemon=True).start()
    if not ready.wait(30):
        proc.kill()
        raise AssertionError("oidc-provider did not start in 30 s:\n" + "\n".join(lines))
    for line in list(lines):
        if line.startswith('{"issuer"'):
            info = json.loads(line)
            break
    else:
        proc.kill()
        raise AssertionError("oidc-provider did not report its address:\n" + "\n".join(lines))
    mtls = f"https://127.0.0.1:{info['mtlsPort']}" if info.get("mtlsPort") else None
    return OidcProvider(proc, info["issuer"], mtls, lines)
