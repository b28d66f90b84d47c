"""The context factory crosses process boundaries (uvicorn spawns workers) and builds per worker."""

from __future__ import annotations

import pickle
import ssl
import subprocess
import sys
import textwrap

import pytest

from certbound.tls.listener import tls_mode
from certbound.tls.openssl_verify import accept_all_installed
from certbound.tls.server_context import ServerContextFactory, server_certificate_pem

from .conftest import TestPKI


def _factory(pki: TestPKI, **overrides: object) -> ServerContextFactory:
    fields: dict[str, object] = {
        "cert_file": str(pki.server_cert),
        "key_file": str(pki.server_key),
        "client_ca_file": str(pki.ca_file),
        "extra_trust_pems": (pki.self_signed.pem,),
        "mode": "native",
    }
    fields.update(overrides)
    return ServerContextFactory(**fields)  # type: ignore[arg-type]


def test_factory_pickles(pki: TestPKI) -> None:
    for mode in ("native", "degraded"):
        factory = _factory(pki, mode=mode)
        clone = pickle.loads(pickle.dumps(factory))  # noqa: S301 - our own data
        assert clone == factory
        assert hash(clone) == hash(factory)


def test_factory_builds_in_a_spawned_interpreter(pki: TestPKI) -> None:
    """What a spawned worker does: unpickle the factory, call it (``auto``: self-check there), serve."""
    code = textwrap.dedent(
        """
        import pickle, sys
        from certbound.tls.openssl_verify import accept_all_installed
        factory = pickle.loads(sys.stdin.buffer.read())
        ctx = factory(None, None)
        print(type(ctx).__name__, ctx.verify_mode.name, accept_all_installed(ctx))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=pickle.dumps(_factory(pki, mode="auto")),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.decode().split() == ["SSLContext", "CERT_OPTIONAL", "True"]


def test_native_context(pki: TestPKI) -> None:
    ctx = _factory(pki)(None, None)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.num_tickets == 0
    assert ctx.options & ssl.OP_NO_TICKET
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    assert accept_all_installed(ctx)
    assert server_certificate_pem(ctx) == pki.server_cert.read_text()


def test_each_call_builds_a_new_context(pki: TestPKI) -> None:
    factory = _factory(pki)
    assert factory(None, None) is not factory(None, None)


def test_degraded_context_has_no_callback_and_one_holder(pki: TestPKI) -> None:
    factory = _factory(pki, mode="degraded")
    ctx = factory(None, None)
    assert not accept_all_installed(ctx)
    assert ctx.sni_callback is not None
    assert factory.trust_holder() is pickle.loads(pickle.dumps(factory)).trust_holder()  # noqa: S301
    assert factory(None, None) is ctx  # one listening context per process; trust swaps via the holder


def test_contradictory_settings_are_refused(pki: TestPKI) -> None:
    with pytest.raises(ValueError, match="advertise_client_cas"):
        _factory(pki, client_ca_file=None, advertise_client_cas=True)
    with pytest.raises(ValueError, match="mode"):
        _factory(pki, mode="sometimes")
    with pytest.raises(ValueError, match=r"TLS 1\.2"):
        _factory(pki, minimum_version=ssl.TLSVersion.TLSv1_1)


def test_auto_mode_follows_the_self_check(pki: TestPKI) -> None:
    factory = _factory(pki, mode="auto")
    assert factory.resolved_mode() == tls_mode() == "native"
    assert accept_all_installed(factory())


def test_listener_that_does_not_ask_for_a_certificate(pki: TestPKI) -> None:
    for mode in ("native", "degraded"):
        ctx = _factory(pki, mode=mode, request_client_cert=False)()
        assert ctx.verify_mode == ssl.CERT_NONE
        assert not accept_all_installed(ctx)
        assert ctx.sni_callback is None
        assert server_certificate_pem(ctx) == pki.server_cert.read_text()
