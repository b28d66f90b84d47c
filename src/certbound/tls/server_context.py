"""The listener's ``ssl.SSLContext``, built by a picklable factory in every worker process.

uvicorn calls ``ssl_context_factory(config, default_factory)`` in each worker (workers are spawned,
so the factory is pickled); an ``SSLContext`` and its ctypes verify callback cannot cross a process
boundary, which is why each worker builds its own from plain paths and flags.

Two modes (see docs/tls.md):

* ``native``: ``CERT_OPTIONAL``, the client CA bundle loaded (so the TLS verdict against the trusted
  CAs is meaningful), and the accept-all verify callback: every client certificate reaches the app with
  OpenSSL's verdict attached.
* ``degraded`` (the self-check failed): plain OpenSSL verification against client CAs + registered
  self-signed certificates; anything else fails the handshake. Registrations change at run time, so the
  trust store is swapped by a :class:`TrustHolder` whose context the ``sni_callback`` (called on every
  ClientHello, with or without SNI) puts on each new connection.
"""

from __future__ import annotations

import logging
import ssl
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from certbound.tls import openssl_verify

__all__ = [
    "ServerContextFactory",
    "TrustHolder",
    "server_certificate_pem",
]

logger = logging.getLogger("certbound.tls")

Mode = Literal["native", "degraded"]

_server_pems: weakref.WeakKeyDictionary[ssl.SSLContext, str] = weakref.WeakKeyDictionary()
_holders: dict[ServerContextFactory, TrustHolder] = {}
_holders_lock = threading.Lock()


def server_certificate_pem(context: ssl.SSLContext) -> str | None:
    """The PEM of the server certificate a context built here presents (ASGI ``server_cert``)."""
    return _server_pems.get(context)


def _first_pem_certificate(path: str) -> str | None:
    text = Path(path).read_text("ascii", errors="replace")
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    return text[start : stop + len(end)] + "\n" if start >= 0 and stop >= 0 else None


