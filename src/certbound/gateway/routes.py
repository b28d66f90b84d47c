"""The route table: which route a path belongs to, and everything that route decides, compiled once.

A route's ``paths`` are prefixes that match whole segments: ``/api`` matches ``/api`` and ``/api/x``,
never ``/apix`` (Kong matches plain prefixes; a segment boundary cannot let a route leak into a
neighbour's name). A segment ends at ``/``, and also at ``;`` (path parameters: Tomcat and Spring
read ``/admin;x=1`` as ``/admin``) and ``\\`` (a separator to some servers), so ``/admin;x`` belongs
to ``/admin``'s route. The longest matching prefix wins. A path is refused before matching when the
gateway and the upstream could read it differently: a dot segment (``/public/../admin``, also
percent-encoded, also with parameters: Tomcat's ``..;``), an empty segment (``//admin``: nginx's
``merge_slashes`` and Spring read ``/admin``), a NUL, or a target that is not an absolute path. The
path is matched decoded and forwarded as received.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from certbound.gateway.answers import bad_request, insufficient
from certbound.gateway.events import Record
from certbound.gateway.headers import IdentityHeaders
from certbound.gateway.proof import ProofOfPossession
from certbound.gateway.relying import RelyingParty
from certbound.gateway.rules import Requirement
from certbound.gateway.tokens import TokenInfo
from certbound.gateway.upstream import Upstream
from certbound.gateway.validation import TokenValidator, bearer_token
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["Route", "RouteTable", "check_path"]

_DOT_SEGMENTS: Final = frozenset({".", ".."})
#: Where a path segment ends, to routes: a separator, or the start of its parameters.
_BOUNDARIES: Final = "/;\\"


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """One ``[[routes]]`` entry, ready for requests."""

    name: str
    prefixes: tuple[str, ...]
    realm: str
    upstream: Upstream | None
    strip_path: bool
    hide_credentials: bool
    validator: TokenValidator
    proof: ProofOfPossession
    scopes: Requirement
    scopes_claim: str
    audiences: Requirement
    audience_claim: str
    identity: IdentityHeaders
    relying: RelyingParty | None = None  # part 2: the gateway logs people in, holds their tokens

    def check_claims(self, info: TokenInfo) -> None:
        """`audience_required` and `scopes_required` against a validated token (403 when not met)."""
        if self.audiences and not self.audiences.met_by(info.values(self.audience_claim)):
            raise insufficient("jwt.bad_audience", "the token is not meant for this API")
        if self.scopes and not self.scopes.met_by(info.values(self.scopes_claim)):
            raise insufficient("scope.insufficient", f"the route requires the scope {self.scopes.describe()}")

    async def admit(
        self, authorization: Sequence[bytes], cert: ClientCertificate | None, record: Record
    ) -> None:
        """Let the request through or raise GatewayError: a bearer token (RFC 6750 section 2.1), valid
        for the route's IdP, bound to `cert` as the route requires, with the audience and scope it
        requires. What was found goes to `record` as it is found (a refused token's client too)."""
        token = bearer_token(authorization)
        info, record.cached = await self.validator.validate(token)
        record.info = info
        record.bound = await self.proof.check(info, cert)
        self.check_claims(info)


def check_path(path: str) -> None:
    """Refuse a path the gateway and the upstream could read differently (GatewayError 400)."""
    slashed = path.replace("\\", "/")
    if (
        not path.startswith("/")
        or "\x00" in path
        or "//" in slashed
        or any(s.partition(";")[0] in _DOT_SEGMENTS for s in slashed.split("/"))
    ):
        raise bad_request(
            "request.bad_path", "the path has dot segments or characters the gateway does not pass on",
            challenge=False,
        )  # fmt: skip


class RouteTable:
    """Prefixes longest first; a match is the route and the prefix it matched by."""

    __slots__ = ("_prefixes", "routes")

    def __init__(self, routes: list[Route]) -> None:
        self.routes = tuple(routes)
        pairs = [(prefix, route) for route in routes for prefix in route.prefixes]
        self._prefixes = tuple(sorted(pairs, key=lambda pair: len(pair[0]), reverse=True))

    def match(self, path: str) -> tuple[Route, str] | None:
        for prefix, route in self._prefixes:
            if prefix == "/" or path == prefix:
                return route, prefix
            if path.startswith(prefix) and path[len(prefix)] in _BOUNDARIES:
                return route, prefix
        return None
