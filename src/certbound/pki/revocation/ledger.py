"""The development CA's record of what it revoked: ``certbound pki revoke`` writes it, ``certbound pki
crl`` signs a CRL from it.

Kept as JSON beside the CA certificate (``ca.crt`` -> ``ca.revoked.json``): for each revoked
certificate its serial number (hex), revocation time, reason and subject, plus the number of the last
CRL issued (RFC 5280 5.2.3: CRL numbers increase). Written to a temporary file and renamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from certbound.pki.pem import write_public
from certbound.pki.revocation.build import Revoked

__all__ = ["REASONS", "RevocationLedger", "ledger_path"]

#: The CRLReason names (RFC 5280 5.3.1) ``certbound pki revoke --reason`` takes.
REASONS: dict[str, x509.ReasonFlags] = {
    flag.value: flag for flag in x509.ReasonFlags if flag not in (x509.ReasonFlags.remove_from_crl,)
}


def ledger_path(ca_cert: Path) -> Path:
    """Where the record of the CA at `ca_cert` lives."""
    return ca_cert.with_name(ca_cert.stem + ".revoked.json")


@dataclass
class RevocationLedger:
    """The revoked certificates of one CA, and its CRL number."""

    path: Path
    revoked: list[Revoked] = field(default_factory=list)
    subjects: dict[int, str] = field(default_factory=dict)
    crl_number: int = 0

    @classmethod
    def load(cls, path: Path) -> RevocationLedger:
        """The ledger at `path` (empty when the file does not exist; ValueError when it is not one)."""
        if not path.exists():
            return cls(path)
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            revoked, subjects = [], {}
            for item in data["revoked"]:
                serial = int(item["serial"], 16)
                reason = REASONS[item["reason"]] if item.get("reason") else None
                revoked.append(Revoked(serial, datetime.fromisoformat(item["revoked_at"]), reason))
                subjects[serial] = str(item.get("subject", ""))
            return cls(path, revoked, subjects, int(data.get("crl_number", 0)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a revocation record of certbound ({exc})") from None

    def is_revoked(self, serial: int) -> bool:
        return any(r.serial == serial for r in self.revoked)

    def revoke(self, cert: x509.Certificate, at: datetime, reason: x509.ReasonFlags | None) -> bool:
        """Record `cert` as revoked; False when it already was (nothing changes)."""
        if self.is_revoked(cert.serial_number):
            return False
        self.revoked.append(Revoked(cert.serial_number, at, reason))
        self.subjects[cert.serial_number] = cert.subject.rfc4514_string()
        return True

    def next_crl_number(self) -> int:
        self.crl_number += 1
        return self.crl_number

    def save(self) -> None:
        data = {
            "revoked": [
                {
                    "serial": format(r.serial, "x"),
                    "revoked_at": r.revoked_at.isoformat(),
                    "reason": r.reason.value if r.reason is not None else None,
                    "subject": self.subjects.get(r.serial, ""),
                }
                for r in self.revoked
            ],
            "crl_number": self.crl_number,
        }
        write_public(self.path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))
