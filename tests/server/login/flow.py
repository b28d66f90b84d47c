"""Driving the login pages in-process, as a browser would: GETs, form posts, 303s, one cookie jar."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from certbound.server.users.passwords import hash_password
from certbound.store.records import User
from tests.server.endpoints.harness import API, Harness

PASSWORD = "correct horse battery"
CB = "https://app.example/cb"
NATIVE_CB = "http://127.0.0.1:9000/cb"

LOGIN_CLIENTS: dict[str, dict[str, Any]] = {
    # a confidential web application (client_secret_basic)
    "web": {
        "client_name": "Example Web App",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [CB, "https://app.example/other"],
        "post_logout_redirect_uris": ["https://app.example/bye"],
        "scope": "read offline_access",
        "resources": [API],
    },
    # a client that asked for ES256 ID tokens
    "es256": {
        "grant_types": ["authorization_code"],
        "redirect_uris": [CB],
        "id_token_signed_response_alg": "ES256",
        "consent_required": False,
    },
    # a public native app: PKCE, loopback redirect; its refresh tokens bind to a presented certificate
    "native": {
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [NATIVE_CB],
        "scope": "read offline_access",
    },
    # a public app whose access tokens are bound to the certificate it presents
    "native-bound": {
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": [NATIVE_CB],
        "scope": "offline_access",
        "tls_client_certificate_bound_access_tokens": True,
    },
    # the operator's own application: no consent page
    "trusted": {
        "grant_types": ["authorization_code"],
        "redirect_uris": [CB],
        "consent_required": False,
    },
    # only by PAR
    "pushed": {
        "grant_types": ["authorization_code"],
        "redirect_uris": [CB],
        "require_pushed_authorization_requests": True,
    },
}


def challenge_for(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Browser:
    """One browser: a cookie jar on the harness's transport."""

    h: Harness
    http: httpx.AsyncClient
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    async def authorize(self, client: str, *, pkce: bool = True, **params: str) -> httpx.Response:
        """GET /authorize for `client` with sensible parameters, `params` added or replaced ("" drops one)."""
        query_params = {
            "response_type": "code",
            "client_id": client,
            "redirect_uri": NATIVE_CB if client.startswith("native") else CB,
            "state": "st-" + secrets.token_hex(4),
            "scope": "openid profile email",
        }
        if pkce:
            query_params |= {"code_challenge": challenge_for(self.verifier), "code_challenge_method": "S256"}
        query_params.update(params)
        return await self.http.get("/authorize?" + urlencode({k: v for k, v in query_params.items() if v}))

    async def follow(self, response: httpx.Response) -> httpx.Response:
        assert response.status_code == 303, (response.status_code, response.text)
        location = response.headers["location"]
        assert location.startswith("/"), location
        return await self.http.get(location)

    async def submit(self, page: httpx.Response, **fields: str) -> httpx.Response:
        """Post the page's one form with its hidden fields and `fields`."""
        assert page.status_code in (200, 401, 429), (page.status_code, page.text)
        html = page.text
        assert html.count("<form") == 1
        action = re.search(r'<form method="post" action="([^"]+)"', html)
        assert action is not None
        return await self.http.post(
            action.group(1),
            content=urlencode({**hidden_fields(html), **fields}),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )

    async def log_in(
        self, response: httpx.Response, username: str = "alice", password: str = PASSWORD
    ) -> httpx.Response:
        return await self.submit(await self.follow(response), username=username, password=password)

    async def code(self, client_id: str, **params: str) -> tuple[str, dict[str, str]]:
        """The whole front channel: authorize, log in if asked, approve if asked; (code, redirect query)."""
        response = await self.authorize(client_id, **params)
        if response.headers.get("location", "").startswith("/login"):
            response = await self.log_in(response)
        if response.headers.get("location", "").startswith("/consent"):
            response = await self.submit(await self.follow(response), decision="approve")
        assert response.status_code == 303, response.text
        answer = query(response.headers["location"])
        assert "code" in answer, answer
        return answer["code"], answer

    async def exchange(
        self, client_id: str, code: str, *, cert: str | None = None, verifier: str | None = None, **extra: str
    ) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": NATIVE_CB if client_id.startswith("native") else CB,
            "code_verifier": verifier or self.verifier,
            **extra,
        }
        return await token_request(self.h, client_id, form, cert=cert)


async def token_request(
    h: Harness, client_id: str, form: dict[str, str], *, cert: str | None = None
) -> httpx.Response:
    public = LOGIN_CLIENTS.get(client_id, {}).get("token_endpoint_auth_method") == "none"
    if public:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if cert:
            headers["x-test-cert"] = cert
        return await h.http.post(
            "/token", content=urlencode({**form, "client_id": client_id}), headers=headers
        )
    return await h.post("/token", client_id, {k: v for k, v in form.items() if v}, cert=cert)


async def add_user(h: Harness, username: str = "alice", **claims: Any) -> User:
    user = User(
        sub="sub-" + username,
        username=username,
        password_hash=hash_password(PASSWORD),
        claims={"name": "Alice Liddell", "email": "alice@example.com", "email_verified": True, **claims},
    )
    return await h.store.users.create(user)
