"""KeyRingSource and StaticKeys: the local key sources behind verify_jwt."""

from __future__ import annotations

from datetime import timedelta

import pytest
from joserfc.jwk import ECKey

from certbound.jose.algorithms import SIGNING_ALGS
from certbound.jose.claims import AccessTokenProfile
from certbound.jose.errors import JwtError
from certbound.jose.jwk_set import read_jwk_set
from certbound.jose.key_source import StaticKeys
from certbound.jose.keyring import KeyManager, KeyRing, KeyRingSource
from certbound.jose.verify import verify_jwt
from certbound.sealing import Sealer
from tests.jose.conftest import NOW, MemoryKeyStore
from tests.jose.tokens import sign

EPOCH = NOW.timestamp()


class Provider:
    """A ring provider over a KeyManager: the snapshot as loaded, and a reload on demand."""

    def __init__(self, manager: KeyManager) -> None:
        self.manager = manager
        self.reloads = 0

    async def ring(self) -> KeyRing:
        return self.manager.current()

    async def reload(self) -> KeyRing:
        self.reloads += 1
        return await self.manager.keyring()


@pytest.fixture
async def provider(memory_store: MemoryKeyStore, sealer: Sealer) -> Provider:
    manager = KeyManager(memory_store, sealer)
    await manager.ensure_keys(NOW)
    return Provider(manager)


async def test_the_active_key_for_its_own_alg_only(provider: Provider) -> None:
    source = KeyRingSource(provider)
    active = provider.manager.current().active()
    assert len(await source.keys_for(active.kid, active.alg, EPOCH)) == 1
    assert await source.keys_for(active.kid, "ES384", EPOCH) == ()
    assert await source.keys_for(None, active.alg, EPOCH) == ()
    assert provider.reloads == 0


async def test_a_kid_shaped_like_ours_reloads_once(provider: Provider, memory_store: MemoryKeyStore) -> None:
    source = KeyRingSource(provider)
    rotation = await provider.manager.rotate(NOW)  # another worker adds a key: this snapshot lacks it
    assert rotation.added is not None
    found = await source.keys_for(rotation.added, "ES256", EPOCH)
    assert len(found) == 1
    assert provider.reloads == 1
    assert await source.keys_for("not-a-thumbprint", "ES256", EPOCH) == ()
    assert provider.reloads == 1  # only kids that could be ours cost a store read
    assert await source.keys_for("A" * 43, "ES256", EPOCH) == ()
    assert provider.reloads == 2


async def test_retired_keys_stop_verifying_after_publish_until(provider: Provider) -> None:
    source = KeyRingSource(provider)
    old = provider.manager.current().active()
    await provider.manager.rotate(NOW)
    await provider.manager.rotate(NOW, token_lifetime=timedelta(minutes=10))  # old is retired
    await provider.manager.keyring()
    assert len(await source.keys_for(old.kid, old.alg, EPOCH + 599)) == 1
    assert await source.keys_for(old.kid, old.alg, EPOCH + 601) == ()


@pytest.mark.parametrize("alg", sorted(SIGNING_ALGS))
async def test_verify_jwt_with_the_key_ring(alg: str, memory_store: MemoryKeyStore, sealer: Sealer) -> None:
    manager = KeyManager(memory_store, sealer, alg=alg)
    await manager.ensure_keys(NOW)
    signer = manager.current().active()
    claims = {"iss": "https://as", "sub": "c", "client_id": "c", "aud": "https://as", "jti": "j"}
    token = signer.sign({**claims, "iat": int(EPOCH), "exp": int(EPOCH) + 60}, typ="at+jwt")
    verified = await verify_jwt(
        token,
        KeyRingSource(Provider(manager)),
        algorithms=SIGNING_ALGS,
        profile=AccessTokenProfile(issuer="https://as"),
        now=EPOCH,
        typ={"at+jwt"},
    )
    assert verified.header == {"alg": alg, "typ": "at+jwt", "kid": signer.kid}
    with pytest.raises(JwtError) as caught:
        await verify_jwt(
            token,
            KeyRingSource(Provider(manager)),
            algorithms=SIGNING_ALGS,
            profile=AccessTokenProfile(issuer="https://other-as"),
            now=EPOCH,
        )
    assert caught.value.reason == "jwt.bad_issuer"


async def test_static_keys() -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "s"}, private=True)
    source = StaticKeys(read_jwk_set([key.as_dict(private=False)]))
    token = sign({"alg": "ES256", "kid": "s"}, {"iss": "x", "sub": "y"}, key)

    class Anything:
        def check(self, claims: object, now: float, leeway: float, header: object = None) -> None:
            pass

    verified = await verify_jwt(token, source, algorithms={"ES256"}, profile=Anything())
    assert verified.claims == {"iss": "x", "sub": "y"}
    with pytest.raises(JwtError) as caught:
        await verify_jwt(
            sign({"alg": "ES256", "kid": "other"}, {}, key), source, algorithms={"ES256"}, profile=Anything()
        )
    assert caught.value.reason == "jws.unknown_key"
