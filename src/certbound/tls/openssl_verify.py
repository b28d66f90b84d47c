"""OpenSSL's verify callback for Python's ``ssl`` module, through ctypes: the one fragile module.

Why it exists: stdlib ``ssl`` has no verify callback, so a server that trusts a CA aborts the handshake
of every client whose certificate does not chain to it (self-signed, expired, unknown CA). RFC 8705
``self_signed_tls_client_auth`` and ``jwks_uri`` rotation need those handshakes to complete so the
application can decide (and answer ``invalid_client``). OpenSSL can do it: ``SSL_CTX_set_verify`` with
a callback that accepts every certificate, and ``SSL_get_verify_result`` afterwards tells what the TLS
layer concluded.

How it reaches OpenSSL (CPython only):

* libssl is resolved through the already-loaded ``_ssl`` extension module, so the functions called are
  exactly those of the OpenSSL ``ssl`` uses (checked: ``OpenSSL_version_num() ==
  ssl.OPENSSL_VERSION_NUMBER``).
* The ``SSL_CTX*`` is the first field after ``PyObject_HEAD`` of ``_ssl._SSLContext`` (``PySSLContext``
  in Modules/_ssl.c). Before anything is written through it, it is checked against the context's own
  getters (options, verify mode, minimum version) and again after toggling an option from Python.
* The connection's ``SSL*`` is the second field of ``_ssl._SSLSocket`` (after the ``Socket`` weakref);
  ``newPySSLSocket`` stores the object itself as app data (``SSL_set_app_data(self->ssl, self)``), so
  ``SSL_get_ex_data(ssl, 0) == id(sslobj)`` proves the pointer on every connection.
* Up to 3.12, ``_ssl``'s ``verify_mode`` setter keeps the installed callback (it passes
  ``SSL_CTX_get_verify_callback`` back to ``SSL_CTX_set_verify``); 3.13.0 resets it to NULL. So the
  callback is installed after the last ``verify_mode`` change; the self-check reports which it is.
* Carrying on past errors, OpenSSL's final verify result is the *last* error; the callback records the
  *first* (what OpenSSL alone would have refused the handshake with) in the ``SSL``'s ex data.

Anything unexpected raises :class:`OpenSSLVerifyError` (install) or yields ``ok=False``
(:func:`self_check`); nothing here is allowed to take the process down on a *checkable* mismatch.
:func:`self_check_isolated` runs the self-check in a child process first, so even an uncheckable
failure (a crash inside OpenSSL on a layout this code has never seen) only costs the child.

This file imports nothing from certbound so the isolated self-check can run it as a plain script.
"""

from __future__ import annotations

import ctypes
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

__all__ = [
    "OpenSSLVerifyError",
    "SelfCheckResult",
    "accept_all_installed",
    "disable_session_cache",
    "install_accept_all",
    "self_check",
    "self_check_isolated",
    "set_client_ca_list",
    "unverified_chain_der",
    "verify_error_string",
    "verify_result",
]

# CPython versions this mechanism was run on (3.11.7 fully; 3.12.1 and 3.13.0 through the self-check):
# SSL_CTX* is the first field after PyObject_HEAD of PySSLContext, SSL* the second of PySSLSocket
# (after the Socket weakref). Others fail closed until someone reads Modules/_ssl.c and extends this.
_CHECKED_CPYTHON = ((3, 11), (3, 14))  # [from, to)

# ssl.h control codes (stable since OpenSSL 1.1.0).
_SSL_CTRL_SET_SESS_CACHE_MODE = 44
_SSL_CTRL_GET_SESS_CACHE_MODE = 45
_SSL_CTRL_GET_MIN_PROTO_VERSION = 130
_SSL_SESS_CACHE_OFF = 0
_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02
_VERIFY_MODE_BITS = {
    ssl.CERT_NONE: 0,
    ssl.CERT_OPTIONAL: _SSL_VERIFY_PEER,
    ssl.CERT_REQUIRED: _SSL_VERIFY_PEER | _SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
}
X509_V_OK = 0