@dataclass(frozen=True)
class ServerContextFactory:
    """Builds the server context; matches uvicorn's ``ssl_context_factory(config, default_factory)``.

    ``mode="auto"`` takes :func:`certbound.tls.listener.tls_mode` (the self-check, run once per process:
    pass the main process's result explicitly to spare each worker from running it again).
    ``request_client_cert=False`` makes a listener that does not ask for a certificate at all (no
    callback, no CA, no browser prompt), for a main port when mTLS has a port of its own.
    ``extra_trust_pems`` (PEM strings) are the registered self-signed certificates trusted at the TLS
    layer in degraded mode; at run time use :meth:`trust_holder` to replace them. ``advertise_client_cas``
    sends the client CA names in the CertificateRequest: off by default because clients that filter
    by it (Go, Java) would then withhold a self-signed certificate. ``session_resumption`` is off by
    default: a resumed session gives the leaf without the intermediates it came with, and is not
    re-verified.
    """

    cert_file: str
    key_file: str | None = None
    client_ca_file: str | None = None
    extra_trust_pems: tuple[str, ...] = ()
    minimum_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    mode: Mode | Literal["auto"] = "auto"
    request_client_cert: bool = True
    ciphers: str | None = None
    alpn_protocols: tuple[str, ...] = ("http/1.1",)
    advertise_client_cas: bool = False
    session_resumption: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("native", "degraded", "auto"):
            raise ValueError(f"mode must be 'native', 'degraded' or 'auto', not {self.mode!r}")
        if self.minimum_version < ssl.TLSVersion.TLSv1_2:
            raise ValueError("minimum_version below TLS 1.2 is not supported")
        if self.advertise_client_cas and not self.client_ca_file:
            raise ValueError("advertise_client_cas needs client_ca_file")

    def __call__(
        self, config: Any = None, default_factory: Callable[[], ssl.SSLContext] | None = None
    ) -> ssl.SSLContext:
        """The context for this worker; raises (the worker does not start) if native mode fails here."""
        if self.resolved_mode() == "degraded" and self.request_client_cert:
            return self.trust_holder().base
        return self.build()

    def resolved_mode(self) -> Mode:
        """``mode``, with ``"auto"`` decided by this process's self-check."""
        if self.mode != "auto":
            return self.mode
        from certbound.tls.listener import tls_mode  # here: listener imports this module

        return tls_mode()

    def build(self, extra_trust_pems: Iterable[str] | None = None) -> ssl.SSLContext:
        """A fresh context in this factory's mode (degraded: trusting ``extra_trust_pems``)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        mode = self.resolved_mode()
        ctx.minimum_version = self.minimum_version
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.ciphers:
            ctx.set_ciphers(self.ciphers)
        if self.alpn_protocols:
            ctx.set_alpn_protocols(list(self.alpn_protocols))
        self._remember_server_certificate(ctx)
        if not self.request_client_cert:
            return ctx  # CERT_NONE: no client certificate is asked for, so none can be misread
        if self.client_ca_file:
            ctx.load_verify_locations(cafile=self.client_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        # The certificate is read once per connection: TLS 1.2 renegotiation must not change it.
        ctx.options |= ssl.OP_NO_RENEGOTIATION
        if not self.session_resumption:
            self._no_resumption(ctx, mode)
        if mode == "native":
            # Fails closed: a worker whose context cannot carry the callback must not serve.
            openssl_verify.install_accept_all(ctx)
            if self.advertise_client_cas and self.client_ca_file:
                openssl_verify.set_client_ca_list(ctx, self.client_ca_file)
        else:
            pems = self.extra_trust_pems if extra_trust_pems is None else tuple(extra_trust_pems)
            if pems:
                ctx.load_verify_locations(cadata="\n".join(pems))
            if self.advertise_client_cas and self.client_ca_file:
                self._best_effort(openssl_verify.set_client_ca_list, ctx, self.client_ca_file)
        if mode == "native" and not openssl_verify.accept_all_installed(ctx):
            # From 3.13 the verify_mode setter drops the callback: nothing above may touch it.
            raise openssl_verify.OpenSSLVerifyError("the verify callback was lost while building")
        return ctx

    def _remember_server_certificate(self, ctx: ssl.SSLContext) -> None:
        pem = _first_pem_certificate(self.cert_file)
        if pem is not None:
            _server_pems[ctx] = pem

    def _no_resumption(self, ctx: ssl.SSLContext, mode: Mode) -> None:
        ctx.options |= ssl.OP_NO_TICKET  # TLS 1.2 tickets
        ctx.num_tickets = 0  # TLS 1.3 tickets
        if mode == "native":
            openssl_verify.disable_session_cache(ctx)  # TLS 1.2 session IDs
        else:
            self._best_effort(openssl_verify.disable_session_cache, ctx)

    @staticmethod
    def _best_effort(func: Callable[..., object], *args: Any) -> None:
        try:
            func(*args)
        except openssl_verify.OpenSSLVerifyError as exc:
            logger.warning("tls: %s not applied: %s", func.__name__, exc)

    def trust_holder(self) -> TrustHolder:
        """This process's holder of the degraded-mode context (one per equal factory)."""
        if self.resolved_mode() != "degraded" or not self.request_client_cert:
            raise RuntimeError("trust_holder() is for degraded mode; native mode needs no trust swaps")
        with _holders_lock:
            holder = _holders.get(self)
            if holder is None:
                holder = _holders[self] = TrustHolder(self)
            return holder


class TrustHolder:
    """The degraded-mode context in force; new connections are moved onto it in the ClientHello.

    :attr:`base` is the context uvicorn listens with; :meth:`replace` builds a context trusting a new
    set of self-signed certificates and makes it current (connections already open keep theirs).
    """

    def __init__(self, factory: ServerContextFactory) -> None:
        self._factory = factory
        self.base: ssl.SSLContext = factory.build()
        self.base.sni_callback = self._sni_callback
        self.current: ssl.SSLContext = self.base
        self.generation = 0

    def replace(self, extra_trust_pems: Iterable[str]) -> None:
        """Trust exactly ``extra_trust_pems`` (plus the client CAs) from the next handshake on."""
        self.current = self._factory.build(extra_trust_pems)
        self.generation += 1

    def _sni_callback(
        self, ssl_object: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, context: ssl.SSLContext
    ) -> None:
        current = self.current
        if current is not context:
            ssl_object.context = current
