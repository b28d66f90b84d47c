"""`certbound users`: the store found as `serve` finds it, one-line errors, --json, passwords read safely."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from certbound.cli.main import app
from certbound.config import load_settings
from certbound.server.users.passwords import verify_password
from certbound.store.records import User
from certbound.store.sql import open_store

runner = CliRunner()


def users(data: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, ["users", *args, "--data-dir", str(data)], input=input, env=env)


def stored(data: Path, username: str) -> User | None:
    async def read() -> User | None:
        store = open_store(load_settings({"data_dir": data}, serving=False).effective_database_url)
        try:
            return await store.users.get_by_username(username)
        finally:
            await store.close()

    return asyncio.run(read())


def matches(user: User | None, password: str) -> bool:
    assert user is not None
    return asyncio.run(verify_password(user.password_hash, password))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_add_reads_the_password_file_without_its_trailing_newline(data: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret password\n")
    result = users(data, "add", "alice", "--password-file", str(secret), "--name", "Alice", "--email",
                   "alice@example.com", "--email-verified", "--claim", "locale=fr", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout)
    assert added["username"] == "alice"
    assert added["claims"] == {
        "locale": "fr",
        "name": "Alice",
        "email": "alice@example.com",
        "email_verified": True,
    }
    user = stored(data, "alice")
    assert matches(user, "s3cret password")
    assert not matches(user, "s3cret password\n")
    assert "s3cret" not in result.output


def test_an_existing_username_is_refused_in_one_line(data: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("first password")
    assert users(data, "add", "alice", "--password-file", str(secret)).exit_code == 0
    again = users(data, "add", "alice", "--password-file", str(secret))
    assert again.exit_code == 1
    assert again.stderr.strip() == "certbound users: a user named 'alice' exists already"
    assert "Traceback" not in again.output


def test_passwords_from_stdin_and_the_prompt(data: Path) -> None:
    piped = users(data, "add", "bob", "--password-file", "-", input="from standard input\r\n")
    assert piped.exit_code == 0, piped.output
    assert matches(stored(data, "bob"), "from standard input")
    prompted = users(data, "passwd", "bob", input="typed without echo\ntyped without echo\n")
    assert prompted.exit_code == 0, prompted.output
    assert "typed without echo" not in prompted.stdout
    assert matches(stored(data, "bob"), "typed without echo")
    short = users(data, "passwd", "bob", "--password-file", "-", input="short")
    assert short.exit_code == 1
    assert "at least 8 characters" in short.stderr


def test_list_disable_enable_delete(data: Path) -> None:
    for name in ("carol", "dave"):
        assert users(data, "add", name, "--password-file", "-", input="long enough password").exit_code == 0
    listed = json.loads(users(data, "list", "--json").stdout)
    assert [u["username"] for u in listed["users"]] == ["carol", "dave"]
    table = users(data, "list").stdout.splitlines()
    assert table[0].split() == ["USERNAME", "SUB", "ENABLED", "NAME", "EMAIL"]
    disabled = json.loads(users(data, "disable", "carol", "--json").stdout)
    assert (disabled["enabled"], disabled["grants_revoked"]) == (False, 0)
    assert stored(data, "carol") is not None
    assert not stored(data, "carol").enabled  # type: ignore[union-attr]
    assert users(data, "enable", "carol").exit_code == 0
    deleted = users(data, "delete", "dave", "--json")
    assert json.loads(deleted.stdout)["deleted"] is True
    assert stored(data, "dave") is None
    for command in ("delete", "disable", "passwd"):
        missing = users(data, command, "nobody", *(["--password-file", "-"] if command == "passwd" else []),
                        input="long enough password")  # fmt: skip
        assert missing.exit_code == 1, command
        assert missing.stderr.strip() == "certbound users: no user named 'nobody'"


def test_the_store_is_found_as_serve_finds_it(tmp_path: Path) -> None:
    config = tmp_path / "certbound.toml"
    data = tmp_path / "elsewhere"
    config.write_text(f'data_dir = "{data}"\n')
    added = runner.invoke(app, ["users", "add", "erin", "--config", str(config), "--password-file", "-"],
                          input="long enough password")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert (data / "certbound.db").is_file()
    env = {"CERTBOUND_DATA_DIR": str(data)}
    listed = runner.invoke(app, ["users", "list", "--json"], env=env)
    assert [u["username"] for u in json.loads(listed.stdout)["users"]] == ["erin"]
    bad = runner.invoke(app, ["users", "list", "--database-url", "mysql://x"])
    assert bad.exit_code == 2
    assert len(bad.stderr.strip().splitlines()) == 1


def test_usernames_are_checked(data: Path) -> None:
    result = users(data, "add", "has space", "--password-file", "-", input="long enough password")
    assert result.exit_code == 1
    assert "a username is 1-128" in result.stderr


def test_a_password_file_that_is_not_utf8_is_one_line_not_a_traceback(data: Path, tmp_path: Path) -> None:
    binary = tmp_path / "pw.bin"
    binary.write_bytes(b"\xff\xfe not text\n")
    result = users(data, "add", "zed", "--password-file", str(binary))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"certbound users: --password-file: {binary} is not UTF-8 text"
    from_stdin = runner.invoke(app, ["users", "add", "zed", "--data-dir", str(data), "--password-file", "-"],
                               input=b"\xff\xfe not text")  # fmt: skip
    assert from_stdin.exit_code == 2, from_stdin.output
    assert "Traceback" not in from_stdin.output
