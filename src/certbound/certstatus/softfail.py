"""The warning a certificate accepted under ``client_cert_revocation_soft_fail`` gets: at most one a
minute per certificate, so that a responder outage does not flood the log (the server and the gateway
each hold one, on their own logger)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from certbound.certstatus.checker import ChainRevocation

__all__ = ["SoftFailWarnings"]

_WARN_EVERY: Final = 60.0
_MAX_WARNED: Final = 4096


class SoftFailWarnings:
    """Logs ``client_cert_soft_fail`` on `logger` (a structlog logger), rate-limited per leaf."""

    def __init__(self, logger: Any, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._monotonic = monotonic
        self._warned: OrderedDict[str, float] = OrderedDict()

    def warn(self, leaf_key: str, verdict: ChainRevocation, **fields: Any) -> None:
        now = self._monotonic()
        last = self._warned.get(leaf_key)
        if last is not None and now - last < _WARN_EVERY:
            return
        self._warned[leaf_key] = now
        self._warned.move_to_end(leaf_key)
        while len(self._warned) > _MAX_WARNED:
            self._warned.popitem(last=False)
        self._log.warning(
            "client_cert_soft_fail",
            **fields,
            cert_x5t_s256=leaf_key,
            detail=verdict.detail,
            **verdict.fields(),
        )
