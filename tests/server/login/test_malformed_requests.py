"""Malformed page requests are an error page (400), never a 500 with a traceback."""

from __future__ import annotations

import pytest

from tests.server.login.flow import Browser


@pytest.mark.parametrize("path", ["/authorize", "/logout", "/login", "/consent"])
async def test_too_many_query_parameters_is_a_400_page(browser: Browser, path: str) -> None:
    response = await browser.http.get(path + "?client_id=web&" + "&".join(f"p{i}=1" for i in range(70)))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
