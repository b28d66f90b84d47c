"""``self_signed_tls_client_auth`` (RFC 8705 section 2.2): the presented certificate is a registered one.

The leaf's ``x5t#S256`` must equal the thumbprint of a certificate the client registered (an ``x5c``
leaf in its ``jwks``, or in its ``jwks_uri``), compared in constant time, and that certificate must be
valid now. No chain is built: a registered certificate is matched, never used to validate another, so
one registered with CA:TRUE cannot vouch for certificates it issued. An unknown certificate triggers a
rate-limited refetch of ``jwks_uri`` so that a client can rotate by publishing a new certificate.
"""

from __future__ import annotations

from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.credentials import RegisteredCert, find_certificate
from certbound.server.clientauth.failure import AuthFailure
from certbound.server.clientauth.jwks_fetcher import JwksFetcher, JwksFetchError

__all__ = ["SelfSignedTlsClientAuth"]


class SelfSignedTlsClientAuth:
    name = "self_signed_tls_client_auth"

    def __init__(self, fetcher: JwksFetcher) -> None:
        self._fetcher = fetcher

    async def verify(self, ctx: MethodContext) -> None:
        cert = ctx.presented.certificate
        if cert is None:
            raise AuthFailure("cert.missing")
        found = await self._find(ctx, cert.x5t_s256)
        if found is None:
            raise AuthFailure("cert.unregistered", "no registered certificate has this x5t#S256")
        reason = found.window_reason(ctx.now)
        if reason is not None:
            raise AuthFailure(reason, "the registered certificate is outside its validity period")
        leaf = cert.leaf  # the same certificate, but check what was presented, not what we stored
        if ctx.now < leaf.not_valid_before_utc:
            raise AuthFailure("cert.not_yet_valid", "the presented certificate is not valid yet")
        if ctx.now > leaf.not_valid_after_utc:
            raise AuthFailure("cert.expired", "the presented certificate has expired")

    async def _find(self, ctx: MethodContext, thumbprint: str) -> RegisteredCert | None:
        client = ctx.client
        found = find_certificate(client.certificates, thumbprint)
        uri = client.jwks_uri
        if found is not None or uri is None:
            return found
        try:
            fetched = await self._fetcher.get(uri)
            found = find_certificate(fetched.certificates, thumbprint)
            if found is None:
                refreshed = await self._fetcher.refresh(uri)
                if refreshed is not None:
                    found = find_certificate(refreshed.certificates, thumbprint)
        except JwksFetchError as exc:
            raise AuthFailure("jwks_uri.fetch_failed", str(exc)) from None
        return found
