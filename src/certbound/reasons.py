"""Every reason code certbound emits, with its meaning and what to do about it: one catalogue.

A reason code says, machine-readably, why something was refused. Only the log and the operator see
it (``OAuthError.reason``, ``AuthFailure``, ``JwtError``, the ``client_auth``, ``forwarded_cert_*``,
``request`` and ``gateway_request`` events); the wire carries the standard error alone.
``certbound explain`` prints a code's meaning and advice from here, docs/reason-codes.md lists the
same tables, and the tests check that every code in the source is here, and documented.
:class:`~certbound.errors.OAuthError`, ``AuthFailure`` and ``JwtError`` refuse a code that is not.

A code is ``<area>.<name>``. An area whose second part varies (the metadata field, the OAuth error,
the HTTP status) is one *family* entry, written ``metadata.<field>``: any code of that area belongs
to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "ADVICE",
    "CATALOGUE",
    "CLIENT_AUTH",
    "GATEWAY",
    "LOGIN",
    "MEANINGS",
    "OK",
    "SECTIONS",
    "Reason",
    "Section",
    "is_known",
    "lookup",
]

#: The ``reason`` of a success (``client_auth`` events, the metric): not a refusal, so not catalogued.
OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class Reason:
    """One code: what it means (for the log reader) and what to do about it (what `explain` prints)."""

    code: str
    meaning: str
    advice: str

    @property
    def is_family(self) -> bool:
        """True for an entry that stands for a whole area (``metadata.<field>``)."""
        return self.code.endswith(">")


@dataclass(frozen=True, slots=True)
class Section:
    """The codes of one concern, and where they appear."""

    title: str
    where: str
    reasons: tuple[Reason, ...]


CLIENT_AUTH: Final = Section(
    "Client authentication",
    "the `client_auth` event and its counter; on the wire always `invalid_client` (401), or a 500 for "
    "`internal.error`",
    (
        # the request
        Reason(
            "request.multiple_mechanisms",
            "the request carries more than one client authentication mechanism",
            "send exactly one credential, the one of the registered method (a client certificate is not "
            "counted: it may always be presented to bind tokens)",
        ),
        Reason(
            "request.client_id_missing",
            "no client_id was sent (the mTLS methods and 'none' need it in the form)",
            "add client_id to the form body: tls_client_auth, self_signed_tls_client_auth and none have no "
            "other way to name the client",
        ),
        Reason(
            "request.client_id_mismatch",
            "the form's client_id differs from the one in Basic or in the assertion",
            "send one client_id: the form's must be the one in the Basic header or the assertion's sub",
        ),
        Reason(
            "request.malformed_basic",
            "the Authorization: Basic header is not base64 of form-encoded id:secret",
            "build the header as 'Basic ' + base64(urlencode(client_id) + ':' + urlencode(secret)), "
            "UTF-8, as RFC 6749 Appendix B says",
        ),
        # the client
        Reason(
            "client.unknown",
            "no client is registered with this client_id",
            "check the client_id and that you are talking to the right server: no client with this id is "
            "registered (or declared in the clients file) there",
        ),
        Reason(
            "client.method_mismatch",
            "the request does not use the method the client registered for this endpoint",
            "use the method the client registered for this endpoint",
        ),
        Reason(
            "client.misconfigured",
            "the client's stored credentials cannot be used (see the server log)",
            "the stored client cannot be used as registered (the server logs a warning naming the problem "
            "when it loads the client); fix the registration or the clients file",
        ),
        # secrets
        Reason(
            "secret.mismatch",
            "the client secret is wrong",
            "use the client_secret the server returned at registration (it is stored only as a digest and "
            "cannot be read back; rotate it through the registration management API if it is lost)",
        ),
        Reason(
            "secret.expired",
            "the client secret has expired",
            "the secret is past client_secret_expires_at: obtain a new one",
        ),
        # certificates
        Reason(
            "cert.missing",
            "no client certificate was presented",
            "present the client certificate in the TLS handshake (curl --cert/--key), at the mTLS endpoint "
            "(mtls_endpoint_aliases) if the server has one; behind a proxy, the proxy must forward it in the "
            "configured header from a trusted_proxies address",
        ),
        Reason(
            "cert.untrusted",
            "the certificate does not chain to a trusted client CA",
            "use a certificate issued by one of the CAs in the server's client_ca, and send any "
            "intermediate CA certificates along with it",
        ),
        Reason(
            "cert.expired",
            "a certificate (presented, on the chain, or registered) has expired",
            "renew the certificate (and check the validity dates of every CA on its chain)",
        ),
        Reason(
            "cert.not_yet_valid",
            "a certificate (presented, on the chain, or registered) is not valid yet",
            "the certificate's notBefore is in the future: wait, or check the clocks of the issuing CA "
            "and of the server",
        ),
        Reason(
            "cert.invalid",
            "the chain breaks the client-certificate policy (EKU, key usage, constraints, ...)",
            "issue a client certificate the policy accepts: extendedKeyUsage clientAuth (or none), "
            "digitalSignature key usage, CA certificates with CA:TRUE and keyCertSign; the detail says "
            "which rule failed",
        ),
        Reason(
            "cert.subject_mismatch",
            "the certificate does not carry the registered subject value",
            "the certificate must carry exactly the registered tls_client_auth_* value: compare it with "
            "the certificate's subject and subject alternative names",
        ),
        Reason(
            "cert.revoked",
            "the certificate, or a CA certificate on its chain, is revoked (OCSP or CRL)",
            "the certificate's CA says it is revoked: the detail and the event name the certificate, the "
            "revocation time and reason, and the OCSP responder or CRL that said so. Issue a new "
            "certificate (with a new key if the old one may be compromised); a revoked CA certificate "
            "needs the CA to reissue every certificate below it",
        ),
        Reason(
            "cert.revocation_unknown",
            "the revocation status of the certificate, or of a CA on its chain, cannot be had",
            "make the certificate's OCSP responder (its AIA) or CRL (its distribution point, or the "
            "client_ca_crls entry of its CA) reachable from the server, current (nextUpdate not passed) "
            "and signed by the issuing CA; the detail names each source tried and what went wrong. "
            "client_cert_revocation_soft_fail = true accepts such certificates with a warning instead",
        ),
        Reason(
            "cert.unregistered",
            "the certificate is not one of the client's registered certificates",
            "register this certificate: put it (as x5c of its JWK) in the client's jwks, or publish it at "
            "the client's jwks_uri",
        ),
        # JWT assertions
        Reason(
            "assertion.malformed",
            "the client_assertion is not a compact JWS with a JSON claims set",
            "send a compact JWS (header.payload.signature) whose payload is a JSON object",
        ),
        Reason(
            "assertion.bad_type",
            "client_assertion_type is missing or not the JWT bearer URN (RFC 7523)",
            "set client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        Reason(
            "assertion.alg_not_allowed",
            "alg is none, of the wrong family for the method, or not the registered one",
            "sign with an allowed algorithm: HS256/384/512 for client_secret_jwt, an asymmetric one "
            "(ES256, PS256, EdDSA, ...) for private_key_jwt, and the registered *_auth_signing_alg if any",
        ),
        Reason(
            "assertion.unknown_key",
            "no registered key matches the assertion's kid",
            "sign with a key registered in the client's jwks or jwks_uri, and put its kid in the header",
        ),
        Reason(
            "assertion.bad_signature",
            "the assertion's signature does not verify with the client's keys",
            "sign with the registered key (or the current client secret)",
        ),
        Reason(
            "assertion.bad_issuer",
            "iss and sub must both be the client_id",
            "set both iss and sub to the client_id",
        ),
        Reason(
            "assertion.bad_audience",
            "aud names neither the issuer nor this endpoint",
            "set aud to the issuer, or to the URL of the endpoint being called",
        ),
        Reason(
            "assertion.missing_exp",
            "the assertion has no (numeric) exp",
            "add a numeric exp claim",
        ),
        Reason(
            "assertion.expired",
            "the assertion has expired",
            "make a fresh assertion for each request (check the client's clock)",
        ),
        Reason(
            "assertion.too_long",
            "the assertion's exp is further ahead than assertion_max_lifetime",
            "give the assertion a short lifetime (exp a few minutes ahead at most)",
        ),
        Reason(
            "assertion.not_yet_valid",
            "the assertion's nbf is in the future",
            "do not set nbf in the future (check the client's clock)",
        ),
        Reason(
            "assertion.bad_iat",
            "the assertion's iat is not a number or lies in the future",
            "set iat to the current time as a number (check the client's clock)",
        ),
        Reason(
            "assertion.missing_jti",
            "the assertion has no jti",
            "add a unique jti to every assertion",
        ),
        Reason(
            "assertion.replayed",
            "an assertion with this jti was already used by this client",
            "make a new assertion with a new jti for every request; never resend one",
        ),
        # jwks_uri
        Reason(
            "jwks_uri.fetch_failed",
            "the client's jwks_uri could not be fetched, or was refused (see detail)",
            "make the client's jwks_uri reachable over HTTPS with a certificate the server trusts (system "
            "store or outbound_ca_bundle), answering 200 with a JWK Set; private and loopback addresses "
            "are refused unless outbound_allow_private is set or the issuer is on such an address",
        ),
        # not an authentication failure: the server could not decide (answered 500, fails closed)
        Reason(
            "internal.error",
            "an unexpected error happened while authenticating (the request was refused)",
            "this is not a refusal by rule: the server failed while deciding (the detail names the error); "
            "look at the server log around this event",
        ),
    ),
)

REQUESTS: Final = Section(
    "Requests to the token, introspection and revocation endpoints",
    "`OAuthError` `invalid_request` (400), before or after client authentication",
    (
        Reason(
            "request.content_type",
            "the body is not application/x-www-form-urlencoded",
            "send the parameters as an application/x-www-form-urlencoded body (RFC 6749 section 3.2)",
        ),
        Reason(
            "request.body_too_large",
            "the body is larger than the endpoint accepts (64 KiB)",
            "send only the parameters the endpoint needs; a client assertion with a long x5c chain is the "
            "usual culprit",
        ),
        Reason(
            "request.malformed_form",
            "the body is not a UTF-8 form, or has too many parameters",
            "encode the form as UTF-8, percent-encoded (RFC 6749 Appendix B), with at most 64 parameters",
        ),
        Reason(
            "request.nul",
            "a parameter name or value contains a NUL character",
            "remove the NUL (%00) characters from the request",
        ),
        Reason(
            "request.duplicate",
            "a parameter is given more than once (RFC 6749 section 3.2)",
            "send every parameter once (only resource may be repeated); the description names the parameter",
        ),
        Reason(
            "request.duplicate_authorization",
            "the request has more than one Authorization header",
            "send at most one Authorization header",
        ),
        Reason(
            "request.missing_token",
            "introspection or revocation without a token parameter",
            "send the token to introspect or revoke in the form parameter token",
        ),
    ),
)

GRANTS: Final = Section(
    "Grants and tokens",
    "`OAuthError` at the token and revocation endpoints (the description names the problem)",
    (
        Reason(
            "grant.missing",
            "the token request has no grant_type",
            "send grant_type in the form (client_credentials, or another of grant_types_supported)",
        ),
        Reason(
            "grant.unsupported",
            "this server does not implement the grant type asked for",
            "use one of the grant types the description lists (grant_types_supported in the metadata)",
        ),
        Reason(
            "grant.not_registered",
            "the client is not registered for the grant type it asked for",
            "add the grant type to the client's grant_types (registration or clients file), or ask for "
            "one it has",
        ),
        Reason(
            "scope.malformed",
            "the scope parameter is empty or holds a value that is not a scope token (RFC 6749 section 3.3)",
            "send scope as space-separated values of printable ASCII without quotes or backslashes, or "
            "leave it out to get the registered scope",
        ),
        Reason(
            "scope.not_registered",
            "the request asks for a scope value the client did not register (or the server does not offer)",
            "ask only for values in the client's registered scope, which must also be in the server's "
            "scope catalogue; the description names the refused values",
        ),
        Reason(
            "resource.several",
            "the request names more than one resource; a token has one audience here",
            "ask for one token per resource (RFC 8707)",
        ),
        Reason(
            "resource.malformed",
            "the resource is not an absolute URI, or has a fragment",
            "send resource as an absolute URI without a fragment (RFC 8707 section 2)",
        ),
        Reason(
            "resource.not_registered",
            "the resource is not one the client registered",
            "add the URI to the client's resources metadata, spelled exactly as the request sends it",
        ),
        Reason(
            "cert.missing_for_binding",
            "the tokens are certificate-bound (the client's, at the token endpoint; the access token's, "
            "at the gateway) and no client certificate was presented",
            "present the client certificate in the TLS handshake: at the token endpoint, at its "
            "mtls_endpoint_aliases URL (tls_client_certificate_bound_access_tokens is set for this "
            "client); at the gateway, the certificate the access token is bound to (behind a proxy, "
            "forwarded in its header from a trusted_proxies address)",
        ),
        Reason(
            "revocation.not_owner",
            "the token to revoke was issued to another client",
            "a client can revoke only its own tokens: revoke it as the client it was issued to",
        ),
    ),
)

REGISTRATION: Final = Section(
    "Client registration (RFC 7591, RFC 7592)",
    "`OAuthError` at the registration endpoints (the description names the problem)",
    (
        Reason(
            "registration.closed",
            "dynamic client registration is disabled (no initial access token is configured)",
            "set registration_token (or registration_token_file) on the server to open registration, or "
            "declare the client in the clients file",
        ),
        Reason(
            "registration.token_missing",
            "no Bearer token was sent (the initial or the registration access token)",
            "send 'Authorization: Bearer <token>': the initial access token to register, the client's "
            "registration access token to read, update or delete it",
        ),
        Reason(
            "registration.token_invalid",
            "the Bearer token is not the initial access token, or not this client's registration access "
            "token",
            "use the token the server's operator gave you, or the registration_access_token returned when "
            "the client was registered or last updated",
        ),
        Reason(
            "registration.unknown_client",
            "no registered client has this client_id (answered like a wrong token)",
            "check the registration_client_uri: the client may have been deleted",
        ),
        Reason(
            "registration.file_client",
            "the client is declared in the server's clients file, which the API cannot change",
            "change the clients file instead (it is loaded when the server starts)",
        ),
        Reason(
            "registration.id",
            "no free client_id could be allocated (the server answered 500)",
            "retry; if it persists, look at the server log: the store keeps refusing new clients",
        ),
        Reason(
            "registration.content_type",
            "the body is not sent as application/json",
            "send the client metadata as a JSON object with Content-Type: application/json",
        ),
        Reason(
            "registration.body_too_large",
            "the body is larger than the registration endpoint accepts (256 KiB)",
            "register fewer or smaller keys and certificates; publish a large JWK Set at a jwks_uri",
        ),
        Reason(
            "registration.duplicate_member",
            "the JSON body has a member more than once",
            "send every metadata member once",
        ),
        Reason(
            "registration.invalid_json",
            "the body is not valid JSON",
            "send valid JSON (UTF-8, no NaN or Infinity)",
        ),
        Reason(
            "registration.not_an_object",
            "the body is JSON but not an object",
            "send the client metadata as one JSON object",
        ),
        Reason(
            "metadata.<field>",
            "the named client metadata field is invalid, or contradicts another one",
            "fix the field the code names as the error_description says (docs/registration.md lists what "
            "each field accepts)",
        ),
    ),
)

PROXY: Final = Section(
    "Certificates forwarded by a proxy",
    "the `forwarded_cert_rejected` and `forwarded_cert_ignored` events; the request goes on without a "
    "certificate",
    (
        Reason(
            "proxy.malformed_header",
            "a trusted proxy's certificate header cannot be read (format, repeated, too large, too long a "
            "chain)",
            "check the proxy's configuration against forwarded_cert_header (docs/operations.md shows "
            "each format); the event's detail says what is wrong",
        ),
        Reason(
            "proxy.certificate_missing",
            "a trusted proxy says a certificate was presented but did not forward it",
            "make the proxy forward the certificate itself in the configured header, not only its verdict",
        ),
        Reason(
            "proxy.untrusted_peer",
            "certificate headers came from an address that is not in trusted_proxies; they were ignored",
            "add the proxy's own address to trusted_proxies, or stop clients from sending these headers "
            "(someone may be trying to pass off a certificate)",
        ),
    ),
)

REQUEST_LOG: Final = Section(
    "The request event",
    "the `request` event's reason when nothing more specific was noted during the request",
    (
        Reason(
            "request.cancelled",
            "the client went away before the answer was sent (logged as status 499)",
            "nothing on the server side, unless it is frequent: then look at client timeouts and at slow "
            "requests",
        ),
        Reason(
            "server.unhandled_error",
            "an exception escaped the application (the request got a 500)",
            "look at the server log for the traceback around this request",
        ),
        Reason(
            "store.unavailable",
            "the database could not be reached or did not answer in time (the request got 503 "
            "temporarily_unavailable with Retry-After)",
            "check that the database is up and reachable from every node (the warning 'store unavailable' "
            "names the driver's error); certbound reconnects by itself once it answers",
        ),
        Reason(
            "request.headers_too_large",
            "the request line and headers were larger than max_header_bytes, or more than "
            "max_header_count headers were sent (answered 431 and the connection closed); at the "
            "gateway's listener the limits are 64 KiB and 200 fields",
            "send fewer or smaller headers (large cookies, or many of them, are the usual cause); raise "
            "max_header_bytes or max_header_count only if a proxy in front legitimately adds that much; "
            "behind nginx, its own limits (large_client_header_buffers) apply first",
        ),
        Reason(
            "request.head_timeout",
            "the request line and headers did not arrive within header_timeout seconds of the "
            "handshake or of the request's first byte (answered 408, or just closed when no request "
            "began, and the connection closed)",
            "a slow or stalled client, or one holding connections open on purpose (slowloris); raise "
            "header_timeout only for clients on very slow links",
        ),
        Reason(
            "oauth.<error>",
            "an error answer whose JSON body's OAuth error is named, and no reason was noted",
            "read the error and its description in the answer (RFC 6749 section 5.2)",
        ),
        Reason(
            "http.<status>",
            "an error answer without an OAuth error body (an unknown path, a wrong HTTP method, ...)",
            "check the URL and the HTTP method against the server's metadata document",
        ),
    ),
)

JWT: Final = Section(
    "JWTs checked with certbound.jose",
    "`JwtError.reason` of the shared JWT checks (`certbound.jose`): the gateway's token validation and "
    "the login flows' ID-token checks report them; client assertions report their own `assertion.*` "
    "codes",
    (
        Reason(
            "jws.malformed",
            "not a compact JWS with a JSON object as payload, or a header member is wrong",
            "send the token exactly as the issuer made it (header.payload.signature, base64url, no "
            "padding); the detail names the part that is wrong",
        ),
        Reason(
            "jws.bad_type",
            "the header's typ is not the one this kind of token has",
            "use a token of the expected kind (an RFC 9068 access token has typ at+jwt)",
        ),
        Reason(
            "jws.alg_not_allowed",
            "alg is none or not one of the algorithms allowed here",
            "sign with one of the allowed asymmetric algorithms; none and HMAC are never accepted for "
            "tokens checked against public keys",
        ),
        Reason(
            "jws.unknown_key",
            "no key of the key source matches the header's kid and alg",
            "check that the token comes from the configured issuer and that its key is published in the "
            "issuer's JWKS (an unknown kid makes certbound refetch it, at most every refetch interval)",
        ),
        Reason(
            "jws.keys_unavailable",
            "the key source could not be read (a JWKS fetch failed): refused, fail closed",
            "make the issuer's jwks_uri reachable and trusted (CA bundle, address policy); the log says "
            "why the fetch failed",
        ),
        Reason(
            "jws.bad_signature",
            "the signature does not verify with the matching keys",
            "the token was altered or signed by someone else: obtain a new token from the issuer",
        ),
        Reason(
            "jwt.missing_claim", "a required claim is missing", "use a token the issuer made for this use"
        ),
        Reason("jwt.bad_claim", "a claim has the wrong type", "use a token the issuer made for this use"),
        Reason(
            "jwt.bad_issuer",
            "iss is not the expected issuer",
            "obtain the token from the configured issuer (compare iss with the issuer URL exactly)",
        ),
        Reason(
            "jwt.bad_audience",
            "aud does not name the expected audience, or names one that is not trusted",
            "ask the issuer for a token for this audience (resource indicator, RFC 8707)",
        ),
        Reason("jwt.expired", "exp has passed", "obtain a new token (and check the clocks)"),
        Reason(
            "jwt.not_yet_valid", "nbf lies in the future", "check the clocks of the issuer and of this host"
        ),
        Reason("jwt.bad_iat", "iat lies in the future", "check the clocks of the issuer and of this host"),
        Reason(
            "id_token.bad_azp",
            "azp is missing (several audiences) or is not the client_id",
            "the ID token was issued to another client: start the login again",
        ),
        Reason(
            "id_token.bad_nonce",
            "nonce is missing or not the one sent in the authentication request",
            "start the login again from the relying party (a replayed or injected response)",
        ),
        Reason(
            "id_token.auth_time_missing",
            "max_age was requested but auth_time is missing",
            "the OpenID provider must return auth_time when max_age is sent",
        ),
        Reason(
            "id_token.auth_too_old",
            "the end-user authenticated longer ago than max_age",
            "log in again (prompt=login) to refresh the authentication",
        ),
        Reason(
            "id_token.bad_at_hash",
            "at_hash does not match the access token",
            "the access token and the ID token do not belong together: start the login again",
        ),
        Reason(
            "id_token.bad_c_hash",
            "c_hash is missing or does not match the authorization code",
            "the code and the ID token do not belong together: start the login again",
        ),
        Reason(
            "cnf.malformed",
            "the cnf claim or its x5t#S256 member is not well-typed",
            "use a token the issuer made: cnf must be an object whose x5t#S256 is a base64url SHA-256",
        ),
        Reason(
            "cnf.unbound",
            "the token is not bound to a certificate, and binding is required",
            "obtain a certificate-bound token (the client registered with "
            "tls_client_certificate_bound_access_tokens, over mutual TLS)",
        ),
        Reason(
            "cnf.missing_certificate",
            "the token is bound to a certificate but none was presented",
            "present the certificate the token is bound to in the TLS handshake",
        ),
        Reason(
            "cnf.mismatch",
            "the presented certificate is not the one the token is bound to",
            "present the certificate the token was issued on (compare its x5t#S256 with the token's cnf)",
        ),
    ),
)

GATEWAY: Final = Section(
    "Gateway",
    "the `gateway_request` event and `certbound_gateway_requests_total`; on the wire RFC 6750 (401 "
    "and 403 with `WWW-Authenticate: Bearer`, 400 `invalid_request`) or a JSON 404, 502, 503 or 504. "
    "The gateway reports the JWT codes above too (`jws.*`, `jwt.*`, `cnf.*`: 401 `invalid_token`, "
    "`jwt.bad_audience`: 403 `insufficient_scope`) except where it has its own name for the meaning "
    "(`token.expired` for `jwt.expired`, `binding.mismatch` for `cnf.mismatch`, "
    "`cert.missing_for_binding` for `cnf.missing_certificate`, `idp.unavailable` for "
    "`jws.keys_unavailable`), the `cert.*` codes of a proof-of-possession certificate that does not "
    "chain to `client_ca`, `request.duplicate_authorization` and `internal.error`",
    (
        Reason(
            "route.unmatched",
            "no route's paths match the request path (or the route has no upstream)",
            "call a path under one of the gateway's [[routes]] paths (prefixes match whole path "
            "segments: /api matches /api and /api/x, not /apix)",
        ),
        Reason(
            "request.bad_path",
            "the path has a dot segment (. or .., also with ;parameters), an empty segment (//), a NUL, "
            "or is not an absolute path: the gateway and the upstream could read it differently",
            "send the normalized path (no /./, /../, /..;/ or //, also not percent-encoded)",
        ),
        Reason(
            "token.missing",
            "the request carries no access token (RFC 6750 section 3.1: 401 without an error code)",
            "send the access token as 'Authorization: Bearer <token>'",
        ),
        Reason(
            "token.malformed",
            "the Authorization header is not a well-formed Bearer credential (RFC 6750 section 2.1)",
            "send exactly 'Authorization: Bearer <token>', the token in base64url-like characters "
            "(RFC 6750 b64token), nothing after it",
        ),
        Reason(
            "token.inactive",
            "the identity provider's introspection says the token is not active (expired, revoked, "
            "unknown, issued by another provider) or not an access token",
            "obtain a new access token from the route's identity provider; the provider's own log says "
            "why it no longer considers the token active",
        ),
        Reason(
            "token.expired",
            "the access token's exp has passed (beyond the route's leeway), by its JWT or by the "
            "identity provider's introspection answer",
            "obtain a new access token (and check the clocks of the identity provider and the gateway)",
        ),
        Reason(
            "binding.mismatch",
            "the access token is bound (cnf.x5t#S256) to another certificate than the one the request "
            "came with",
            "present the certificate the token was issued on (compare its x5t#S256 with the token's "
            "cnf); behind a proxy, check that it forwards the client's own certificate",
        ),
        Reason(
            "scope.insufficient",
            "the token's scope meets none of the route's scopes_required alternatives",
            "ask the identity provider for a token with the scopes the route requires (the answer's "
            "description and docs/gateway.md say how scopes_required reads: space-separated values "
            "together, list items as alternatives)",
        ),
        Reason(
            "idp.unavailable",
            "the identity provider could not be reached (connection refused or reset, timeout): 503, "
            "the request was not passed on",
            "check that the provider is up and reachable from the gateway; the gateway tries again "
            "on the next request and picks it up when it is back",
        ),
        Reason(
            "idp.untrusted",
            "the identity provider's server certificate failed verification (502)",
            "give the gateway the CA of the provider's certificate in the IdP's ca_bundle (or fix the "
            "provider's certificate: its name must match the issuer's host)",
        ),
        Reason(
            "idp.refused",
            "the identity provider refused the gateway's own request (its client authentication, or "
            "its client certificate in the TLS handshake): 502",
            "register the gateway at the provider as the IdP's client_id with the configured "
            "client_auth (tls_client_auth: the subject of the gateway's certificate; the provider must "
            "trust its CA), and allow it to introspect",
        ),
        Reason(
            "idp.bad_response",
            "the identity provider answered something the gateway cannot use (not JSON, no boolean "
            "active, an HTTP error): 502",
            "look at the provider's log for the introspection request; the event's detail says what "
            "the answer was",
        ),
        Reason(
            "idp.metadata",
            "the identity provider's metadata (RFC 8414, then OpenID Connect discovery) is missing, "
            "names another issuer, or lacks an endpoint the route needs: 502",
            "set the IdP's issuer to exactly the provider's issuer URL (the metadata's issuer), and "
            "check that it publishes a jwks_uri (bearer) and an introspection_endpoint (introspection)",
        ),
        Reason(
            "upstream.unavailable",
            "the route's upstream could not be reached or broke the connection: 502",
            "check that the upstream is up at the route's upstream URL (and its certificate is "
            "trusted through upstream_ca_bundle for https)",
        ),
        Reason(
            "upstream.timeout",
            "the upstream did not answer within the route's upstream_read_timeout: 504",
            "make the upstream answer faster, or raise upstream_read_timeout for the route",
        ),
        Reason(
            "auth_request.untrusted_peer",
            "a decision was asked at the auth_request endpoint by an address outside trusted_proxies: 403",
            "add the proxy's address to [listener] trusted_proxies; only a trusted proxy may ask for "
            "decisions (it also forwards the client certificate)",
        ),
        Reason(
            "auth_request.missing_uri",
            "the auth_request subrequest carried no original URI header, so no route can be chosen: 400",
            "set 'proxy_set_header X-Original-URI $request_uri;' in nginx's auth location "
            "(deploy/nginx/gateway-auth-request.conf.template), or the header [auth_request] names",
        ),
    ),
)
GATEWAY_LOGIN: Final = Section(
    "Gateway logins and tokens obtained for callers",
    "the `gateway_request` event of a route with `authorization_code`, `session`, "
    "`client_credentials`, `password`, `userinfo` or `refresh_token`; on the wire a redirect to the "
    "identity provider's login, a JSON 400 or 403 for a login callback the gateway refuses, 401 "
    "with `WWW-Authenticate: Bearer` for credentials the identity provider refuses, 502 for an ID "
    "token that fails a check (with the `jws.*`, `jwt.*` and `id_token.*` codes above)",
    (
        Reason(
            "session.login_required",
            "a browser without a session (or whose session ended: its refresh was refused) was sent "
            "to the identity provider's login (302)",
            "nothing, for a browser: it logs in and comes back; a program calling this route sends a "
            "bearer token instead",
        ),
        Reason(
            "session.refresh_busy",
            "another gateway worker or host kept refreshing the session's tokens longer than the "
            "identity provider's timeout allows (it may have died mid-refresh): 503, the session is kept",
            "try again; the lease on the refresh runs out after the IdP's timeout plus 5 seconds",
        ),
        Reason(
            "session.login_busy",
            "more logins were begun on the route than login_starts_per_second allows in this worker "
            "(each writes a pending login to the session store): 503, nothing written",
            "try again in a moment; a flood of requests without a session cookie is what this stops, "
            "and a route with many real logins a second raises login_starts_per_second",
        ),
        Reason(
            "callback.no_login",
            "a login callback came without the login cookie of the browser that started the login (a "
            "callback opened in another browser, or cookies blocked): 400, nothing kept",
            "start the login again from the route in this browser, with cookies allowed for the "
            "gateway's host",
        ),
        Reason(
            "callback.state_mismatch",
            "the callback's state is not the one this browser's login sent (forged, or of another "
            "login): 400, the code never reaches the identity provider",
            "start the login again from the route; a link carrying someone else's state is an attack",
        ),
        Reason(
            "callback.state_unknown",
            "the login the cookie names is gone: completed already (a replayed callback), or expired "
            "after 10 minutes: 400, the code never reaches the identity provider and the session "
            "made by the first callback is not touched",
            "go to the route again (the session of the completed login is already there)",
        ),
        Reason(
            "callback.idp_error",
            "the identity provider sent the browser back with an error (access_denied, "
            "login_required, ...): 403",
            "see the event's detail for the provider's error; the user may have refused the consent",
        ),
        Reason(
            "callback.no_code",
            "the callback carries neither a code nor an error: 400",
            "the identity provider must return the code in the query (response_mode query)",
        ),
        Reason(
            "callback.code_refused",
            "the identity provider's token endpoint refused the login's code (invalid_grant: used, "
            "expired, or issued to another client or redirect_uri): 403",
            "start the login again; check that redirect_uri is registered exactly for the gateway's "
            "client at the provider",
        ),
        Reason(
            "credentials.malformed",
            "client_credentials or password credentials that cannot be read: a Basic header that is not "
            "Base64 of 'id:secret' (RFC 6749 section 2.3.1), or a form body too long or cut short: 400",
            "send 'Authorization: Basic base64(urlencode(id):urlencode(secret))', or the form fields "
            "client_id and client_secret (username and password)",
        ),
        Reason(
            "credentials.refused",
            "the identity provider refused the caller's client credentials, username and password, or "
            "refresh token (invalid_client, invalid_grant, ...): 401",
            "check the credentials at the identity provider; the event's detail has its error",
        ),
        Reason(
            "userinfo.refused",
            "the identity provider's userinfo endpoint refused the bearer token (a route with the "
            "userinfo auth method), or answered without a subject: 401",
            "obtain a new token; a token bound to the caller's certificate cannot be checked by "
            "userinfo through the gateway (use bearer or introspection for those)",
        ),
        Reason(
            "callback.no_id_token",
            "the token endpoint answered the code without an ID token: 502",
            "ask for the openid scope (scopes) and register the gateway's client for OpenID Connect",
        ),
    ),
)


LOGIN: Final = Section(
    "Logins, authorization, codes, refresh tokens, userinfo and logout",
    "the `login` event (login.*); the login, consent and logout pages and their error page; "
    "`OAuthError` at /authorize (a redirect with error and state, or the HTML error page), /par, the "
    "token endpoint (`invalid_grant` for code.*, pkce.* and refresh.*) and /userinfo (RFC 6750)",
    (
        Reason(
            "login.unknown_user",
            "no user has the name typed at the login page",
            "check the username; 'certbound users list' shows who can log in (the page says only 'wrong "
            "username or password')",
        ),
        Reason(
            "login.bad_password",
            "the password typed at the login page is not the user's",
            "type the user's password, or set a new one with 'certbound users passwd'",
        ),
        Reason(
            "login.disabled",
            "the user is disabled",
            "enable the user with 'certbound users enable' if they should log in again",
        ),
        Reason(
            "login.locked",
            "too many failed logins for this username or from this address: locked for a while",
            "wait for the lock-out to end (the page says how long); it doubles with each further failure, up"
            " to an hour (login_max_failures, login_max_address_failures, login_lockout)",
        ),
        Reason(
            "login.csrf",
            "a login, consent or logout form came without the hidden token of this browser's session, or "
            "with another one",
            "submit the form from the page the server sent, in the same browser, without blocking cookies; a"
            " form left open after the session ended must be reloaded",
        ),
        Reason(
            "login.expired",
            "the login session or the authorization request it carried is gone (expired, logged out, another"
            " browser)",
            "go back to the application and start the login again",
        ),
        Reason(
            "authorize.client_id",
            "/authorize without a client_id, or with one no client has: an error page, never a redirect",
            "send the client_id of a registered client",
        ),
        Reason(
            "authorize.redirect_uri",
            "/authorize without a redirect_uri, or with one the client did not register exactly: an error "
            "page, never a redirect",
            "send one of the client's registered redirect_uris, character for character",
        ),
        Reason(
            "authorize.duplicate",
            "a parameter of the authorization request was given more than once",
            "send each parameter once (RFC 6749 section 3.1)",
        ),
        Reason(
            "authorize.malformed",
            "an authorization request parameter is malformed (too long, a NUL, ...)",
            "the description names the parameter; send it well-formed",
        ),
        Reason(
            "authorize.response_type",
            "response_type is missing or not code",
            "send response_type=code (the only response type offered)",
        ),
        Reason(
            "authorize.unauthorized_client",
            "the client is not registered for the authorization code flow",
            "register grant_types authorization_code and response_types code for the client",
        ),
        Reason(
            "authorize.pkce_required",
            "no code_challenge, and the client is public or require_pkce is on",
            "send code_challenge (S256 of a fresh code_verifier) and code_challenge_method=S256 (RFC 7636)",
        ),
        Reason(
            "authorize.pkce_method",
            "code_challenge_method is missing, plain, or unknown: only S256 is accepted",
            "send code_challenge_method=S256 with the base64url SHA-256 of the code_verifier",
        ),
        Reason(
            "authorize.pkce_malformed",
            "code_challenge is not 43 base64url characters (an S256 challenge)",
            "send the base64url (unpadded) SHA-256 of the code_verifier",
        ),
        Reason(
            "authorize.prompt",
            "prompt holds an unknown value, or none together with another one",
            "send prompt as none, login or consent (none alone)",
        ),
        Reason(
            "authorize.max_age",
            "max_age is not a non-negative integer",
            "send max_age as whole seconds",
        ),
        Reason(
            "authorize.response_mode",
            "a response_mode other than query was asked for",
            "leave response_mode out, or send query",
        ),
        Reason(
            "authorize.request_object",
            "a request object (the request parameter) was sent: not supported",
            "send the parameters themselves, or push them to the pushed_authorization_request_endpoint",
        ),
        Reason(
            "authorize.par_required",
            "the client (require_pushed_authorization_requests) or the server requires pushed authorization "
            "requests",
            "push the request to /par first and send only client_id and request_uri to /authorize (RFC 9126)",
        ),
        Reason(
            "authorize.request_uri",
            "request_uri is unknown, expired (60 s), used already, or another client's",
            "push the request again and use the new request_uri at once, once",
        ),
        Reason(
            "authorize.login_required",
            "prompt=none, but nobody is logged in (or max_age asks for a fresh login)",
            "send the user through the login without prompt=none",
        ),
        Reason(
            "authorize.consent_required",
            "prompt=none, but the user has not approved these scopes for this client",
            "send the user through the consent page without prompt=none",
        ),
        Reason(
            "authorize.access_denied",
            "the user declined at the consent page",
            "nothing to fix: the user said no",
        ),
        Reason(
            "code.missing",
            "the authorization_code request has no code (or no redirect_uri)",
            "send the code from the authorization response and the same redirect_uri",
        ),
        Reason(
            "code.unknown",
            "the code is not one this server issued",
            "send the code exactly as received in the authorization response",
        ),
        Reason(
            "code.expired",
            "the code is older than 60 seconds",
            "exchange the code as soon as it arrives",
        ),
        Reason(
            "code.replayed",
            "the code was used before: what its first use issued has been revoked",
            "never send a code twice; a replay may mean the code leaked (RFC 6749 section 4.1.2)",
        ),
        Reason(
            "code.client_mismatch",
            "the code was issued to another client",
            "exchange a code with the client it was issued to",
        ),
        Reason(
            "code.redirect_uri_mismatch",
            "redirect_uri is not the one of the authorization request",
            "send the same redirect_uri as in the authorization request",
        ),
        Reason(
            "code.user_gone",
            "the user who logged in was disabled or deleted since",
            "nothing the client can fix: the user may no longer log in",
        ),
        Reason(
            "pkce.missing_verifier",
            "the code was issued with a code_challenge, but no code_verifier was sent",
            "send the code_verifier whose S256 was the code_challenge",
        ),
        Reason(
            "pkce.mismatch",
            "the code_verifier does not hash to the code_challenge",
            "send the code_verifier of this authorization request (RFC 7636 section 4.6)",
        ),
        Reason(
            "pkce.unexpected_verifier",
            "a code_verifier was sent for a code issued without a code_challenge",
            "send code_challenge at /authorize, or no code_verifier",
        ),
        Reason(
            "refresh.missing",
            "the refresh_token request has no refresh_token",
            "send the refresh token from the last token response",
        ),
        Reason(
            "refresh.unknown",
            "the refresh token is not one this server issued",
            "send the refresh token exactly as received",
        ),
        Reason(
            "refresh.client_mismatch",
            "the refresh token was issued to another client",
            "a client refreshes only its own tokens, authenticated as itself",
        ),
        Reason(
            "refresh.revoked",
            "the refresh token's grant was revoked (revocation, reuse, a code replay, the user disabled) or "
            "has expired",
            "send the user through the login again",
        ),
        Reason(
            "refresh.reused",
            "a refresh token that was already exchanged was sent again: its whole family is revoked",
            "always use the refresh token of the last response; a reuse may mean a token leaked (RFC 9700 "
            "section 4.14)",
        ),
        Reason(
            "refresh.certificate_missing",
            "the refresh token is bound to a certificate (RFC 8705 section 4) and none was presented",
            "present the certificate of the code exchange, at the mtls_endpoint_aliases token endpoint",
        ),
        Reason(
            "refresh.certificate_mismatch",
            "the refresh token is bound to another certificate than the one presented",
            "present the certificate of the code exchange",
        ),
        Reason(
            "refresh.certificate_revoked",
            "the refresh token is bound to a certificate known to be revoked",
            "nothing the client can fix with this token: start a new authorization with a valid certificate",
        ),
        Reason(
            "userinfo.missing_token",
            "no Bearer access token was sent to /userinfo",
            "send 'Authorization: Bearer <access token>'",
        ),
        Reason(
            "userinfo.invalid_token",
            "the access token is not an active token of this server, or its user is gone",
            "obtain a new access token",
        ),
        Reason(
            "userinfo.insufficient_scope",
            "the access token was not granted openid",
            "ask for the openid scope in the authorization request",
        ),
        Reason(
            "userinfo.certificate",
            "the access token is bound to a certificate (cnf.x5t#S256) that was not presented",
            "call /userinfo at its mtls_endpoint_aliases URL with the certificate the token is bound to",
        ),
        Reason(
            "logout.post_logout_redirect_uri",
            "post_logout_redirect_uri is not one the client registered, or no client could be told from the "
            "request",
            "register it in post_logout_redirect_uris and send client_id or id_token_hint with it",
        ),
        Reason(
            "logout.id_token_hint",
            "id_token_hint is not an ID token this server signed, or names another client than client_id",
            "send an ID token this server issued to the client",
        ),
    ),
)


#: Every section, in the order docs/reason-codes.md shows them.
SECTIONS: Final[tuple[Section, ...]] = (
    CLIENT_AUTH,
    REQUESTS,
    GRANTS,
    LOGIN,
    REGISTRATION,
    PROXY,
    REQUEST_LOG,
    JWT,
    GATEWAY,
    GATEWAY_LOGIN,
)


def _index() -> tuple[dict[str, Reason], dict[str, Reason]]:
    codes: dict[str, Reason] = {}
    families: dict[str, Reason] = {}
    for section in SECTIONS:
        for reason in section.reasons:
            if reason.code in codes:
                raise ValueError(f"reason code {reason.code!r} is catalogued twice")
            codes[reason.code] = reason
            if reason.is_family:
                families[reason.code.partition(".")[0]] = reason
    return codes, families


_CODES, _FAMILIES = _index()

#: Every entry by its code (families by their written form, ``metadata.<field>``).
CATALOGUE: Final[Mapping[str, Reason]] = MappingProxyType(_CODES)
MEANINGS: Final[Mapping[str, str]] = MappingProxyType({c: r.meaning for c, r in _CODES.items()})
ADVICE: Final[Mapping[str, str]] = MappingProxyType({c: r.advice for c, r in _CODES.items()})


def lookup(code: str) -> Reason | None:
    """The entry for `code`: its own, or its family's (``metadata.jwks`` -> ``metadata.<field>``)."""
    found = _CODES.get(code)
    if found is not None and not found.is_family:
        return found
    area, dot, name = code.partition(".")
    return _FAMILIES.get(area) if dot and name else None


def is_known(code: str) -> bool:
    """True when `code` is catalogued (the check :class:`~certbound.errors.OAuthError` makes)."""
    return lookup(code) is not None
