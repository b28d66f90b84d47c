"""The registry: find the client, then run exactly the method it registered for this endpoint.

RFC 6749 sections 2.3 and 5.2, RFC 7521/7523, RFC 8705 section 2. In order:

1. What the request carries: an ``Authorization: Basic`` header, a form ``client_secret``, a
   ``client_assertion`` (with its type). A certificate on the connection is *not* a mechanism: it may
   be there only to bind tokens. A non-Basic Authorization header is not client authentication
   and is ignored. More than one mechanism: ``request.multiple_mechanisms``.
2. Who it claims to be: Basic's client_id, or the assertion's ``sub`` (parsed unverified), or the
   form's client_id; a form client_id must agree with the other one (``request.client_id_mismatch``).
   The mTLS methods and ``none`` carry nothing else, so they need client_id in the form.
3. The client, from the in-process :class:`~certbound.server.clientauth.directory.ClientDirectory`.
4. The mechanism must be the one of the method the client registered for this endpoint
   (``introspection_endpoint_auth_method`` / ``revocation_endpoint_auth_method``, defaulting to the
   token endpoint's), else ``client.method_mismatch``; then that method alone decides.

Every failure is the same ``invalid_client`` on the wire: 401, one generic description, and
``WWW-Authenticate: Basic realm="certbound"`` (Basic is the only HTTP authentication scheme among the
methods, so it is the challenge we can honestly make, and sending it on every 401 keeps an unknown
client and a wrong credential indistinguishable). :meth:`ClientAuthenticator.decide` gives the whole
decision as a value (:mod:`certbound.server.clientauth.decision`); ``authenticate`` records it as one
log event (:mod:`certbound.server.clientauth.events`) and answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cryptography import x509

from certbound.certstatus import RevocationChecker
from certbound.errors import OAuthError
from certbound.pki.chain import ChainVerifier
from certbound.reasons import OK
from certbound.sealing import Sealer
from certbound.server.clientauth import events
from certbound.server.clientauth.assertion import AssertionChecker, UnverifiedAssertion, peek
from certbound.server.clientauth.client_secret_basic import ClientSecretBasic, parse_basic
from certbound.server.clientauth.client_secret_jwt import ClientSecretJwt
from certbound.server.clientauth.client_secret_post import ClientSecretPost
from certbound.server.clientauth.context import Method, MethodContext, Presented
from certbound.server.clientauth.decision import Decision, Outcome
from certbound.server.clientauth.directory import ClientDirectory, CompiledClient
from certbound.server.clientauth.failure import AuthFailure
from certbound.server.clientauth.jwks_fetcher import JwksFetcher
from certbound.server.clientauth.none import NoneMethod
from certbound.server.clientauth.private_key_jwt import PrivateKeyJwt
from certbound.server.clientauth.revocation import RevocationGate, revocation_checker
from certbound.server.clientauth.self_signed_tls_client_auth import SelfSignedTlsClientAuth
from certbound.server.clientauth.tls_client_auth import CertificateObserver, TlsClientAuth
from certbound.server.clientauth.types import Authenticated, AuthRequest
from certbound.store.generation import GenerationWatcher
from certbound.store.interface import Store
from certbound.tls.chain_verdicts import VerdictCache

if TYPE_CHECKING:
    from certbound.config import Settings

__all__ = ["EXPECTED_MECHANISMS", "ClientAuthenticator", "build_client_authenticator", "load_client_cas"]

DESCRIPTION: Final = "client authentication failed"

#: The mechanisms each method's request carries (exactly these; a certificate is never counted).
EXPECTED_MECHANISMS: Final[dict[str, tuple[str, ...]]] = {
    "none": (),
    "client_secret_basic": ("basic",),
    "client_secret_post": ("client_secret",),
    "client_secret_jwt": ("client_assertion",),
    "private_key_jwt": ("client_assertion",),
    "tls_client_auth": (),
    "self_signed_tls_client_auth": (),
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _value(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


def inspect_request(req: AuthRequest) -> Presented:
    """What the request presents (no decision yet: decoding errors are kept for the registry)."""
    mechanisms: list[str] = []
    basic: tuple[str, str] | None = None
    basic_error: AuthFailure | None = None
    if req.authorization:
        scheme, _, credentials = req.authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            mechanisms.append("basic")
            try:
                basic = parse_basic(credentials)
            except AuthFailure as exc:
                basic_error = exc
    form_secret = _value(req.form, "client_secret")
    if form_secret is not None:
        mechanisms.append("client_secret")
    assertion = _value(req.form, "client_assertion")
    assertion_type = _value(req.form, "client_assertion_type")
    parsed: UnverifiedAssertion | None = None
    assertion_error: AuthFailure | None = None
    if assertion is not None or assertion_type is not None:
        mechanisms.append("client_assertion")
        if assertion is None:
            assertion_error = AuthFailure(
                "assertion.malformed", "client_assertion_type without client_assertion"
            )
        else:
            try:
                parsed = peek(assertion)
            except AuthFailure as exc:
                assertion_error = exc
    return Presented(
        mechanisms=tuple(mechanisms),
        form_client_id=_value(req.form, "client_id"),
        basic=basic,
        basic_error=basic_error,
        form_secret=form_secret,
        assertion=assertion,
        assertion_type=assertion_type,
        certificate=req.certificate,
        assertion_parsed=parsed,
        assertion_error=assertion_error,
    )


def _claimed_client_id(presented: Presented) -> str | None:
    """The client the request names, for the checks below and the log (never trusted as such)."""
    if presented.basic is not None:
        return presented.basic[0]
    if presented.assertion_parsed is not None:
        claimed = presented.assertion_parsed.claimed_client_id()
        if claimed is not None:
            return claimed
    return presented.form_client_id


def _check_request(presented: Presented) -> str:
    """The request-level rules; returns the client_id to look up."""
    if presented.basic_error is not None:
        raise presented.basic_error
    if len(presented.mechanisms) > 1:
        raise AuthFailure("request.multiple_mechanisms", " and ".join(presented.mechanisms))
    form_id = presented.form_client_id
    if presented.basic is not None and form_id is not None and form_id != presented.basic[0]:
        raise AuthFailure("request.client_id_mismatch", "the form's client_id is not the one in Basic")
    if presented.assertion_parsed is not None:
        claimed = presented.assertion_parsed.claimed_client_id()
        if claimed is not None and form_id is not None and claimed != form_id:
            raise AuthFailure("request.client_id_mismatch", "the form's client_id is not the assertion's sub")
    client_id = _claimed_client_id(presented)
    if client_id is None:
        if presented.assertion_error is not None:
            raise presented.assertion_error
        raise AuthFailure("request.client_id_missing")
    return client_id


class ClientAuthenticator:
    """Authenticates clients at the token, introspection and revocation endpoints (one per worker)."""

    def __init__(
        self,
        store: Store,
        directory: ClientDirectory,
        chain_verifier: ChainVerifier | None,
        jwks_fetcher: JwksFetcher,
        *,
        assertion_max_lifetime: int = 300,
        clock_skew: int = 30,
        clock: Callable[[], datetime] = _utcnow,
        verdict_cache: VerdictCache | None = None,
        revocation: RevocationChecker | None = None,
        realm: str = "certbound",
    ) -> None:
        self._directory = directory
        self._fetcher = jwks_fetcher
        self._clock = clock
        self.verdicts = verdict_cache if verdict_cache is not None else VerdictCache(chain_verifier)
        self.revocation = revocation
        checker = AssertionChecker(store, max_lifetime=assertion_max_lifetime, clock_skew=clock_skew)
        self._revocation_gate = RevocationGate(revocation) if revocation is not None else None
        self._tls_client_auth = TlsClientAuth(self.verdicts, self._revocation_gate)
        methods: list[Method] = [
            NoneMethod(),
            ClientSecretBasic(),
            ClientSecretPost(),
            ClientSecretJwt(checker),
            PrivateKeyJwt(checker, jwks_fetcher),
            self._tls_client_auth,
            SelfSignedTlsClientAuth(jwks_fetcher),
        ]
        self._methods: dict[str, Method] = {m.name: m for m in methods}
        self._headers = {"WWW-Authenticate": f'Basic realm="{realm}"'}

    @property
    def directory(self) -> ClientDirectory:
        return self._directory

    def observe_certificates(self, observer: CertificateObserver) -> None:
        """Tell `observer` of every chain ``tls_client_auth`` accepts (see `CertificateObserver`)."""
        self._tls_client_auth.observer = observer

    def deny_revoked(self, known_revoked: Callable[[str], bool]) -> None:
        """Refuse a leaf `known_revoked` names (by x5t#S256: revocations other workers and nodes
        learned), even while this worker's own answer about it is still good."""
        if self._revocation_gate is not None:
            self._revocation_gate.known_revoked = known_revoked

    @property
    def methods(self) -> tuple[str, ...]:
        """The names of the methods this authenticator implements (what metadata advertises)."""
        return tuple(self._methods)

    async def aclose(self) -> None:
        """Release the outbound HTTP clients (jwks_uri fetching; revocation checking and its refreshes)."""
        await self._fetcher.aclose()
        if self.revocation is not None:
            await self.revocation.aclose()

    def invalid_client(self, reason: str) -> OAuthError:
        """The wire error for any failure: identical whatever the reason (which only the log gets)."""
        return OAuthError(
            "invalid_client", DESCRIPTION, status=401, reason=reason, headers=dict(self._headers)
        )

    async def decide(self, req: AuthRequest) -> Decision:
        """The whole decision about `req`, as a value; no event, no counter, no exception (an unexpected
        error becomes an ``error`` outcome holding it)."""
        presented = inspect_request(req)
        client_id = _claimed_client_id(presented)
        compiled: CompiledClient | None = None
        method: str | None = None
        try:
            client_id = _check_request(presented)
            compiled = await self._directory.get(client_id)
            if compiled is None:
                raise AuthFailure("client.unknown")
            method = compiled.method_for(req.endpoint)
            if presented.mechanisms != EXPECTED_MECHANISMS.get(method):
                raise AuthFailure(
                    "client.method_mismatch",
                    f"registered {method} for the {req.endpoint} endpoint, presented {presented.describe()}",
                )
            handler = self._methods.get(method)
            if handler is None:
                raise AuthFailure("client.misconfigured", f"unsupported method {method[:40]!r}")
            await handler.verify(MethodContext(req, presented, compiled, req.endpoint, self._clock()))
        except AuthFailure as failure:
            outcome: Outcome = "failure"
            reason, detail, error, fields = failure.reason, failure.detail, None, failure.fields
        except Exception as exc:  # the server could not decide: refused (500), and said so in the log
            outcome, reason, detail, error, fields = "error", "internal.error", type(exc).__name__, exc, None
        else:
            outcome, reason, detail, error, fields = "success", OK, "", None, None
        # positional, in Decision's field order: cheaper to build, and this runs on every request
        return Decision(
            req.endpoint,
            outcome,
            reason,
            detail,
            client_id,
            method,
            presented.describe(),
            req.certificate,
            compiled,
            error,
            fields,
        )

    async def authenticate(self, req: AuthRequest) -> Authenticated:
        """Authenticate the client of `req`: decide, record the decision (one event, one count), then
        answer. Raises OAuthError(invalid_client, 401) on a failure, the error itself on an error."""
        decision = await self.decide(req)
        events.record_decision(decision)
        client, method = decision.client, decision.method
        if decision.outcome == "success" and client is not None and method is not None:
            return Authenticated(client=client.model, method=method, certificate=req.certificate)
        if decision.error is not None:
            raise decision.error
        raise self.invalid_client(decision.reason)


def load_client_cas(path: str | Path | None) -> ChainVerifier | None:
    """A ChainVerifier over the PEM bundle at `path` (None: no CA is trusted for tls_client_auth)."""
    if path is None:
        return None
    certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    return ChainVerifier(certs) if certs else None


def build_client_authenticator(
    settings: Settings, store: Store, sealer: Sealer | None, watcher: GenerationWatcher
) -> ClientAuthenticator:
    """Everything one worker needs, from the settings; call once per worker after `watcher.start()`.

    `certbound explain` builds its authenticator here too, so that it decides as the server does
    (with `sealer` None when no key-encryption key exists: sealed secrets then stay closed). The
    revocation checker's background refreshes are not started here: the server starts them
    (``authenticator.revocation.start()``), a one-off check needs none."""
    verifier = load_client_cas(settings.client_ca)
    anchors = verifier.trust_anchors if verifier is not None else ()
    return ClientAuthenticator(
        store,
        ClientDirectory(store, watcher, sealer),
        verifier,
        JwksFetcher.from_settings(settings),
        assertion_max_lifetime=settings.assertion_max_lifetime,
        clock_skew=settings.clock_skew,
        revocation=revocation_checker(settings, anchors),
    )
