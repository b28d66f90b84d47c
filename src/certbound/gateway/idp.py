"""An identity provider as the gateway uses it: discovery and introspection through the outbound OAuth
client (``certbound.client``: mTLS aliases, ``client_id`` with the mTLS methods, the IdP's certificate
verified, a pool per certificate), its JWKS through ``certbound.jose`` (cached, refetched on an unknown
``kid`` at most every 30 s), and the caches of what it said, by token hash.

Nothing here talks to the IdP at start: a gateway whose IdP is down or untrusted still starts, answers
502/503 while it is so, and picks it up when it is back (the client re-discovers, rate-limited).
Every failure of the IdP becomes a :class:`~certbound.gateway.answers.GatewayError` with an ``idp.*``
reason: never a pass, never a 401 that blames the caller.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from certbound.auth_methods import Endpoint
from certbound.client import (
    AsyncOAuthClient,
    ClientConfig,
    ClientConfigError,
    ClientError,
    ClientTimeout,
    DiscoveryError,
    NetworkError,
    OAuthServerError,
    TLSError,
    TLSIdentity,
    UnexpectedResponse,
)
from certbound.config import SettingsError, read_secret_file
from certbound.gateway.answers import GatewayError, idp_failure, internal_error
from certbound.gateway.config import GatewayConfigError, IdpSettings
from certbound.gateway.tokens import Inactive, TokenInfo
from certbound.jose.algorithms import ASYMMETRIC_ALGS
from certbound.jose.claims import AccessTokenProfile, IdTokenProfile
from certbound.jose.remote_jwks import RemoteJwks
from certbound.jose.verified_cache import VerifiedCache
from certbound.jose.verify import ACCESS_TOKEN_TYPES, JwtVerifier
from certbound.net.addresses import AddressPolicy
from certbound.net.http import GuardedFetcher
from certbound.net.tls import TLSConfigError, build_ssl_context, load_identity, load_trust

__all__ = ["JWKS_MAX_AGE", "JWKS_REFETCH_INTERVAL", "IdentityProvider", "client_config", "idp_error"]

log = logging.getLogger("certbound.gateway")

#: How long the IdP's JWKS is used before it is fetched again, and the least time between refetches
#: on an unknown ``kid`` (the issue's "at most every 30 s").
JWKS_MAX_AGE: Final = 300.0
JWKS_REFETCH_INTERVAL: Final = 30.0
#: The client_id of an IdP used for JWT validation only (no introspection): never sent anywhere.
_NO_CLIENT: Final = "certbound-gateway"
#: OAuth errors by which the IdP says the gateway itself is not accepted.
_REFUSALS: Final = frozenset({"invalid_client", "unauthorized_client", "access_denied"})
ACCESS_TOKEN_HINT: Final = "access_token"  # noqa: S105 - RFC 7662 token_type_hint
#: An ID token's ``typ``: ``JWT`` or none (OpenID Connect names no other); ``at+jwt`` never passes as one.
ID_TOKEN_TYPES: Final[frozenset[str | None]] = frozenset({"JWT", None})


def _read_jwk(path: Path, key: str, alg: str | None) -> dict[str, Any]:
    try:
        jwk = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GatewayConfigError(f"{key}.client_jwk_file: {path} is not a JSON JWK: {exc}") from None
    if not isinstance(jwk, dict):
        raise GatewayConfigError(f"{key}.client_jwk_file: {path} is not a JSON object")
    return jwk | {"alg": alg} if alg else jwk


def client_config(settings: IdpSettings, key: str) -> ClientConfig:
    """The outbound client's configuration for an IdP (`key` names it in errors: ``idps.NAME``)."""
    methods = settings.methods()
    identities = []
    if settings.tls_client_auth_cert is not None and settings.tls_client_auth_key is not None:
        identities.append(TLSIdentity(settings.tls_client_auth_cert, settings.tls_client_auth_key))
    identities += [TLSIdentity(c.cert, c.key, use_from=c.use_from) for c in settings.client_certificates]
    secret = settings.client_secret.get_secret_value() if settings.client_secret is not None else None
    if secret is None and settings.client_secret_file is not None:
        try:
            secret = read_secret_file(settings.client_secret_file, f"{key}.client_secret_file")
        except SettingsError as exc:
            raise GatewayConfigError(str(exc)) from None
    jwk = None
    if settings.client_jwk_file is not None and "private_key_jwt" in methods:
        jwk = _read_jwk(settings.client_jwk_file, key, settings.client_alg)
    hmac_alg = settings.client_alg if "client_secret_jwt" in methods and settings.client_alg else "HS256"
    overrides: dict[Endpoint, str] = {}
    if settings.client_id is not None and settings.introspection_endpoint_auth_method is not None:
        overrides["introspection"] = settings.introspection_endpoint_auth_method
    if settings.client_id is not None and settings.revocation_endpoint_auth_method is not None:
        overrides["revocation"] = settings.revocation_endpoint_auth_method
    try:
        return ClientConfig(
            issuer=settings.issuer,
            client_id=settings.client_id or _NO_CLIENT,
            auth_method=settings.client_auth if settings.client_id else "none",
            client_secret=secret,
            jwk=jwk,
            identities=identities,
            ca_file=settings.ca_bundle,
            verify=settings.tls_client_auth_ssl_verify,
            mtls_token_endpoint=settings.mtls_token_endpoint,
            mtls_introspection_endpoint=settings.mtls_introspection_endpoint,
            mtls_revocation_endpoint=settings.mtls_revocation_endpoint,
            client_secret_jwt_alg=hmac_alg,
            timeout=settings.timeout,
            endpoint_auth_methods=overrides,
            trust_env=False,
        )
    except ClientConfigError as exc:
        raise GatewayConfigError(f"{key}: {exc}") from None


