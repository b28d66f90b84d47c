"""Rendering the pages: Jinja2 with autoescaping, and the headers every page carries.

The stylesheet is inlined and allowed by its SHA-256 alone, so the Content-Security-Policy can forbid
everything else: no script, no frame, no other origin (``default-src 'none'``); ``frame-ancestors
'none'`` (and ``X-Frame-Options: DENY`` for older browsers) keeps the pages out of other sites' frames,
against clickjacking. ``form-action`` is left out on purpose: browsers apply it to the redirect that
follows a form post too, and the login's redirect goes to the client. Pages are never cached and send
no Referer (a login page's URL carries a ticket).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse

__all__ = ["Pages"]


class Pages:
    """The page templates of the server, loaded once per worker."""

    def __init__(self) -> None:
        self._env = Environment(
            loader=PackageLoader("certbound.server.pages", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._style = (files("certbound.server.pages") / "style.css").read_text(encoding="utf-8")
        digest = base64.b64encode(hashlib.sha256(self._style.encode("utf-8")).digest()).decode("ascii")
        self.content_security_policy = (
            f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        )
        self._headers = {
            "Content-Security-Policy": self.content_security_policy,
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }

    def render(
        self, template: str, *, status: int = 200, headers: Mapping[str, str] | None = None, **context: Any
    ) -> HTMLResponse:
        """The page `template` with `context`, and the security headers."""
        html = self._env.get_template(template).render(style=self._style, **context)
        return HTMLResponse(html, status_code=status, headers={**self._headers, **(headers or {})})

    def message(
        self,
        title: str,
        message: str,
        *,
        status: int = 200,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        """A page that only says something (an error, a goodbye)."""
        return self.render(
            "message.html",
            status=status,
            headers=headers,
            title=title,
            message=message,
            detail=detail,
            error=status >= 400,
        )
