"""Making JWSs for the verification tests, including ones no honest signer would make."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Mapping
from typing import Any

from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import Key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


def sign(header: Mapping[str, Any], claims: Any, key: Key) -> str:
    """A compact JWS of `claims` (JSON) with exactly `header`, signed by joserfc with `key`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        registry = jws.JWSRegistry(algorithms=[header["alg"]], strict_check_header=False)
        return jws.serialize_compact(dict(header), json.dumps(claims), key, registry=registry)


def unsigned(claims: Any, header: Mapping[str, Any] | None = None) -> str:
    """``alg: none`` (or another header) with an empty signature."""
    return f"{segment(dict(header or {'alg': 'none'}))}.{segment(claims)}."


def hmac_signed(header: Mapping[str, Any], claims: Any, secret: bytes) -> str:
    """HS256/384/512 computed by hand: any bytes as the secret (joserfc refuses PEM-looking ones)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
    signing_input = f"{segment(dict(header))}.{segment(claims)}"
    return f"{signing_input}.{b64(hmac.new(secret, signing_input.encode(), digest).digest())}"