#: What the caller is told of each way the IdP can fail (the log gets the detail).
_FAILURES: Final = {
    "idp.unavailable": (503, "the identity provider is unavailable"),
    "idp.untrusted": (502, "the identity provider's certificate is not trusted"),
    "idp.refused": (502, "the identity provider refused the gateway"),
    "idp.bad_response": (502, "the identity provider's answer cannot be used"),
    "idp.metadata": (502, "the identity provider's metadata cannot be used"),
}


def _failure(reason: str, detail: str) -> GatewayError:
    status, description = _FAILURES[reason]
    return idp_failure(reason, status, description, detail)


def _reason(exc: ClientError) -> str | None:
    if isinstance(exc, TLSError):
        return {"client": "idp.untrusted", "server": "idp.refused"}.get(exc.side, "idp.bad_response")
    if isinstance(exc, NetworkError | ClientTimeout):
        return "idp.unavailable"
    if isinstance(exc, DiscoveryError):
        return "idp.metadata"
    if isinstance(exc, OAuthServerError | UnexpectedResponse):
        if exc.status in (502, 503, 504):
            return "idp.unavailable"
        if isinstance(exc, OAuthServerError) and (exc.status in (401, 403) or exc.error in _REFUSALS):
            return "idp.refused"
        return "idp.bad_response"
    return None


def idp_error(exc: ClientError) -> GatewayError:
    """What a failure of the outbound client means for the caller: 502 or 503, an ``idp.*`` reason."""
    reason = _reason(exc)
    if reason is None:  # a configuration the checks at start let through: the gateway's own failure
        return internal_error(f"{type(exc).__name__}: {exc}")
    return _failure(reason, str(exc))


