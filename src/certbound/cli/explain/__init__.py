"""`certbound explain`: why a client was (or would be) refused, in plain words.

Two ways in:

* ``--event FILE|-``: the server's ``client_auth`` log events (issue 4, "explainable failures"), as JSON
  lines or as structlog's console rendering (``key=value``); a whole log file works, every
  ``client_auth`` event in it is explained in order.
* ``--client-id ID [--cert FILE [--chain FILE]] [--endpoint token]``: loads the settings the way
  ``certbound serve`` does (``--config``, ``--data-dir``, ``--database-url``, ``--client-ca``,
  ``--dev``, ``CERTBOUND_*``), opens the store without migrating or creating anything, builds the
  authenticator with the server's own ``build_client_authenticator`` and asks it to ``decide`` on a
  request that carries only the client_id and, on the connection, that certificate. The outcome is
  the server's own decision (chain validation, subject comparison, registered and ``jwks_uri``
  certificates: a client's ``jwks_uri`` is fetched as the server would), plus the facts that explain
  it. Nothing is written: the certificate methods only read, and no assertion is made up (so no
  ``jti`` is stored). For the other methods it says which credential the client needs.

In parts: :mod:`.log_events` (log lines -> events), :mod:`.live_check` (the server's own decision, as
a :class:`~certbound.server.clientauth.decision.Decision`, and the facts behind it),
:mod:`.explanation` (a decision in plain words, the advice from :mod:`certbound.reasons`),
:mod:`.render` (text and ``--json``), :mod:`.command` (options and exit status).

Exit status: 0 when the client is (would be) accepted, 1 when refused, 2 on usage errors (bad
options, unreadable files, no event found, no database). Never a traceback.
"""

from certbound.cli.explain.command import register
from certbound.cli.explain.explanation import METHOD_HOWTO, Explanation, explain_event
from certbound.cli.explain.log_events import client_auth_events, parse_log_line

__all__ = [
    "METHOD_HOWTO",
    "Explanation",
    "client_auth_events",
    "explain_event",
    "parse_log_line",
    "register",
]
