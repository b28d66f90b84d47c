"""certbound.pki.revocation: CRL and OCSP for client certificates, as pure X.509 work (no I/O).

Where a certificate publishes its status (:mod:`.pointers`), what a CRL (:mod:`.crl`) or an OCSP
answer (:mod:`.ocsp`) says about it once verified, as a :class:`~.status.CertStatus`, and signing
CRLs and OCSP answers for the development CA and the tests (:mod:`.build`). Fetching, caching and
refreshing are :mod:`certbound.certstatus`'s. See docs/pki.md.
"""

from certbound.pki.revocation.build import Revoked, build_crl, ocsp_answer
from certbound.pki.revocation.crl import CrlMemo, crl_signer, crl_status, load_crl
from certbound.pki.revocation.ocsp import ocsp_get_url, ocsp_request, ocsp_status
from certbound.pki.revocation.pointers import RevocationPointers, revocation_pointers
from certbound.pki.revocation.status import CertStatus, Status, path_keys, reason_name

__all__ = [
    "CertStatus",
    "CrlMemo",
    "RevocationPointers",
    "Revoked",
    "Status",
    "build_crl",
    "crl_signer",
    "crl_status",
    "load_crl",
    "ocsp_answer",
    "ocsp_get_url",
    "ocsp_request",
    "ocsp_status",
    "path_keys",
    "reason_name",
    "revocation_pointers",
]