_PTR = ctypes.sizeof(ctypes.c_void_p)
_VERIFY_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept_every_certificate(preverify_ok: int, store_ctx: int | None) -> int:
    """OpenSSL verify callback: carry on whatever the error, remembering the connection's first one.

    Carrying on, OpenSSL's final verify result is the *last* error (an unknown CA ends as "unable to
    verify the first certificate"); the first is what OpenSSL alone would have failed the handshake
    with, so it is kept in the ``SSL``'s own ex data (an integer, nothing to free, gone with the
    ``SSL``). Must never raise: a ctypes callback that raises returns 0, failing the handshake.
    """
    try:
        lib = _callback_lib
        if not preverify_ok and lib is not None and store_ctx:
            ssl_ptr = lib.X509_STORE_CTX_get_ex_data(store_ctx, lib.store_ctx_ssl_index)
            index = lib.first_error_index
            if ssl_ptr and not lib.SSL_get_ex_data(ssl_ptr, index):
                # An error without a code still is one: X509_V_ERR_UNSPECIFIED (1).
                code = lib.X509_STORE_CTX_get_error(store_ctx) or 1
                lib.SSL_set_ex_data(ssl_ptr, index, code + 1)
    except BaseException:  # noqa: S110 - nothing may escape into OpenSSL
        pass
    return 1


# Module-level, so the C function pointer lives as long as the process (OpenSSL keeps calling it).
_ACCEPT_ALL = _VERIFY_CB(_accept_every_certificate)
_ACCEPT_ALL_ADDRESS: int = ctypes.cast(_ACCEPT_ALL, ctypes.c_void_p).value or 0


class OpenSSLVerifyError(RuntimeError):
    """The accept-all verify callback cannot be used here; the message says why."""


@dataclass(frozen=True, slots=True)
class SelfCheckResult:
    """Whether the native mechanism works in this interpreter, and what was proved or what failed."""

    ok: bool
    detail: str


class _LibSSL:
    """The handful of libssl/libcrypto functions used, with their C signatures."""

    def __init__(self, cdll: ctypes.CDLL, openssl3: bool) -> None:
        p, i, lg = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
        options_t = ctypes.c_uint64 if openssl3 else ctypes.c_ulong

        def fn(name: str, restype: Any, argtypes: list[Any]) -> Any:
            try:
                func = getattr(cdll, name)
            except AttributeError:
                raise OpenSSLVerifyError(f"symbol {name} not found through the _ssl module") from None
            func.restype = restype
            func.argtypes = argtypes
            return func

        self.OpenSSL_version_num = fn("OpenSSL_version_num", ctypes.c_ulong, [])
        self.SSL_CTX_set_verify = fn("SSL_CTX_set_verify", None, [p, i, p])
        self.SSL_CTX_get_verify_mode = fn("SSL_CTX_get_verify_mode", i, [p])
        self.SSL_CTX_get_verify_callback = fn("SSL_CTX_get_verify_callback", p, [p])
        self.SSL_CTX_get_options = fn("SSL_CTX_get_options", options_t, [p])
        self.SSL_CTX_ctrl = fn("SSL_CTX_ctrl", lg, [p, i, lg, p])
        self.SSL_CTX_set_client_CA_list = fn("SSL_CTX_set_client_CA_list", None, [p, p])
        self.SSL_CTX_get_client_CA_list = fn("SSL_CTX_get_client_CA_list", p, [p])
        self.SSL_load_client_CA_file = fn("SSL_load_client_CA_file", p, [ctypes.c_char_p])
        self.OPENSSL_sk_num = fn("OPENSSL_sk_num", i, [p])
        self.SSL_get_ex_data = fn("SSL_get_ex_data", p, [p, i])
        self.SSL_get_SSL_CTX = fn("SSL_get_SSL_CTX", p, [p])
        self.SSL_get_verify_callback = fn("SSL_get_verify_callback", p, [p])
        self.SSL_get_verify_result = fn("SSL_get_verify_result", lg, [p])
        self.X509_verify_cert_error_string = fn("X509_verify_cert_error_string", ctypes.c_char_p, [lg])
        self.SSL_set_ex_data = fn("SSL_set_ex_data", i, [p, i, p])
        self.X509_STORE_CTX_get_ex_data = fn("X509_STORE_CTX_get_ex_data", p, [p, i])
        self.X509_STORE_CTX_get_error = fn("X509_STORE_CTX_get_error", i, [p])
        get_store_ssl_index = fn("SSL_get_ex_data_X509_STORE_CTX_idx", i, [])
        new_index = fn("CRYPTO_get_ex_new_index", i, [i, lg, p, p, p, p])
        self.store_ctx_ssl_index = int(get_store_ssl_index())
        # CRYPTO_EX_INDEX_SSL == 0; OpenSSL reserves index 0 for SSL_set_app_data (used by _ssl.c).
        self.first_error_index = int(new_index(0, 0, None, None, None, None))
        if self.store_ctx_ssl_index < 0 or self.first_error_index <= 0:
            raise OpenSSLVerifyError("could not allocate an SSL ex data index")