def _check_files(settings: IdpSettings, config: ClientConfig, key: str) -> None:
    """Load the CA bundle and every certificate with its key now, each failure naming its own key
    (``idp.ca_bundle``, ``idp.tls_client_auth_key``, ``idp.client_certificates[1].cert``)."""
    try:
        trust = load_trust(config.ca_file, verify=config.verify)
        build_ssl_context(trust, None)
    except TLSConfigError as exc:
        raise GatewayConfigError(f"{key}.ca_bundle: {exc}") from None
    names = []
    if settings.tls_client_auth_cert is not None:
        names.append((f"{key}.tls_client_auth_cert", f"{key}.tls_client_auth_key"))
    names += [(f"{key}.client_certificates[{i}].cert", f"{key}.client_certificates[{i}].key")
              for i in range(len(settings.client_certificates))]  # fmt: skip
    for identity, (cert_key, key_key) in zip(config.identities, names, strict=True):
        try:
            loaded = load_identity(identity)
        except TLSConfigError as exc:
            raise GatewayConfigError(f"{cert_key}: {exc}") from None
        try:
            build_ssl_context(trust, loaded)
        except TLSConfigError as exc:
            raise GatewayConfigError(f"{key_key}: {exc}") from None


def _assertion_key(settings: IdpSettings, message: str) -> str:
    """Which key a refusal of the client assertion's material is about (the JWK, or its alg)."""
    if settings.client_alg is not None and "alg" in message:
        return "client_alg"
    return "client_jwk_file" if settings.client_jwk_file is not None else "client_secret"


