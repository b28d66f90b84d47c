"""An authorization request, parsed and checked (RFC 6749 section 4.1.1, RFC 7636, OpenID Connect Core
section 3.1.2.1, RFC 9126 ``request_uri``, RFC 8707 ``resource``).

The order matters, because it decides who learns of an error. A missing or unknown ``client_id`` and
a ``redirect_uri`` the client did not register exactly are told to the person at the browser (an
error page, status 400), never by a redirect: redirecting there would make the server an open
redirector. Every other problem goes back to the client's redirect URI with ``error``, ``state`` and
``iss`` (RFC 6749 section 4.1.2.1, RFC 9207).

Rules: ``response_type=code`` only; ``redirect_uri`` required (OpenID Connect requires it; one rule
for every client) and compared exactly, but for the port of a loopback http one (RFC 8252 section
7.3); PKCE with S256 required of public clients and, with the ``require_pkce`` setting (the default),
of every client; ``plain`` refused; ``prompt`` one of ``none``, ``login``, ``consent`` (``none``
alone); ``response_mode`` query only; request objects not supported. ``scope``: the registered
scope, plus the OpenID scopes any code-flow client may ask for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from certbound.errors import OAuthError
from certbound.server.authorization.pkce import CHALLENGE
from certbound.server.authorization.redirects import redirect_uri_registered
from certbound.server.clients.model import ClientModel
from certbound.server.grants.resource import audience_for
from certbound.server.grants.scope import granted_login_scope

__all__ = [
    "MAX_PARAMETER_LENGTH",
    "PROMPTS",
    "AuthorizationError",
    "AuthorizationRequest",
    "ClientModels",
    "RequestChecker",
]

#: Longer parameter values are refused (``invalid_request``): nothing here needs more.
MAX_PARAMETER_LENGTH = 2048
MAX_PARAMETERS = 64
PROMPTS = frozenset({"none", "login", "consent"})
_PAGE_PARAMETERS = ("client_id", "redirect_uri")

ClientModels = Callable[[str], Awaitable[ClientModel | None]]


class PushedRequests(Protocol):
    async def take(self, request_uri: str, client: ClientModel) -> dict[str, str] | None:
        """The parameters pushed as `request_uri` by `client`, once; None when there are none."""
        ...


@dataclass(eq=False)
class AuthorizationError(Exception):
    """A refused authorization request. `redirect_uri` None: shown on the error page (status 400);
    otherwise sent back to the client there, with `state`."""

    error: OAuthError
    redirect_uri: str | None = None
    state: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    """What the client asked for, checked. `audience` is the access token's (resource or default);
    `pushed` says it came by reference from /par."""

    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    audience: str
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    pushed: bool = False

    @property
    def openid(self) -> bool:
        return "openid" in self.scope

    def as_data(self) -> dict[str, Any]:
        """A JSON object to keep in the login session until the request is answered."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        values = dict(data)
        values["scope"] = tuple(values.get("scope", ()))
        values["prompt"] = tuple(values.get("prompt", ()))
        return cls(**values)


def _page_error(description: str, reason: str) -> AuthorizationError:
    return AuthorizationError(OAuthError("invalid_request", description, reason=reason))