_lib_lock = threading.Lock()
_lib_cache: _LibSSL | OpenSSLVerifyError | None = None
_callback_lib: _LibSSL | None = None  # what the verify callback uses; set once libssl is proven
_error_strings: dict[int, str] = {}
# Contexts whose SSL_CTX* was proven; the field never changes for the life of a context object.
_proven_contexts: weakref.WeakKeyDictionary[ssl.SSLContext, int] = weakref.WeakKeyDictionary()


def _layout_problem() -> str | None:
    """Why the PySSLContext/PySSLSocket layout cannot be relied on here, or None."""
    impl = sys.implementation.name
    if impl != "cpython":
        return f"{impl} is not CPython; the _ssl object layout is CPython's"
    ver = sys.version_info[:2]
    if not _CHECKED_CPYTHON[0] <= ver < _CHECKED_CPYTHON[1]:
        return (
            f"CPython {ver[0]}.{ver[1]}: the _ssl object layout was checked for "
            f"{_CHECKED_CPYTHON[0]}..{_CHECKED_CPYTHON[1]} (exclusive); read Modules/_ssl.c and extend"
        )
    import _ssl

    head = object.__basicsize__
    ctx_type: type = _ssl._SSLContext
    sock_type: Any = getattr(_ssl, "_SSLSocket", None)
    if sock_type is None:
        return "_ssl._SSLSocket not found"
    if ctx_type.__basicsize__ < head + _PTR or sock_type.__basicsize__ < head + 2 * _PTR:
        return "_ssl object sizes are smaller than the expected layout"
    return None


def _load() -> _LibSSL:
    """libssl as loaded by ``_ssl`` (cached; a failure is cached too and raised again)."""
    global _lib_cache, _callback_lib
    cached = _lib_cache
    if isinstance(cached, _LibSSL):  # the per-connection path: no lock
        return cached
    with _lib_lock:
        if _lib_cache is None:
            try:
                _lib_cache = _callback_lib = _load_uncached()
            except OpenSSLVerifyError as exc:
                _lib_cache = exc
            except Exception as exc:
                _lib_cache = OpenSSLVerifyError(f"cannot load libssl through _ssl: {exc!r}")
        if isinstance(_lib_cache, OpenSSLVerifyError):
            # A fresh exception each time: re-raising one instance would grow its traceback forever.
            raise OpenSSLVerifyError(str(_lib_cache))
        return _lib_cache


