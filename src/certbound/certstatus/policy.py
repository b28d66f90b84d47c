"""What revocation checking is asked to do: which sources, what an unknown status means, how stale.

The names are the settings' (``client_cert_revocation``, ``client_cert_revocation_soft_fail``,
``client_cert_revocation_max_age``, ``client_ca_crls``), so the server and the gateway build the same
policy from their own sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

__all__ = ["FETCH_TIMEOUT", "MODES", "Mode", "RevocationPolicy"]

#: ``ocsp,crl``: OCSP from the certificate's AIA, then CRLs; ``crl``: CRLs only (the configured ones,
#: then the distribution points); ``ocsp``: OCSP only; ``off``: no checking at all.
Mode = Literal["ocsp,crl", "crl", "ocsp", "off"]
MODES: Final[tuple[str, ...]] = get_args(Mode)

#: The longest one fetch (an OCSP answer or a CRL) may take, resolution and download included.
FETCH_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class RevocationPolicy:
    """`max_age`: the longest an answer is used (seconds), whatever its ``nextUpdate`` says.
    `crls`: the operator's CRLs (files, or http/https URLs), for PKIs whose certificates name none."""

    mode: Mode = "ocsp,crl"
    soft_fail: bool = False
    max_age: float = 86400.0
    crls: tuple[str, ...] = ()
    fetch_timeout: float = FETCH_TIMEOUT

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown revocation mode {self.mode!r}; expected one of {', '.join(MODES)}")
        if self.max_age <= 0 or self.fetch_timeout <= 0:
            raise ValueError("max_age and fetch_timeout must be positive")

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def use_ocsp(self) -> bool:
        return self.mode in ("ocsp,crl", "ocsp")

    @property
    def use_crl(self) -> bool:
        return self.mode in ("ocsp,crl", "crl")
