"""The reason-code catalogue: look-ups, families, the refusal of unknown codes, and the docs kept in
step with it (docs/reason-codes.md shows every section's table exactly as rendered here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from certbound.errors import OAuthError
from certbound.reasons import (
    ADVICE,
    CATALOGUE,
    CLIENT_AUTH,
    MEANINGS,
    OK,
    SECTIONS,
    Section,
    is_known,
    lookup,
)
from certbound.server.clientauth.failure import REASONS, AuthFailure

DOCS = Path(__file__).resolve().parents[1] / "docs"
REASON_CODES_MD = DOCS / "reason-codes.md"
CLIENT_AUTH_MD = DOCS / "client-authentication.md"


def test_exact_codes_and_families_are_found() -> None:
    entry = lookup("cert.untrusted")
    assert entry is not None
    assert entry.code == "cert.untrusted"
    assert not entry.is_family
    family = lookup("metadata.jwks")
    assert family is not None
    assert (family.code, family.is_family) == ("metadata.<field>", True)
    assert lookup("metadata.client metadata") is family  # the field name is whatever the validator names
    assert lookup("http.404") is CATALOGUE["http.<status>"]


@pytest.mark.parametrize("code", ["cert.whatever", "request.bogus", "metadata.", "metadata", "ok", "", "x.y"])
def test_unknown_codes_are_not_known(code: str) -> None:
    assert lookup(code) is None
    assert not is_known(code)


def test_every_entry_has_words_and_the_views_agree() -> None:
    for code, entry in CATALOGUE.items():
        assert re.fullmatch(r"[a-z_]+\.([a-z0-9_]+|<[a-z]+>)", code), code
        assert entry.meaning.strip()
        assert entry.advice.strip()
        assert (MEANINGS[code], ADVICE[code]) == (entry.meaning, entry.advice)
    assert sum(len(s.reasons) for s in SECTIONS) == len(CATALOGUE)  # no code twice
    assert OK not in CATALOGUE


def test_the_client_auth_codes_are_the_ones_auth_failure_takes() -> None:
    assert dict(REASONS) == {r.code: r.meaning for r in CLIENT_AUTH.reasons}
    assert "internal.error" in REASONS
    with pytest.raises(ValueError, match="unknown reason"):
        AuthFailure("grant.missing")  # catalogued, but not a client-authentication code


def test_oauth_error_refuses_an_uncatalogued_code() -> None:
    with pytest.raises(ValueError, match=r"unknown reason code 'request\.bogus'"):
        OAuthError("invalid_request", "x", reason="request.bogus")
    assert OAuthError("invalid_request", "x", reason="request.nul").reason == "request.nul"
    assert OAuthError("invalid_client_metadata", reason="metadata.client_name#fr").status == 400
    assert OAuthError("server_error").reason == ""  # no reason at all is allowed


# -- the docs ----------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*").replace("<", "&lt;").replace(">", "&gt;")


def table(section: Section) -> str:
    """A section as docs/reason-codes.md shows it."""
    rows = [f"## {section.title}", "", f"Where: {section.where}.", "", "| code | meaning | what to do |"]
    rows.append("| --- | --- | --- |")
    rows += [f"| `{r.code}` | {_cell(r.meaning)} | {_cell(r.advice)} |" for r in section.reasons]
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize("section", SECTIONS, ids=[s.title for s in SECTIONS])
def test_reason_codes_md_shows_each_section_as_catalogued(section: Section) -> None:
    text = REASON_CODES_MD.read_text(encoding="utf-8")
    assert table(section) in text, (
        f"docs/reason-codes.md is out of step with certbound/reasons.py; the section should read:\n\n"
        f"{table(section)}"
    )


def test_reason_codes_md_shows_no_other_code() -> None:
    text = REASON_CODES_MD.read_text(encoding="utf-8")
    shown = re.findall(r"^\| `([^`]+)` \|", text, flags=re.MULTILINE)
    assert sorted(shown) == sorted(CATALOGUE)


def test_client_authentication_md_lists_exactly_the_client_auth_codes() -> None:
    text = CLIENT_AUTH_MD.read_text(encoding="utf-8")
    section = text.split("## Reason codes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", section, flags=re.MULTILINE)
    assert sorted(listed) == sorted(REASONS)