def _load_uncached() -> _LibSSL:
    problem = _layout_problem()
    if problem:
        raise OpenSSLVerifyError(problem)
    import _ssl

    path = getattr(_ssl, "__file__", None)
    # A built-in _ssl (statically linked into the interpreter) exports from the main program.
    cdll = ctypes.CDLL(path) if path else ctypes.CDLL(None)
    lib = _LibSSL(cdll, openssl3=ssl.OPENSSL_VERSION_INFO >= (3,))
    runtime = lib.OpenSSL_version_num()
    if runtime != ssl.OPENSSL_VERSION_NUMBER:
        raise OpenSSLVerifyError(
            f"the OpenSSL found through _ssl ({runtime:#x}) is not the one ssl reports "
            f"({ssl.OPENSSL_VERSION_NUMBER:#x})"
        )
    return lib


def _read_pointer(obj: object, index: int) -> int:
    """The ``index``-th pointer field after PyObject_HEAD of a CPython object (0 when NULL)."""
    return ctypes.c_void_p.from_address(id(obj) + object.__basicsize__ + index * _PTR).value or 0


def _ssl_ctx_pointer(lib: _LibSSL, context: ssl.SSLContext) -> int:
    """The ``SSL_CTX*`` of a context, proven by comparing OpenSSL's view with Python's (once)."""
    import _ssl

    if not isinstance(context, _ssl._SSLContext):
        raise OpenSSLVerifyError(f"{type(context).__name__} is not an _ssl._SSLContext")
    if not isinstance(context, ssl.SSLContext):
        raise OpenSSLVerifyError("a bare _ssl._SSLContext is not supported; use ssl.SSLContext")
    known = _proven_contexts.get(context)
    if known is not None:
        return known
    ptr = _read_pointer(context, 0)
    if ptr == 0 or ptr % _PTR:
        raise OpenSSLVerifyError("SSL_CTX pointer is NULL or misaligned")

    def agrees() -> str | None:
        opts = int(lib.SSL_CTX_get_options(ptr))
        if opts != int(context.options):
            return f"options {opts:#x} != context.options {int(context.options):#x}"
        mode = int(lib.SSL_CTX_get_verify_mode(ptr)) & 0x03
        if mode != _VERIFY_MODE_BITS[context.verify_mode]:
            return f"verify mode {mode} != context.verify_mode {context.verify_mode!r}"
        low = int(lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_GET_MIN_PROTO_VERSION, 0, None))
        expected = int(context.minimum_version)
        if low != (0 if expected == ssl.TLSVersion.MINIMUM_SUPPORTED else expected):
            return f"minimum protocol {low:#x} != context.minimum_version {expected:#x}"
        return None

    mismatch = agrees()
    if mismatch is None:
        # Move a value from Python and watch OpenSSL follow: a stale or foreign pointer cannot.
        original = context.options
        context.options = original ^ ssl.OP_NO_RENEGOTIATION
        try:
            mismatch = agrees()
        finally:
            context.options = original
    if mismatch is not None:
        raise OpenSSLVerifyError(f"SSL_CTX pointer check failed: {mismatch}")
    _proven_contexts[context] = ptr
    return ptr


