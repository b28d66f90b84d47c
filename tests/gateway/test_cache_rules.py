"""The verdict cache's rules, in process against the real certbound IdP, with the gateway's clock
moved by hand (the one thing mocked): a cached answer lives no longer than the route's cache_ttl_max
nor the token's exp, a refusal only as long as cache_ttl_neg, and concurrent requests for one token
share one introspection."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from certbound.gateway.answers import GatewayError
from certbound.gateway.config import IdpSettings
from certbound.gateway.idp import IdentityProvider
from certbound.gateway.validation import TokenValidator
from tests.client.material import Material
from tests.gateway.conftest import idp_settings
from tests.gateway.idps import Idp

pytestmark = pytest.mark.slow


class Ticker:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def provider(
    idps: dict[str, Idp], material: Material, ticker: Ticker
) -> AsyncIterator[IdentityProvider]:
    settings = IdpSettings(**idp_settings(idps["certbound"], material))
    found = IdentityProvider("certbound", settings, "idps.certbound", cache_ttl_max=3600, clock=ticker)
    yield found
    await found.aclose()


def validator(provider: IdentityProvider, ticker: Ticker, **rules: float) -> TokenValidator:
    return TokenValidator(
        provider,
        methods=("bearer", "introspection"),
        leeway=rules.get("leeway", 30),
        cache_introspection=True,
        cache_ttl_max=rules.get("ttl_max", 300),
        cache_ttl_neg=rules.get("ttl_neg", 0),
        clock=ticker,
    )


async def reason(check: TokenValidator, token: str) -> str:
    with pytest.raises(GatewayError) as caught:
        await check.validate(token)
    return caught.value.reason


async def test_an_answer_is_used_for_cache_ttl_max_only(
    idps: dict[str, Idp], provider: IdentityProvider, ticker: Ticker
) -> None:
    token = await asyncio.to_thread(idps["certbound"].token, "opaque")
    check = validator(provider, ticker, ttl_max=10)
    assert (await check.validate(token))[1] is False
    ticker.now += 9
    assert (await check.validate(token))[1] is True
    assert provider.introspections == 1
    ticker.now += 2  # 11 s after the answer
    assert (await check.validate(token))[1] is False
    assert provider.introspections == 2
    # a route with a shorter cache_ttl_max does not take the other's older answer
    ticker.now += 2
    assert (await validator(provider, ticker, ttl_max=1).validate(token))[1] is False


async def test_an_answer_never_outlives_exp(
    idps: dict[str, Idp], provider: IdentityProvider, ticker: Ticker
) -> None:
    token = await asyncio.to_thread(idps["certbound"].token, "opaque")
    check = validator(provider, ticker, ttl_max=3600, leeway=0)
    info, _ = await check.validate(token)
    assert info.expires_at is not None
    ticker.now = info.expires_at  # exp, by the gateway's clock
    assert await reason(check, token) == "token.expired"
    assert provider.introspections == 2  # the cached answer was not used past exp: the IdP was asked


async def test_refusals_are_cached_only_with_cache_ttl_neg(
    provider: IdentityProvider, ticker: Ticker
) -> None:
    unknown = secrets.token_urlsafe(32)
    for _ in range(2):
        assert await reason(validator(provider, ticker), unknown) == "token.inactive"
    assert provider.introspections == 2
    negative = validator(provider, ticker, ttl_neg=30)
    for _ in range(3):
        assert await reason(negative, unknown) == "token.inactive"
    assert provider.introspections == 3
    ticker.now += 31
    assert await reason(negative, unknown) == "token.inactive"
    assert provider.introspections == 4


async def test_a_verified_jwt_is_cached(
    idps: dict[str, Idp], provider: IdentityProvider, ticker: Ticker
) -> None:
    token = await asyncio.to_thread(idps["certbound"].token, "jwt")
    check = validator(provider, ticker)
    assert (await check.validate(token))[1] is False
    assert (await check.validate(token))[1] is True
    assert provider.introspections == 0  # a JWT of the IdP is verified locally


async def test_concurrent_requests_share_one_introspection(
    idps: dict[str, Idp], provider: IdentityProvider, ticker: Ticker
) -> None:
    token = await asyncio.to_thread(idps["certbound"].token, "opaque")
    check = validator(provider, ticker)
    results = await asyncio.gather(*(check.validate(token) for _ in range(10)))
    assert {id(info.claims) for info, _ in results} == {id(results[0][0].claims)}  # one answer
    assert provider.introspections == 1
