"""``private_key_jwt`` (RFC 7523 section 2.2, OpenID Connect Core 9): an assertion signed with a private key.

The keys are the client's registered ``jwks`` (compiled once per directory entry) or its
``jwks_uri`` (fetched and cached, :mod:`certbound.server.clientauth.jwks_fetcher`). A ``kid`` in the header
selects the key (a JWK registered without kid is named by its RFC 7638 thumbprint); without one, every
key that may sign with the alg is tried. When nothing verifies and the keys come from ``jwks_uri``, the
set is refetched once (rate-limited) so that a client can rotate by publishing a new key. Only
asymmetric algorithms are accepted. The shared assertion rules are in
:mod:`certbound.server.clientauth.assertion`.
"""

from __future__ import annotations

from collections.abc import Sequence

from joserfc.jwk import Key

from certbound.server.clientauth.assertion import AssertionChecker, UnverifiedAssertion
from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.credentials import RegisteredJwk
from certbound.server.clientauth.failure import AuthFailure
from certbound.server.clientauth.jwks_fetcher import JwksFetcher, JwksFetchError

__all__ = ["PrivateKeyJwt", "candidate_keys"]


def candidate_keys(keys: Sequence[RegisteredJwk], assertion: UnverifiedAssertion) -> list[Key]:
    """The keys that may have signed `assertion`: named by its kid (if any), for signing, for its alg
    (:meth:`certbound.jose.jwk_set.PublicJwk.may_verify`)."""
    kid, alg = assertion.kid, assertion.alg
    return [k.key for k in keys if k.may_verify(kid, alg)]


class PrivateKeyJwt:
    name = "private_key_jwt"

    def __init__(self, checker: AssertionChecker, fetcher: JwksFetcher) -> None:
        self._checker = checker
        self._fetcher = fetcher

    async def verify(self, ctx: MethodContext) -> None:
        assertion = ctx.presented.parsed_assertion()
        client = ctx.client
        self._checker.check_header(
            assertion, ctx.presented.assertion_type, "asymmetric", client.signing_algs[ctx.endpoint]
        )
        uri = client.jwks_uri
        if uri is None:
            found = self._verify(assertion, client.jwks)
        else:
            try:
                found = self._verify(assertion, (await self._fetcher.get(uri)).keys)
                if found != "verified":
                    refreshed = await self._fetcher.refresh(uri)
                    if refreshed is not None:
                        found = self._verify(assertion, refreshed.keys)
            except JwksFetchError as exc:
                raise AuthFailure("jwks_uri.fetch_failed", str(exc)) from None
        if found == "no_key":
            raise AuthFailure("assertion.unknown_key", "no registered key matches the kid and alg")
        if found == "bad_signature":
            raise AuthFailure("assertion.bad_signature")
        await self._checker.finish(assertion, client.client_id, ctx.request.audiences, ctx.now)

    def _verify(self, assertion: UnverifiedAssertion, keys: Sequence[RegisteredJwk]) -> str:
        candidates = candidate_keys(keys, assertion)
        if not candidates:
            return "no_key"
        if self._checker.verify_signature(assertion, "asymmetric", candidates):
            return "verified"
        return "bad_signature"
