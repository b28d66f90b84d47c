"""Every network request revocation checking makes: OCSP answers and CRLs, through the guarded fetcher.

Three :class:`~certbound.net.http.GuardedFetcher`\\ s, each bounded by the policy's fetch timeout (an
overall deadline, resolution included) and a size cap:

* OCSP answers from the responders certificates name (``http`` and ``https``: RFC 6960 responders
  are plain HTTP, their answers being signed), at most 64 KiB;
* CRLs from the distribution points certificates name (likewise), at most ``max_crl_bytes``;
* CRLs at the URLs the operator configured (``client_ca_crls``), at most ``max_crl_bytes``.

The first two follow the outbound address policy (no loopback or private targets unless
``outbound_allow_private`` or the issuer is on such an address), as ``jwks_uri`` fetching does: the
URL comes from a certificate, which a client brought. The operator's own URLs may be anywhere.
`requests` counts the requests started, which tests read to show the request path makes none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from certbound.certstatus.policy import FETCH_TIMEOUT
from certbound.net.addresses import AddressPolicy, Resolver
from certbound.net.http import GuardedFetcher
from certbound.net.tls import build_ssl_context, load_trust
from certbound.pki.revocation.ocsp import OCSP_RESPONSE_MEDIA_TYPE

__all__ = ["CRL_ACCEPT", "Downloads"]

CRL_ACCEPT: Final = "application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1"
_SCHEMES: Final = ("http", "https")
_MAX_OCSP_BYTES: Final = 64 * 1024


class Downloads:
    """GETs of OCSP answers and CRLs (see the module docstring); `aclose` at shutdown."""

    def __init__(
        self,
        *,
        issuer_url: str | None,
        allow_private: bool = False,
        ca_bundle: str | Path | None = None,
        timeout: float = FETCH_TIMEOUT,
        max_crl_bytes: int = 16 * 1024 * 1024,
        resolver: Resolver | None = None,
    ) -> None:
        trust = load_trust(Path(ca_bundle) if ca_bundle is not None else None, with_system=True)
        context = build_ssl_context(trust, None)

        def fetcher(*, allow: bool, max_bytes: int) -> GuardedFetcher:
            policy = AddressPolicy(
                issuer_url=issuer_url, allow_private=allow, resolver=resolver, timeout=timeout
            )
            return GuardedFetcher(
                policy, context, timeout=timeout, deadline=timeout, max_bytes=max_bytes, schemes=_SCHEMES
            )

        self._ocsp = fetcher(allow=allow_private, max_bytes=_MAX_OCSP_BYTES)
        self._crl = fetcher(allow=allow_private, max_bytes=max_crl_bytes)
        self._configured = fetcher(allow=True, max_bytes=max_crl_bytes)
        self.requests = 0

    async def ocsp(self, url: str) -> bytes:
        """The body of the responder's answer at the GET `url`; FetchError otherwise."""
        self.requests += 1
        return await self._ocsp.get(url, accept=OCSP_RESPONSE_MEDIA_TYPE, what="OCSP responder URL")

    async def crl(self, url: str, *, configured: bool = False) -> bytes:
        """The CRL at `url` (a distribution point, or with `configured` one of the operator's)."""
        self.requests += 1
        fetcher = self._configured if configured else self._crl
        return await fetcher.get(url, accept=CRL_ACCEPT, what="CRL URL")

    async def aclose(self) -> None:
        for fetcher in (self._ocsp, self._crl, self._configured):
            await fetcher.aclose()
