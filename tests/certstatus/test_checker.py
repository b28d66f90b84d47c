"""The revocation checker against a real OCSP responder and real CRLs over HTTP on 127.0.0.1: first
checks wait for the network, the request path then never does (requests counted), answers are kept
while fresh and refreshed in the background, and what cannot be believed is not."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.certstatus import GOOD_CHAIN, RevocationChecker, RevocationPolicy, build_checker, path_keys
from certbound.pki.issue import create_ca
from certbound.pki.revocation import CertStatus, build_crl, ocsp_answer, ocsp_request
from tests.revocation_peer import RevocationPki, RevocationServer, revocation_server
from tests.server.endpoints.harness import FakeClock as Clock  # epoch seconds; answers carry real times


@pytest.fixture
def server() -> Iterator[RevocationServer]:
    with revocation_server() as running:
        yield running


@pytest.fixture
def pki(server: RevocationServer) -> RevocationPki:
    return RevocationPki.create(server)


@pytest.fixture
def clock() -> Clock:
    return Clock()


Made = tuple[RevocationChecker, list[tuple[str, Any]]]


@pytest.fixture
async def make(clock: Clock, pki: RevocationPki) -> AsyncIterator[Any]:
    made: list[RevocationChecker] = []

    def build(**policy: Any) -> Made:
        checker = build_checker(
            RevocationPolicy(**policy),
            issuer_url="https://127.0.0.1:8443",  # a loopback issuer: loopback responders are allowed
            known_cas=[pki.root.cert],
            clock=clock,
        )
        heard: list[tuple[str, Any]] = []
        checker.on_revoked(lambda leaf_key, path, revoked, status: heard.append((leaf_key, status)))
        made.append(checker)
        return checker, heard

    yield build
    for checker in made:
        await checker.aclose()


async def verdict(checker: RevocationChecker, path: tuple[x509.Certificate, ...], clock: Clock) -> Any:
    keys = path_keys(path)
    return checker.cached(keys, clock()) or await checker.check(path, keys)


async def test_first_check_waits_then_the_request_path_never_fetches(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    checker, _ = make()
    leaf, _ = pki.leaf("CN=good")
    path = pki.chain(leaf)
    keys = path_keys(path)
    assert checker.cached(keys, clock()) is None  # never seen: the caller must check
    assert (await checker.check(path, keys)) is GOOD_CHAIN
    asked = server.count()
    assert asked == 2  # the leaf's OCSP answer and the intermediate's: one request each
    for _ in range(100):
        assert checker.cached(keys, clock()) is GOOD_CHAIN
    assert server.count() == asked
    assert checker.downloads.requests == asked


async def test_concurrent_first_checks_share_one_fetch(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    checker, _ = make()
    leaf, _ = pki.leaf("CN=popular", via="ocsp")
    path = pki.chain(leaf)
    results = await asyncio.gather(*(checker.check(path, path_keys(path)) for _ in range(20)))
    assert all(r is GOOD_CHAIN for r in results)
    assert server.count() == 2


@pytest.mark.parametrize("via", ["ocsp", "crl"])
async def test_a_revoked_leaf_is_revoked_with_its_source_and_time(
    make: Any, pki: RevocationPki, clock: Clock, via: str
) -> None:
    checker, heard = make()
    leaf, _ = pki.leaf(f"CN=revoked-{via}", via=via)
    when = pki.intermediate.revoke(leaf, x509.ReasonFlags.key_compromise)
    found = await verdict(checker, pki.chain(leaf), clock)
    assert found.state == "revoked"
    assert found.certificate == leaf
    assert found.status.revoked_at == when
    assert found.status.reason == "keyCompromise"
    url = pki.server.ocsp_url("inter") if via == "ocsp" else pki.server.crl_url("inter")
    assert found.status.source == f"{via} {url}"
    assert url in found.detail
    assert [key for key, _ in heard] == [path_keys(pki.chain(leaf))[0]]


@pytest.mark.parametrize("via", ["ocsp", "crl"])
async def test_a_revoked_intermediate_revokes_its_leaves(
    make: Any, pki: RevocationPki, clock: Clock, via: str
) -> None:
    checker, _ = make(mode="ocsp" if via == "ocsp" else "crl")
    leaf, _ = pki.leaf("CN=under-revoked-intermediate")
    pki.root.revoke(pki.intermediate.cert)
    found = await verdict(checker, pki.chain(leaf), clock)
    assert found.state == "revoked"
    assert found.certificate == pki.intermediate.cert
    assert found.status.source.startswith(via)


async def test_the_crl_mode_never_asks_the_responder(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    checker, _ = make(mode="crl")
    leaf, _ = pki.leaf("CN=both-pointers")
    assert (await verdict(checker, pki.chain(leaf), clock)) is GOOD_CHAIN
    assert server.requests
    assert all(path.startswith("/crl/") for path in server.requests)


async def test_off_is_off(make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock) -> None:
    checker, _ = make(mode="off")
    assert not checker.enabled


async def test_responder_down_first_seen_is_unknown(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    checker, _ = make()
    server.down = True
    leaf, _ = pki.leaf("CN=first-seen-while-down", via="ocsp")
    found = await verdict(checker, pki.chain(leaf), clock)
    assert found.state == "unknown"
    assert "HTTP 503" in found.detail
    asked = server.count()
    # the request path does not wait again: it answers from memory until a refresh succeeds
    assert checker.cached(path_keys(pki.chain(leaf)), clock()).state == "unknown"
    assert server.count() == asked
    server.down = False
    clock.advance(15)  # past the retry interval
    await checker.refresh_due()
    assert checker.cached(path_keys(pki.chain(leaf)), clock()) is GOOD_CHAIN


async def test_a_fresh_answer_outlives_the_responder_then_expires(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    pki.intermediate.validity = pki.root.validity = timedelta(seconds=120)
    checker, _ = make()
    leaf, _ = pki.leaf("CN=outlives", via="ocsp")
    path = pki.chain(leaf)
    keys = path_keys(path)
    assert (await checker.check(path, keys)) is GOOD_CHAIN
    server.down = True
    clock.advance(100)  # past the refresh point, before nextUpdate
    assert await checker.refresh_due() == 2  # tried, failed...
    assert checker.cached(keys, clock()) is GOOD_CHAIN  # ...the fresh answer stands
    clock.advance(60)  # past nextUpdate
    await checker.refresh_due()
    found = checker.cached(keys, clock())
    assert found is not None
    assert found.state == "unknown"
    assert "stale" in found.detail or "expired" in found.detail or "503" in found.detail


async def test_a_background_refresh_learns_a_revocation_and_tells_the_listeners(
    make: Any, pki: RevocationPki, clock: Clock
) -> None:
    pki.intermediate.validity = pki.root.validity = timedelta(seconds=60)
    checker, heard = make()
    one, _ = pki.leaf("CN=one")
    two, _ = pki.leaf("CN=two")
    for leaf in (one, two):
        assert (await verdict(checker, pki.chain(leaf), clock)) is GOOD_CHAIN
    pki.root.revoke(pki.intermediate.cert)  # both leaves go with their intermediate
    clock.advance(50)
    await checker.refresh_due()
    assert sorted(key for key, _ in heard) == sorted(path_keys(pki.chain(c))[0] for c in (one, two))
    assert all(status.status == "revoked" for _, status in heard)
    assert checker.cached(path_keys(pki.chain(one)), clock()).state == "revoked"


async def test_a_forged_ocsp_answer_is_not_believed(make: Any, pki: RevocationPki, clock: Clock) -> None:
    checker, _ = make(mode="ocsp")
    leaf, _ = pki.leaf("CN=forged", via="ocsp")
    pki.intermediate.revoke(leaf)
    impostor = create_ca(pki.intermediate.cert.subject)  # the CA's name, not its key
    now = datetime.now(UTC)
    pki.intermediate.ocsp_instead = ocsp_answer(  # "good", about the right certificate, wrong signer
        ocsp_request(leaf, pki.intermediate.cert),
        pki.intermediate.cert,
        {},
        signer=impostor,
        this_update=now - timedelta(seconds=5),
        next_update=now + timedelta(hours=1),
    )
    found = await verdict(checker, pki.chain(leaf), clock)
    assert found.state == "unknown"
    assert "not signed by the issuer" in found.detail


async def test_a_crl_of_another_ca_is_not_believed(make: Any, pki: RevocationPki, clock: Clock) -> None:
    checker, _ = make(mode="crl")
    leaf, _ = pki.leaf("CN=other-ca-crl", via="crl")
    other_cert, other_key = create_ca(pki.intermediate.cert.subject)
    now = datetime.now(UTC)
    crl = build_crl(other_cert, other_key, [], this_update=now, next_update=now + timedelta(hours=1))
    pki.intermediate.crl_instead = crl.public_bytes(Encoding.DER)
    found = await verdict(checker, pki.chain(leaf), clock)
    assert found.state == "unknown"
    assert "not signed by the issuer" in found.detail


async def test_a_certificate_without_pointers_is_good_with_no_source(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    checker, _ = make()
    leaf, _ = pki.leaf("CN=no-pointers", via="", issuer=pki.root)
    found = await verdict(checker, pki.chain(leaf, pki.root), clock)
    assert found is GOOD_CHAIN
    assert server.count() == 0


async def test_configured_crl_files_cover_certificates_without_pointers(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock, tmp_path: Path
) -> None:
    crl_file = tmp_path / "root.crl"
    crl_file.write_bytes(pki.root.crl())
    checker, _ = make(crls=(str(crl_file),))
    leaf, _ = pki.leaf("CN=configured", via="", issuer=pki.root)
    path = pki.chain(leaf, pki.root)
    assert (await verdict(checker, path, clock)) is GOOD_CHAIN
    pki.root.revoke(leaf)
    crl_file.write_bytes(pki.root.crl())  # a new CRL: the file changes
    stat = crl_file.stat()
    os.utime(crl_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    await checker.refresh_due()  # the file changed: read again at once, not at the answer's refresh time
    found = checker.cached(path_keys(path), clock())
    assert found is not None
    assert found.state == "revoked"
    assert found.status.source == f"crl {crl_file}"
    assert server.count() == 0  # a file: nothing went over the network


async def test_a_configured_crl_that_never_loaded_fails_closed(
    make: Any, pki: RevocationPki, clock: Clock, tmp_path: Path
) -> None:
    checker, _ = make(crls=(str(tmp_path / "missing.crl"),))
    leaf, _ = pki.leaf("CN=configured-missing", via="", issuer=pki.root)
    found = await verdict(checker, pki.chain(leaf, pki.root), clock)
    assert found.state == "unknown"
    assert "not loaded" in found.detail


async def test_loopback_responders_are_refused_for_a_public_issuer(pki: RevocationPki, clock: Clock) -> None:
    checker = build_checker(RevocationPolicy(), issuer_url="https://as.example.com", clock=clock)
    try:
        leaf, _ = pki.leaf("CN=ssrf", via="ocsp")
        found = await verdict(checker, pki.chain(leaf), clock)
        assert found.state == "unknown"
        assert "non-public address" in found.detail
    finally:
        await checker.aclose()
    allowed = build_checker(
        RevocationPolicy(), issuer_url="https://as.example.com", allow_private=True, clock=clock
    )
    try:
        assert (await verdict(allowed, pki.chain(leaf), clock)) is GOOD_CHAIN
    finally:
        await allowed.aclose()


async def test_tracked_chains_are_checked_in_the_background(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    checker, heard = make()
    leaf, _ = pki.leaf("CN=tracked")
    pki.intermediate.revoke(leaf)
    checker.track(pki.chain(leaf))
    assert checker.cached(path_keys(pki.chain(leaf)), clock()) is None  # not checked yet: callers wait
    await checker.refresh_due()
    assert [status.status for _, status in heard] == ["revoked"]


def test_policy_values() -> None:
    assert RevocationPolicy().use_ocsp
    assert RevocationPolicy().use_crl
    assert not RevocationPolicy(mode="crl").use_ocsp
    assert not RevocationPolicy(mode="ocsp").use_crl
    with pytest.raises(ValueError, match="unknown revocation mode"):
        RevocationPolicy(mode="crl,ocsp")  # type: ignore[arg-type]
    assert isinstance(CertStatus("good", "none"), CertStatus)


async def test_a_cancelled_first_check_does_not_cancel_the_others_waiting_for_it(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    """A client that hangs up while its certificate's first status is fetched (its request cancelled)
    must not take down the other requests waiting for the same fetch, nor a background refresh."""
    checker, _ = make()
    leaf, _ = pki.leaf("CN=shared-wait", via="ocsp")
    path = pki.chain(leaf)
    server.delay = 0.3
    first = asyncio.create_task(checker.check(path, path_keys(path)))
    await asyncio.sleep(0.05)  # the first caller's fetch is on its way
    second = asyncio.create_task(checker.check(path, path_keys(path)))
    await asyncio.sleep(0.05)
    first.cancel()
    assert (await second) is GOOD_CHAIN
    assert first.cancelled()
    assert server.count() == 2  # still one fetch per certificate: the second joined the first's


async def test_a_first_check_does_not_queue_behind_a_backlog_of_background_refreshes(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    """After a responder outage every remembered certificate is due at once; a client seen for the first
    time must not wait behind that whole backlog (its request is the one a user is waiting for)."""
    checker, _ = make()
    for n in range(12):
        leaf, _ = pki.leaf(f"CN=remembered-{n}", via="ocsp")
        path = pki.chain(leaf)
        assert (await checker.check(path, path_keys(path))) is GOOD_CHAIN
    clock.advance(500)  # three quarters of the answers' 10 minutes: every one is due for a refresh
    server.delay = 0.2
    newcomer_ca = pki.add_intermediate("newcomer-ca")
    newcomer, _ = pki.leaf("CN=newcomer", via="ocsp", issuer=newcomer_ca)
    refreshing = asyncio.create_task(checker.refresh_due())
    await asyncio.sleep(0.05)  # the refreshes are queued (and the first of them on the wire)
    path = pki.chain(newcomer, newcomer_ca)
    assert (await checker.check(path, path_keys(path))) is GOOD_CHAIN
    assert await refreshing == 13  # the 12 leaves and their intermediate
    asked = list(server.requests)
    first_own = next(i for i, p in enumerate(asked) if p.startswith("/ocsp/newcomer-ca/"))
    refreshed_before = [p for p in asked[:first_own] if p.startswith("/ocsp/inter/")]
    # the first 12 were the first checks above; then at most the refreshes already on the wire (8 at
    # once), not the whole backlog of 13
    assert len(refreshed_before) - 12 <= 8


async def test_a_revoked_intermediate_forgotten_during_a_first_check_is_not_taken_for_good(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    """A revoked intermediate nobody presented for a day is forgotten by the idle pass; when that pass
    runs while a new leaf below it is being checked, the chain must not come out good."""
    pki.intermediate.validity = pki.root.validity = timedelta(days=2)  # answers outlive the test's day
    checker, _ = make(mode="ocsp")
    pki.root.revoke(pki.intermediate.cert)
    first, _ = pki.leaf("CN=first-below-revoked", via="ocsp")
    assert (await verdict(checker, pki.chain(first), clock)).state == "revoked"
    clock.advance(86400 + 120)  # a day without anybody presenting a chain through it
    server.delay = 0.3
    stolen, _ = pki.leaf("CN=never-seen-below-revoked", via="ocsp")
    path = pki.chain(stolen)
    checking = asyncio.create_task(checker.check(path, path_keys(path)))
    await asyncio.sleep(0.1)  # the leaf's first fetch is on the wire
    await checker.refresh_due()  # the background pass forgets the idle entries meanwhile
    found = await checking
    assert found.state == "revoked"
    assert found.certificate == pki.intermediate.cert


async def test_an_answer_with_an_algorithm_nobody_knows_is_unknown_for_the_request_and_the_refresh(
    make: Any, pki: RevocationPki, server: RevocationServer, clock: Clock
) -> None:
    """Whoever sits on the plain-HTTP path to the responder can answer with a signature algorithm
    cryptography does not know: that certificate is unknown; the request does not fail, and a refresh
    pass still refreshes every other certificate."""
    checker, _ = make(mode="ocsp")
    neighbour, _ = pki.leaf("CN=neighbour", via="ocsp")
    odd, _ = pki.leaf("CN=odd-answer", via="ocsp")
    assert (await verdict(checker, pki.chain(neighbour), clock)) is GOOD_CHAIN
    now = datetime.now(UTC)
    good = ocsp_answer(
        ocsp_request(odd, pki.intermediate.cert),
        pki.intermediate.cert,
        {},
        signer=(pki.intermediate.cert, pki.intermediate.key),
        this_update=now - timedelta(seconds=5),
        next_update=now + timedelta(hours=1),
    )
    ecdsa_sha256, nobodys = bytes.fromhex("06082a8648ce3d040302"), bytes.fromhex("06082a8648ce3d040309")
    assert good.count(ecdsa_sha256) == 1
    pki.intermediate.ocsp_instead = good.replace(ecdsa_sha256, nobodys)
    found = await verdict(checker, pki.chain(odd), clock)
    assert found.state == "unknown"
    assert found.certificate == odd
    pki.intermediate.revoke(neighbour)
    pki.intermediate.ocsp_instead = None
    clock.advance(500)  # both due: the odd one is refreshed along with the neighbour
    assert await checker.refresh_due() >= 2
    assert checker.cached(path_keys(pki.chain(neighbour)), clock()).state == "revoked"


@pytest.mark.parametrize("via", ["ocsp", "crl"])
async def test_an_answer_just_past_its_next_update_is_used_within_the_leeway(
    make: Any, pki: RevocationPki, clock: Clock, via: str
) -> None:
    """A CA that publishes a few seconds late (its CRL's or answer's nextUpdate just passed) is within
    the 30 s of leeway the verification allows: the answer is used, not refused as stale at once."""
    checker, _ = make(mode=via)
    leaf, _ = pki.leaf(f"CN=late-{via}", via=via)
    now = datetime.now(UTC).replace(microsecond=0)
    late = {"this_update": now - timedelta(hours=1), "next_update": now - timedelta(seconds=5)}
    if via == "crl":
        crl = build_crl(pki.intermediate.cert, pki.intermediate.key, [], **late)
        pki.intermediate.crl_instead = crl.public_bytes(Encoding.DER)
    else:
        pki.intermediate.ocsp_instead = ocsp_answer(
            ocsp_request(leaf, pki.intermediate.cert),
            pki.intermediate.cert,
            {},
            signer=(pki.intermediate.cert, pki.intermediate.key),
            **late,
        )
    path = pki.chain(leaf)
    assert (await checker.check(path, path_keys(path))) is GOOD_CHAIN
    assert checker.cached(path_keys(path), clock()) is GOOD_CHAIN
