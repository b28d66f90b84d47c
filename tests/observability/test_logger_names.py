"""The ``logger`` field of every log event stays what operators filter and alert on.

A stdlib logger named ``__name__`` changes its name when its module moves, and with it the ``logger``
field of every event it writes (``registration refused: ...``, ``token revoked: ...``), although nothing
else about the event changed. So the names are pinned here: a module-level logger whose name is not in
`KNOWN` fails this test, and moving a module cannot rename its events unnoticed. A new logger is
added here on purpose, with the name operators will see.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

import certbound

#: Every stdlib logger name a certbound module logs under: those of the release before issue 11's
#: layout, and the ones added since (certificate lifecycle, the gateway, the login flows).
KNOWN = frozenset(
    {
        "certbound",
        "certbound.caching",
        "certbound.clientcerts",
        "certbound.gateway",
        "certbound.grants",
        "certbound.client",
        "certbound.clientauth",
        "certbound.clientauth.jwks",
        "certbound.endpoints",
        "certbound.endpoints.registration",
        "certbound.metrics",
        "certbound.store.sqlite_hot",
        "certbound.tls",
        "certbound.tokens.revocation",
        "certbound.tokens.verifier",
    }
)


def module_loggers() -> dict[str, str]:
    """Logger name -> the module holding it, for every module-level `logging.Logger` in certbound."""
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(certbound.__path__, "certbound."):
        if info.name.endswith("__main__") or ".migrations" in info.name:
            continue  # __main__ runs the CLI; migrations are loaded by Alembic, not imported
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, logging.Logger):
                found.setdefault(value.name, info.name)
    return found


def test_module_loggers_keep_their_names() -> None:
    renamed = {name: module for name, module in module_loggers().items() if name not in KNOWN}
    assert not renamed, f"these loggers would change the events' logger field: {renamed}"


def test_the_moved_modules_log_under_their_old_names() -> None:
    from certbound.server.endpoints import registration
    from certbound.server.tokens import revocation, verifier

    assert registration.log.name == "certbound.endpoints.registration"
    assert revocation.log.name == "certbound.tokens.revocation"
    assert verifier.log.name == "certbound.tokens.verifier"