class IdentityProvider:
    """One IdP: its outbound client, its JWKS, and the verdict caches of the routes it serves.

    `cache_ttl_max` is the longest of its routes' (each route also checks its own on every hit).
    """

    def __init__(
        self,
        name: str,
        settings: IdpSettings,
        key: str,
        *,
        cache_ttl_max: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.issuer = settings.issuer
        self.cache_ttl_max = cache_ttl_max
        config = client_config(settings, key)
        _check_files(settings, config, key)
        try:
            self.client = AsyncOAuthClient(config, clock=clock)
        except (ClientConfigError, TLSConfigError) as exc:
            raise GatewayConfigError(f"{key}.{_assertion_key(settings, str(exc))}: {exc}") from None
        self._fetcher = GuardedFetcher(
            AddressPolicy(issuer_url=settings.issuer),
            build_ssl_context(self.client.trust, None),
            timeout=settings.timeout,
        )
        self._jwks: RemoteJwks | None = None
        self._verifiers: dict[float, JwtVerifier] = {}
        self._inflight: dict[bytes, asyncio.Future[Mapping[str, Any]]] = {}
        self.verified: VerifiedCache[TokenInfo] = VerifiedCache()
        self.introspected: VerifiedCache[TokenInfo | Inactive] = VerifiedCache()
        self.introspections = 0  # calls made to the IdP's introspection endpoint

    async def aclose(self) -> None:
        await self.client.aclose()
        await self._fetcher.aclose()

    async def metadata(self) -> Mapping[str, Any]:
        """The IdP's metadata (cached by the client); GatewayError when it cannot be had."""
        try:
            return await self.client.metadata()
        except ClientError as exc:
            raise idp_error(exc) from None

    def verifier(self, leeway: float) -> JwtVerifier | None:
        """The JWT verifier for `leeway`, once the JWKS is known (no I/O: the hot path's)."""
        return self._verifiers.get(leeway)

    async def load_verifier(self, leeway: float) -> JwtVerifier:
        """The JWT verifier for `leeway`, discovering the ``jwks_uri`` first if need be."""
        found = self._verifiers.get(leeway)
        if found is not None:
            return found
        jwks, issuer = await self._key_source()
        verifier = JwtVerifier(
            jwks,
            algorithms=ASYMMETRIC_ALGS,  # each key verifies only the algorithms its type (and alg) allow
            profile=AccessTokenProfile(issuer=issuer),
            typ=ACCESS_TOKEN_TYPES,
            leeway=leeway,
        )
        self._verifiers[leeway] = verifier
        return verifier

    async def follow_jwks_uri(self, leeway: float) -> JwtVerifier | None:
        """The IdP's keys could not be read, or lack a token's ``kid``: it may have moved its
        ``jwks_uri`` (a rotation onto a new URL). Re-discover (the client does so at most every 30 s)
        and return a verifier over the new ``jwks_uri`` when it moved; None when it did not."""
        current = self._jwks
        self.client.metadata_failed()
        try:
            metadata = await self.client.metadata()
        except ClientError:
            return None
        if current is None or metadata.get("jwks_uri") == current.uri:
            return None
        log.info("identity provider %s moved its jwks_uri to %s", self.name, metadata.get("jwks_uri"))
        self._verifiers.clear()
        return await self.load_verifier(leeway)

    async def verify_id_token(
        self, id_token: str, *, nonce: str, leeway: float, now: float
    ) -> dict[str, Any]:
        """The claims of an ID token of this IdP for the gateway's client: signature with the IdP's
        JWKS, ``iss``, ``aud``/``azp``, ``exp``/``iat``, ``nonce`` (OpenID Connect Core 3.1.3.7).
        Raises JwtError (a refusal), or GatewayError when the keys cannot be had."""
        jwks, issuer = await self._key_source()
        verifier = JwtVerifier(
            jwks,
            algorithms=ASYMMETRIC_ALGS,
            profile=IdTokenProfile(issuer=issuer, client_id=self.client.config.client_id, nonce=nonce),
            typ=ID_TOKEN_TYPES,
            leeway=leeway,
        )
        return (await verifier.verify(id_token, now)).claims

    async def _key_source(self) -> tuple[RemoteJwks, str]:
        """The IdP's JWKS and its issuer as its metadata spells it (what ``iss`` must equal)."""
        metadata = await self.metadata()
        jwks_uri, issuer = metadata.get("jwks_uri"), metadata.get("issuer")
        if not isinstance(jwks_uri, str) or not jwks_uri or not isinstance(issuer, str):
            raise _failure("idp.metadata", "no jwks_uri, or no issuer")
        if self._jwks is None or self._jwks.uri != jwks_uri:
            self._jwks = RemoteJwks(
                jwks_uri, self._fetcher, max_age=JWKS_MAX_AGE, refetch_interval=JWKS_REFETCH_INTERVAL, log=log
            )
            self._verifiers.clear()
        return self._jwks, issuer

    async def introspect(self, token: str, digest: bytes) -> Mapping[str, Any]:
        """The IdP's RFC 7662 answer for `token`; concurrent calls for one token share one request.

        An IdP that says it does not introspect this kind of token (oidc-provider's
        ``unsupported_token_type`` for JWTs) has answered about it: ``{"active": false}``.
        """
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            self.introspections += 1
            answer = await self._ask(token)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            self._inflight.pop(digest, None)
        future.set_result(answer)
        return answer

    async def _ask(self, token: str) -> Mapping[str, Any]:
        try:
            return (await self.client.introspect(token, token_type_hint=ACCESS_TOKEN_HINT)).data
        except OAuthServerError as exc:
            if exc.error == "unsupported_token_type":
                return {"active": False}
            raise idp_error(exc) from None
        except ClientError as exc:
            raise idp_error(exc) from None

    async def warm_up(self, *, jwks: bool) -> None:
        """Discover the IdP (and fetch its JWKS) now rather than on the first request; a failure is
        only logged: the gateway serves anyway and tries again on demand."""
        try:
            await self.metadata()
            if jwks:
                await (await self._key_source())[0].jwk_set()
        except GatewayError as exc:
            log.warning("identity provider %s (%s) not ready: %s: %s", self.name, self.issuer, exc.reason,
                        exc.detail or exc.description)  # fmt: skip
        except Exception as exc:  # the JWKS: KeysUnavailable
            log.warning("identity provider %s (%s) not ready: %s", self.name, self.issuer, exc)