def _ssl_pointer(lib: _LibSSL, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int:
    """The connection's ``SSL*``, proven by the app data _ssl.c stores on it (the object itself)."""
    import _ssl

    sslobj = getattr(ssl_object, "_sslobj", None)
    if type(sslobj) is not getattr(_ssl, "_SSLSocket", None):
        raise OpenSSLVerifyError("ssl object has no _ssl._SSLSocket")
    ptr = _read_pointer(sslobj, 1)
    if ptr == 0 or ptr % _PTR:
        raise OpenSSLVerifyError("SSL pointer is NULL or misaligned")
    if lib.SSL_get_ex_data(ptr, 0) != id(sslobj):
        raise OpenSSLVerifyError("SSL pointer check failed: app data is not the _SSLSocket")
    return ptr


def install_accept_all(context: ssl.SSLContext) -> None:
    """Make ``context`` complete handshakes whatever the client certificate; the verdict is kept.

    The verify mode is left as it is: set ``CERT_OPTIONAL`` first, and do not touch ``verify_mode``
    (or ``check_hostname``) afterwards: from 3.13 that drops the callback. Idempotent. Raises
    :class:`OpenSSLVerifyError` and leaves the context untouched when the mechanism cannot be proven.
    """
    lib = _load()
    ptr = _ssl_ctx_pointer(lib, context)
    current = lib.SSL_CTX_get_verify_callback(ptr) or 0
    if current not in (0, _ACCEPT_ALL_ADDRESS):
        raise OpenSSLVerifyError("the context already has a foreign verify callback")
    mode = int(lib.SSL_CTX_get_verify_mode(ptr))
    lib.SSL_CTX_set_verify(ptr, mode, _ACCEPT_ALL_ADDRESS)
    if (lib.SSL_CTX_get_verify_callback(ptr) or 0) != _ACCEPT_ALL_ADDRESS:
        raise OpenSSLVerifyError("SSL_CTX_set_verify did not take the callback")
    if int(lib.SSL_CTX_get_verify_mode(ptr)) != mode:
        raise OpenSSLVerifyError("SSL_CTX_set_verify changed the verify mode")


def accept_all_installed(context: ssl.SSLContext) -> bool:
    """Whether :func:`install_accept_all` is in force on ``context`` (False when it cannot be told)."""
    try:
        lib = _load()
        return (lib.SSL_CTX_get_verify_callback(_ssl_ctx_pointer(lib, context)) or 0) == _ACCEPT_ALL_ADDRESS
    except OpenSSLVerifyError:
        return False


def disable_session_cache(context: ssl.SSLContext) -> None:
    """Turn off OpenSSL's server-side session-ID cache (stdlib ``ssl`` cannot).

    A resumed session carries the client's leaf certificate and the old verify result but not the
    intermediates it sent, and is never re-verified; so certbound resumes nothing by default.
    """
    lib = _load()
    ptr = _ssl_ctx_pointer(lib, context)
    lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_SET_SESS_CACHE_MODE, _SSL_SESS_CACHE_OFF, None)
    if int(lib.SSL_CTX_ctrl(ptr, _SSL_CTRL_GET_SESS_CACHE_MODE, 0, None)) != _SSL_SESS_CACHE_OFF:
        raise OpenSSLVerifyError("the session cache mode did not change")


def set_client_ca_list(context: ssl.SSLContext, cafile: str | os.PathLike[str]) -> int:
    """Advertise the subject names of ``cafile``'s certificates in the CertificateRequest.

    stdlib ``ssl`` never sets this list (it goes out empty). Returns the number of names set.
    """
    lib = _load()
    ptr = _ssl_ctx_pointer(lib, context)
    names = lib.SSL_load_client_CA_file(os.fsencode(cafile))
    if not names:
        raise OpenSSLVerifyError(f"no CA certificate could be read from {os.fspath(cafile)}")
    lib.SSL_CTX_set_client_CA_list(ptr, names)  # takes ownership of the stack
    return int(lib.OPENSSL_sk_num(lib.SSL_CTX_get_client_CA_list(ptr)))


