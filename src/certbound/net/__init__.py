"""certbound.net: every call out of certbound goes through here.

`tls` builds the client-side SSLContext (trust, the TLS identity presented, TLS 1.2+), `http` the
httpx clients over it (:func:`~certbound.net.http.async_client`) and the guarded GET for URLs that
come from outside (:class:`~certbound.net.http.GuardedFetcher`), `addresses` the SSRF guard's address
policy. Shared by the OAuth client, the server's fetches of clients' ``jwks_uri`` and the gateway; it
imports none of them.
"""