class RequestChecker:
    """Parses and checks authorization requests (one per worker)."""

    def __init__(
        self,
        clients: ClientModels,
        pushed: PushedRequests,
        *,
        require_pkce: bool,
        require_pushed: bool,
        catalogue: frozenset[str] | None,
        default_audience: str,
    ) -> None:
        self.clients = clients
        self._pushed = pushed
        self._require_pkce = require_pkce
        self._require_pushed = require_pushed
        self._catalogue = catalogue
        self._default_audience = default_audience

    async def parse(self, pairs: Iterable[tuple[str, str]]) -> tuple[AuthorizationRequest, ClientModel]:
        """The request sent to /authorize (query or form pairs); raises `AuthorizationError`."""
        params, duplicates = _collect(pairs)
        for name in _PAGE_PARAMETERS:
            if name in duplicates:
                raise _page_error(f"{name} is given more than once", "authorize.duplicate")
        client_id = params.get("client_id")
        if client_id is None:
            raise _page_error("client_id is required", "authorize.client_id")
        client = await self.clients(client_id)
        if client is None:
            raise _page_error("no client is registered with this client_id", "authorize.client_id")
        request_uri = params.get("request_uri")
        if request_uri is not None:
            pushed = await self._pushed.take(request_uri, client)
            if pushed is None:
                raise AuthorizationError(
                    OAuthError(
                        "invalid_request_uri",
                        "request_uri is unknown, expired, used already or not this client's; push the "
                        "request again",
                        reason="authorize.request_uri",
                    )
                )
            return self.check(pushed, client, pushed=True), client
        return self.check(params, client, duplicates=duplicates), client

    def check(
        self,
        params: Mapping[str, str],
        client: ClientModel,
        *,
        pushed: bool = False,
        duplicates: Iterable[str] = (),
    ) -> AuthorizationRequest:
        """Check `params` for `client` (the client_id is already known to be `client`'s)."""
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            raise _page_error("redirect_uri is required", "authorize.redirect_uri")
        if not redirect_uri_registered(client.redirect_uris, redirect_uri):
            raise _page_error(
                "redirect_uri is not one of the redirect URIs this client registered",
                "authorize.redirect_uri",
            )
        state = params.get("state")

        def refuse(error: str, description: str, reason: str) -> AuthorizationError:
            return AuthorizationError(OAuthError(error, description, reason=reason), redirect_uri, state)

        duplicated = sorted(duplicates)
        if duplicated:
            raise refuse(
                "invalid_request", f"{', '.join(duplicated)}: given more than once", "authorize.duplicate"
            )
        if params.get("client_id", client.client_id) != client.client_id:
            raise refuse(
                "invalid_request", "client_id differs from the pushed request's", "authorize.client_id"
            )
        for name, value in params.items():
            if len(value) > MAX_PARAMETER_LENGTH or "\x00" in value:
                raise refuse("invalid_request", f"{name}: too long, or holds a NUL", "authorize.malformed")
        if "request" in params:
            raise refuse(
                "request_not_supported", "request objects are not supported", "authorize.request_object"
            )
        if "request_uri" in params:
            raise refuse("invalid_request", "request_uri must not be pushed", "authorize.request_uri")
        if not pushed and (self._require_pushed or client.require_pushed_authorization_requests):
            raise refuse(
                "invalid_request",
                "authorization requests must be pushed to the pushed_authorization_request_endpoint first",
                "authorize.par_required",
            )
        response_type = params.get("response_type")
        if response_type is None:
            raise refuse("invalid_request", "response_type is required", "authorize.response_type")
        if response_type != "code":
            raise refuse(
                "unsupported_response_type", "only response_type=code is supported", "authorize.response_type"
            )
        if "authorization_code" not in client.grant_types or "code" not in client.response_types:
            raise refuse(
                "unauthorized_client",
                "this client is not registered for the authorization code flow",
                "authorize.unauthorized_client",
            )
        if params.get("response_mode", "query") != "query":
            raise refuse(
                "invalid_request", "only response_mode=query is supported", "authorize.response_mode"
            )
        try:
            scope = granted_login_scope(client, params.get("scope"), self._catalogue)
            audience = audience_for(client, _resources(params), self._default_audience)
        except OAuthError as error:
            raise AuthorizationError(error, redirect_uri, state) from None
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is None:
            if client.is_public or self._require_pkce:
                raise refuse(
                    "invalid_request",
                    "code_challenge is required (PKCE, RFC 7636, with code_challenge_method=S256)",
                    "authorize.pkce_required",
                )
            if method is not None:
                raise refuse(
                    "invalid_request", "code_challenge_method without code_challenge", "authorize.pkce_method"
                )
        else:
            if method != "S256":
                raise refuse(
                    "invalid_request",
                    "code_challenge_method must be S256 (plain is refused)",
                    "authorize.pkce_method",
                )
            if not CHALLENGE.fullmatch(challenge):
                raise refuse(
                    "invalid_request", "code_challenge is not an S256 challenge", "authorize.pkce_malformed"
                )
        prompt = tuple(dict.fromkeys(params.get("prompt", "").split()))
        if not set(prompt) <= PROMPTS or ("none" in prompt and len(prompt) > 1):
            raise refuse("invalid_request", "prompt: none, login or consent (none alone)", "authorize.prompt")
        max_age = params.get("max_age")
        if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 9):
            raise refuse("invalid_request", "max_age must be a non-negative integer", "authorize.max_age")
        return AuthorizationRequest(
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            audience=audience,
            state=state,
            nonce=params.get("nonce"),
            code_challenge=challenge,
            prompt=prompt,
            max_age=None if max_age is None else int(max_age),
            login_hint=params.get("login_hint"),
            pushed=pushed,
        )


def _collect(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], set[str]]:
    """The parameters given once (empty values count as absent) and the names given more than once;
    ``resource`` may repeat (RFC 8707), its values joined by spaces here and split again by `_resources`."""
    params: dict[str, str] = {}
    duplicates: set[str] = set()
    count = 0
    for name, value in pairs:
        count += 1
        if count > MAX_PARAMETERS:
            raise _page_error(f"more than {MAX_PARAMETERS} parameters", "authorize.malformed")
        if not value:
            continue
        if name == "resource" and name in params:
            params[name] += " " + value
        elif name in params:
            duplicates.add(name)
        else:
            params[name] = value
    return params, duplicates


def _resources(params: Mapping[str, str]) -> tuple[str, ...]:
    value = params.get("resource")
    return tuple(value.split(" ")) if value else ()