def verify_result(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int | None:
    """OpenSSL's verdict on the peer's chain (``X509_V_OK`` is 0); None when it cannot be read.

    Under the accept-all callback this is the first error met, i.e. what OpenSSL alone would have
    refused the handshake with; otherwise ``SSL_get_verify_result``. Meaningful only when the peer
    sent a certificate: with none, OpenSSL reports ``X509_V_OK``.
    """
    try:
        lib = _load()
        ptr = _ssl_pointer(lib, ssl_object)
    except OpenSSLVerifyError:
        return None
    first = lib.SSL_get_ex_data(ptr, lib.first_error_index)
    if first:
        return int(first) - 1
    return int(lib.SSL_get_verify_result(ptr))


def verify_error_string(code: int) -> str:
    """OpenSSL's text for a verify result, e.g. ``unable to get local issuer certificate``."""
    text = _error_strings.get(code)
    if text is None:
        try:
            raw = _load().X509_verify_cert_error_string(code)
            text = raw.decode("utf-8", "replace") if raw else f"verify error {code}"
        except OpenSSLVerifyError:
            text = f"verify error {code}"
        _error_strings[code] = text
    return text


def unverified_chain_der(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> list[bytes]:
    """The certificates the peer sent, leaf first, as DER ([] when it sent none).

    ``get_unverified_chain`` is public from Python 3.13 (returning DER); on 3.11-3.12 the
    ``_sslobj`` method returns ``_ssl.Certificate`` objects (the server side includes the leaf).
    On a resumed session OpenSSL has only the leaf, so that is all this returns.
    """
    public: Callable[[], list[bytes] | None] | None = getattr(ssl_object, "get_unverified_chain", None)
    if public is not None:
        try:
            ders = list(public() or ())
        except AttributeError:
            # 3.13.0: with no client certificate the server-side leaf is None and the public method
            # calls None.public_bytes(); the getpeercert fallback below gives the right answer.
            ders = []
    else:
        import _ssl

        raw = getattr(ssl_object, "_sslobj").get_unverified_chain()  # noqa: B009 - private on 3.11-3.12
        # The server side prepends the peer's leaf, which is None when the client sent no certificate.
        ders = [cert.public_bytes(_ssl.ENCODING_DER) for cert in raw or () if cert is not None]
    if not ders:
        leaf = ssl_object.getpeercert(binary_form=True)
        ders = [leaf] if leaf else []
    return ders


# ---------------------------------------------------------------------------------------------------
# Self-check: prove the mechanism with real in-memory handshakes before relying on it.


def _throwaway_pki(directory: Path) -> tuple[Path, Path, Path, Path, bytes]:
    """A server certificate and an unrelated self-signed client certificate, written to files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    paths: list[Path] = []
    der = b""
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"certbound self-check {name}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        paths += [cert_path, key_path]
        der = cert.public_bytes(serialization.Encoding.DER)
    return paths[0], paths[1], paths[2], paths[3], der


def _memory_handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> tuple[ssl.SSLObject, ssl.SSLError | None]:
    """Run a handshake between two SSLObjects over memory BIOs; the server's error, if any."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out)
    server_done = client_done = False
    for _ in range(16):
        if not client_done:
            try:
                client.do_handshake()
                client_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                client_done = True  # the server's alert; its own error is what is reported
        s_in.write(c_out.read())
        if not server_done:
            try:
                server.do_handshake()
                server_done = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                return server, exc
        c_in.write(s_out.read())
        if server_done and client_done:
            return server, None
    return server, ssl.SSLError("handshake did not finish in 16 rounds")


def _self_check_steps() -> str:
    """The self-check proper; raises OpenSSLVerifyError (or anything) on the first failed step."""
    lib = _load()
    proved: list[str] = []
    with tempfile.TemporaryDirectory(prefix="certbound-selfcheck-") as tmp:
        s_cert, s_key, c_cert, c_key, client_der = _throwaway_pki(Path(tmp))

        dropped: list[bool] = []

        def server_context(accept_all: bool) -> ssl.SSLContext:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(s_cert, s_key)
            ctx.load_verify_locations(cadata=s_cert.read_text())  # trusts something, not the client
            ctx.verify_mode = ssl.CERT_OPTIONAL
            if accept_all:
                install_accept_all(ctx)
                # Up to 3.12 _ssl.c's verify_mode setter passes the current callback back in; 3.13
                # resets it to NULL. Either way install_accept_all must come after the last change.
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.verify_mode = ssl.CERT_OPTIONAL
                if not accept_all_installed(ctx):
                    dropped.append(True)
                    install_accept_all(ctx)
            return ctx

        def client_context(version: ssl.TLSVersion, with_cert: bool) -> ssl.SSLContext:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.minimum_version = ctx.maximum_version = version
            if with_cert:
                ctx.load_cert_chain(c_cert, c_key)
            return ctx

        accept = server_context(accept_all=True)
        proved.append(
            "SSL_CTX pointer agrees with the context's getters; the verify_mode setter "
            + ("drops the callback (installed last)" if dropped else "keeps the callback")
        )
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            label = version.name
            # Control: without the callback OpenSSL must refuse the unknown self-signed certificate.
            _, error = _memory_handshake(server_context(accept_all=False), client_context(version, True))
            if error is None:
                raise OpenSSLVerifyError(f"{label}: control handshake without the callback did not fail")
            server, error = _memory_handshake(accept, client_context(version, True))
            if error is not None:
                raise OpenSSLVerifyError(f"{label}: handshake with the callback failed: {error}")
            if server.version() != label.replace("_", "."):
                raise OpenSSLVerifyError(f"{label}: negotiated {server.version()}")
            chain = unverified_chain_der(server)
            if chain != [client_der]:
                raise OpenSSLVerifyError(f"{label}: presented chain not readable ({len(chain)} certs)")
            ptr = _ssl_pointer(lib, server)
            if lib.SSL_get_SSL_CTX(ptr) != _ssl_ctx_pointer(lib, accept):
                raise OpenSSLVerifyError(f"{label}: SSL_get_SSL_CTX does not lead back to the context")
            if (lib.SSL_get_verify_callback(ptr) or 0) != _ACCEPT_ALL_ADDRESS:
                raise OpenSSLVerifyError(f"{label}: the connection did not inherit the callback")
            code = verify_result(server)
            if not code:
                raise OpenSSLVerifyError(f"{label}: verify result is {code!r}, expected an error")
            if lib.SSL_get_ex_data(ptr, lib.first_error_index) != code + 1:
                raise OpenSSLVerifyError(f"{label}: the callback did not record the first error")
            # No certificate: handshake completes, nothing presented, nothing to report.
            server, error = _memory_handshake(accept, client_context(version, False))
            if error is not None or unverified_chain_der(server) or verify_result(server) != X509_V_OK:
                raise OpenSSLVerifyError(f"{label}: handshake without a client certificate misbehaved")
            proved.append(
                f"{label}: unknown self-signed cert accepted, "
                f"verify result {code} ({verify_error_string(code)})"
            )
    return f"native mode on CPython {sys.version.split()[0]} with {ssl.OPENSSL_VERSION}: " + "; ".join(proved)


def self_check() -> SelfCheckResult:
    """Prove, in this process, that the accept-all callback works: never raises."""
    try:
        return SelfCheckResult(True, _self_check_steps())
    except OpenSSLVerifyError as exc:
        return SelfCheckResult(False, str(exc))
    except Exception as exc:
        return SelfCheckResult(False, f"self-check raised {exc!r}")


def self_check_isolated(timeout: float = 30.0) -> SelfCheckResult:
    """Run :func:`self_check` in a child interpreter first, so a crash there cannot take this one down.

    The child is the same interpreter and the same file run as a script (``-P``: no script directory
    on ``sys.path``); it prints the result as JSON.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-P", os.path.abspath(__file__)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except Exception as exc:
        return SelfCheckResult(False, f"isolated self-check could not run: {exc!r}")
    if proc.returncode < 0:
        return SelfCheckResult(False, f"isolated self-check died with signal {-proc.returncode}")
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        return SelfCheckResult(bool(data["ok"]), str(data["detail"]))
    except Exception:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return SelfCheckResult(False, f"isolated self-check failed (exit {proc.returncode}): {tail[0]}")


if __name__ == "__main__":
    _result = self_check()
    print(json.dumps({"ok": _result.ok, "detail": _result.detail}))
    sys.exit(0 if _result.ok else 1)
