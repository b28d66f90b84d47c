"""What a TLS handshake with the server shows, for ``certbound doctor``.

Python's `ssl` module cannot show the server's CertificateRequest (did it ask for a client certificate,
naming which CAs?) and, before 3.13, not the full chain the server sent. ``openssl s_client`` shows
both, so the doctor runs it when it is installed and parses its report; without it, the doctor still
gets the server's leaf certificate from `ssl` and says that the rest is unknown. Whether the chain
verifies is decided by Python's `ssl` with the client's own trust settings, never by s_client.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, field

from cryptography import x509

from certbound.client.tls import Trust, build_ssl_context
from certbound.pki.pem import load_certs_pem

__all__ = ["HandshakeFacts", "probe_handshake", "verify_server"]

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


@dataclass
class HandshakeFacts:
    """`cert_requested` is None when it cannot be learned (no openssl); `ca_names` as OpenSSL prints them."""

    chain: list[x509.Certificate] = field(default_factory=list)
    cert_requested: bool | None = None
    ca_names: list[str] = field(default_factory=list)
    protocol: str | None = None
    source: str = "openssl s_client"
    error: str | None = None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _parse_s_client(out: bytes) -> HandshakeFacts:
    facts = HandshakeFacts()
    facts.chain = load_certs_pem(b"\n".join(_PEM_BLOCK.findall(out))) if _PEM_BLOCK.search(out) else []
    text = out.decode("utf-8", "replace")
    lines = text.splitlines()
    requested = any(
        line.startswith(("Requested Signature Algorithms", "Client Certificate Types")) for line in lines
    )
    if "Acceptable client certificate CA names" in text:
        start = lines.index("Acceptable client certificate CA names") + 1
        for line in lines[start:]:
            if line.startswith(("Requested Signature Algorithms", "Client Certificate Types", "---")):
                break
            facts.ca_names.append(line.strip())
        requested = True
    facts.cert_requested = requested
    match = re.search(r"Protocol\s*:\s*(\S+)", text) or re.search(r"New, (TLSv[\d.]+)", text)
    facts.protocol = match.group(1) if match else None
    return facts


def _probe_with_ssl(host: str, port: int, timeout: float) -> HandshakeFacts:
    facts = HandshakeFacts(source="python ssl (install openssl to see the certificate request)")
    ctx = build_ssl_context(Trust("insecure"), None)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=None if _is_ip(host) else host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            facts.protocol = tls.version()
    except (OSError, ssl.SSLError) as exc:
        facts.error = str(exc)
        return facts
    if der:
        facts.chain = [x509.load_der_x509_certificate(der)]
    return facts


def probe_handshake(host: str, port: int, *, timeout: float = 10.0) -> HandshakeFacts:
    """Handshake without a client certificate and report the chain and the certificate request."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return _probe_with_ssl(host, port, timeout)
    cmd = [openssl, "s_client", "-connect", f"{host}:{port}", "-showcerts"]
    if not _is_ip(host):
        cmd += ["-servername", host]
    try:
        done = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return HandshakeFacts(error="openssl s_client timed out")
    out = done.stdout + b"\n" + done.stderr
    if b"CONNECTED" not in out or b"-----BEGIN CERTIFICATE-----" not in out:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return HandshakeFacts(error=last[-1] if last else f"openssl s_client exited {done.returncode}")
    try:
        return _parse_s_client(out)
    except ValueError as exc:
        return HandshakeFacts(error=f"cannot read openssl's report: {exc}")


def verify_server(host: str, port: int, trust: Trust, *, timeout: float = 10.0) -> str | None:
    """None when the server's certificate verifies under `trust`, else OpenSSL's reason."""
    ctx = build_ssl_context(trust, None)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        return exc.verify_message or str(exc)
    except (OSError, ssl.SSLError) as exc:
        return str(exc)
