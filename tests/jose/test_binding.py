"""jose/binding.py: reading cnf.x5t#S256 strictly and comparing it with the presented certificate."""

from __future__ import annotations

from typing import Any

import pytest

from certbound.jose.binding import bound_thumbprint, check_binding, thumbprints_match
from certbound.jose.errors import JwtError
from certbound.pki.issue import self_signed_client_cert
from certbound.pki.thumbprint import x5t_s256

CERT, _ = self_signed_client_cert("CN=bound")
OTHER, _ = self_signed_client_cert("CN=other")
THUMB = x5t_s256(CERT)


def reason(claims: dict[str, Any], presented: str | None, **kwargs: Any) -> str:
    with pytest.raises(JwtError) as caught:
        check_binding(claims, presented, **kwargs)
    assert caught.value.reason.startswith(("cnf.",))
    return caught.value.reason


def test_reading_cnf() -> None:
    assert bound_thumbprint({"cnf": {"x5t#S256": THUMB}}) == THUMB
    assert bound_thumbprint({}) is None
    assert bound_thumbprint({"cnf": {"jkt": "dpop-thumbprint"}}) is None  # another kind of binding


@pytest.mark.parametrize(
    "cnf", ["x", ["x5t#S256"], None, 1, {"x5t#S256": 7}, {"x5t#S256": ""}, {"x5t#S256": None}]
)
def test_badly_typed_cnf_is_refused_not_ignored(cnf: Any) -> None:
    with pytest.raises(JwtError) as caught:
        bound_thumbprint({"cnf": cnf})
    assert caught.value.reason == "cnf.malformed"
    assert reason({"cnf": cnf}, THUMB) == "cnf.malformed"


def test_check_binding() -> None:
    bound = {"cnf": {"x5t#S256": THUMB}}
    check_binding(bound, THUMB)
    assert reason(bound, x5t_s256(OTHER)) == "cnf.mismatch"
    assert reason(bound, None) == "cnf.missing_certificate"
    check_binding({}, None)
    check_binding({}, THUMB)  # an unbound token may travel over mTLS
    assert reason({}, THUMB, required=True) == "cnf.unbound"


def test_thumbprints_match() -> None:
    assert thumbprints_match(THUMB, x5t_s256(CERT))
    assert not thumbprints_match(THUMB, THUMB[:-1])
    assert not thumbprints_match(THUMB, x5t_s256(OTHER))
