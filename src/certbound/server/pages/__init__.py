"""certbound.server.pages: the server-rendered pages a person sees (login, consent, logout, errors).

Jinja2 with autoescaping, no JavaScript, one stylesheet inlined and allowed by its hash in a strict
Content-Security-Policy (`renderer`).
"""

from certbound.server.pages.renderer import Pages

__all__ = ["Pages"]
