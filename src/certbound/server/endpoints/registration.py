"""HTTP endpoints for dynamic registration (RFC 7591) and client configuration (RFC 7592).

Thin on purpose: read the bearer token and the JSON body, call the
`certbound.server.clients.registrar.Registrar` they are built with, render. The handlers raise
`OAuthError`; the endpoint logs the refusal and answers it through the one renderer. Anything wrong
with the request itself (content type, size, JSON syntax, duplicate members, not an object) is a 400
``invalid_client_metadata``, never a 500. The token is checked before the body is looked at, so a
caller without one learns nothing else.
"""

from __future__ import annotations

import json
import logging
from typing import Any, NoReturn, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.errors import OAuthError
from certbound.server.clients.registrar import Registrar
from certbound.server.endpoints.errors import unexpected_error
from certbound.server.endpoints.responses import NO_STORE, json_response, oauth_error_response
from certbound.store.availability import describe, is_unavailable

__all__ = ["MAX_BODY_BYTES", "ClientConfigurationEndpoint", "RegistrationEndpoint"]

MAX_BODY_BYTES = 256 * 1024  # room for a JWK Set with several certificate chains

# the name its events have always carried (the module moved; the `logger` field did not)
log = logging.getLogger("certbound.endpoints.registration")


class ChangeWatcher(Protocol):
    """`certbound.store.generation.GenerationWatcher`: `check` reads the store generation now."""

    async def check(self) -> int: ...


class _RegistrarEndpoint:
    """An ASGI endpoint over the registrar: `handle` raises `OAuthError`, answered here."""

    def __init__(self, registrar: Registrar, watcher: ChangeWatcher) -> None:
        self._registrar = registrar
        self._watcher = watcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.handle(Request(scope, receive))
        except OAuthError as err:
            log.info("registration refused: %s (%s)", err.error, err.reason or "-")
            response = oauth_error_response(err)
        except Exception as exc:
            if not is_unavailable(exc):
                raise  # a bug: the app's handlers answer 500 and log the traceback
            response = oauth_error_response(unexpected_error(exc, scope["method"], scope["path"]))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        raise NotImplementedError

    async def _changed(self) -> None:
        """Let this worker's caches see the change at once (other workers follow within the poll interval).

        The change is committed by then: the store out of reach here must not turn it into a 503 (the
        client would retry: a second registration, the first one's credentials lost). The caches then
        follow at the next successful poll, as on every other worker."""
        try:
            await self._watcher.check()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            log.warning("client registration committed; cache refresh deferred: %s", describe(exc))


class RegistrationEndpoint(_RegistrarEndpoint):
    """POST /register (RFC 7591 section 3): a JSON object of client metadata; 201 with the client
    information."""

    async def handle(self, request: Request) -> Response:
        token = _bearer_token(request)
        self._registrar.check_initial_access_token(token)
        raw = await _json_object(request)
        body = await self._registrar.register(raw, token)
        await self._changed()
        log.info("client registered: %s (%s)", body["client_id"], body["token_endpoint_auth_method"])
        return json_response(body, 201)


class ClientConfigurationEndpoint(_RegistrarEndpoint):
    """/register/{client_id} (RFC 7592 section 2): read (GET), replace (PUT) or delete (DELETE, 204) a
    registration."""

    async def handle(self, request: Request) -> Response:
        registrar = self._registrar
        client_id: str = request.path_params["client_id"]
        token = _bearer_token(request)
        if request.method == "PUT":
            await registrar.authenticate(client_id, token)
            body = await registrar.update(client_id, token, await _json_object(request))
            await self._changed()
            log.info("client registration replaced: %s", client_id)
        elif request.method == "DELETE":
            await registrar.delete(client_id, token)
            await self._changed()
            log.info("client deleted: %s", client_id)
            return Response(status_code=204, headers=NO_STORE)
        else:
            body = await registrar.read(client_id, token)
        return json_response(body)


def _bad_request(why: str, reason: str) -> NoReturn:
    raise OAuthError("invalid_client_metadata", why, status=400, reason=f"registration.{reason}")


def _bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is no such header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def _json_object(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "")
    if content_type.partition(";")[0].strip().lower() != "application/json":
        _bad_request("the request body must be a JSON object sent as application/json", "content_type")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            _bad_request(f"the request body is larger than {MAX_BODY_BYTES} bytes", "body_too_large")
    try:
        value = json.loads(bytes(body), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _DuplicateMember as dup:
        _bad_request(f"the request body has the member {dup.name[:64]!r} more than once", "duplicate_member")
    except (ValueError, RecursionError):  # JSONDecodeError, bad encoding, NaN/Infinity, nesting
        _bad_request("the request body is not valid JSON", "invalid_json")
    if not isinstance(value, dict):
        _bad_request("the request body must be a JSON object", "not_an_object")
    return value


class _DuplicateMember(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateMember(name)
        out[name] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
