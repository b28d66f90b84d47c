"""`certbound users`: the people who log in at the login page (add, list, passwd, disable, enable, delete).

The store is found exactly as `certbound serve` finds it (``--config``, ``--data-dir``,
``--database-url``, ``CERTBOUND_*``) and migrated if needed, so users can be added before the first
start. A running server reads users from the store at every login, so a change counts at once in
every worker. Disabling or deleting a user revokes every grant they gave (refresh tokens and the access
tokens issued under them) and ends their login sessions, so enabling them again needs a new login.
Errors end in one line on stderr: exit status 1 when the command is refused (a username taken or
unknown, a password the policy refuses), 2 for a usage or configuration problem.
Every command takes ``--json`` for one JSON document on stdout.

The store's modules (SQLAlchemy) are imported when a command runs: `certbound.cli.main` loads this
module for every command, ``certbound gateway`` too, which has no use for them.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from certbound.cli.option_groups import with_option_groups
from certbound.cli.store_options import ConfigOpt, DatabaseOpt, DataDirOpt
from certbound.config import Settings, SettingsError, load_settings
from certbound.server.login_cookie import PURPOSE
from certbound.server.users.accounts import create_user, set_password
from certbound.server.users.passwords import check_password_policy
from certbound.store.records import User

if TYPE_CHECKING:
    from certbound.store.sql import SqlStore

__all__ = ["app", "read_password_file"]

T = TypeVar("T")

app = typer.Typer(
    help="The people who log in: add, list, change passwords, disable, delete.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@dataclass
class Where:
    """Where the store is (as for serve), and whether to answer in JSON: every command's options."""

    config: ConfigOpt = None
    data_dir: DataDirOpt = None
    database_url: DatabaseOpt = None
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False

    def settings(self) -> Settings:
        try:
            return load_settings(
                {"data_dir": self.data_dir, "database_url": self.database_url}, self.config, serving=False
            )
        except SettingsError as exc:
            _fail(str(exc))


UsernameArg = Annotated[str, typer.Argument(help="The name the person types at the login page.")]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Read the password from FILE ('-': standard input; one trailing newline is dropped); "
        "without it the password is asked for, without echo.",
    ),
]


class _Refused(Exception):
    """The command cannot be done (exit status 1)."""


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"certbound users: {message}", err=True)
    raise typer.Exit(code)


def _run(settings: Settings, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    from certbound.store.sql import open_store

    async def with_store() -> T:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = open_store(settings.effective_database_url)
        try:
            await store.migrate()
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(with_store())
    except _Refused as exc:
        _fail(str(exc), 1)
    except (OSError, ValueError) as exc:
        _fail(f"{type(exc).__name__}: {exc}")


def read_password_file(path: Path) -> str:
    """The password in `path` ('-': standard input), without one trailing newline."""
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    for ending in ("\r\n", "\n"):
        if text.endswith(ending):
            return text[: -len(ending)]
    return text


def _new_password(password_file: Path | None) -> str:
    try:
        password = (
            read_password_file(password_file)
            if password_file is not None
            else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        )
    except OSError as exc:
        _fail(f"--password-file: cannot read {password_file}: {exc.strerror}")
    except UnicodeDecodeError:
        _fail(f"--password-file: {password_file} is not UTF-8 text")
    try:
        check_password_policy(password)
    except ValueError as exc:
        _fail(str(exc), 1)
    return password


def _describe(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "sub": user.sub,
        "enabled": user.enabled,
        "claims": user.claims,
        "created_at": user.created_at.isoformat(timespec="seconds") if user.created_at else None,
        "updated_at": user.updated_at.isoformat(timespec="seconds") if user.updated_at else None,
    }


def _claims(name: str | None, email: str | None, email_verified: bool, extra: list[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for item in extra:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--claim {item!r}: write NAME=VALUE (VALUE is read as JSON when it is JSON)")
        try:
            claims[key] = json.loads(value)
        except ValueError:
            claims[key] = value
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
        claims["email_verified"] = email_verified
    return claims


def _check_username(username: str) -> None:
    from certbound.server.users.login import USERNAME

    if not USERNAME.fullmatch(username):
        _fail(f"{username!r}: a username is 1-128 letters, digits and . _ @ + -", 1)


@app.command()
@with_option_groups
def add(
    username: UsernameArg,
    where: Where,
    password_file: PasswordFileOpt = None,
    name: Annotated[str | None, typer.Option(help="The 'name' claim (profile scope).")] = None,
    email: Annotated[str | None, typer.Option(help="The 'email' claim (email scope).")] = None,
    email_verified: Annotated[
        bool, typer.Option("--email-verified/--email-unverified", help="The 'email_verified' claim.")
    ] = False,
    claim: Annotated[
        list[str] | None, typer.Option(help="Another claim, NAME=VALUE (JSON or text); repeatable.")
    ] = None,
) -> None:
    """Add a user who can log in; an existing username is refused."""
    from certbound.store.users import UserExists

    _check_username(username)
    settings = where.settings()
    claims = _claims(name, email, email_verified, claim or [])
    password = _new_password(password_file)

    async def work(store: SqlStore) -> User:
        try:
            return await create_user(store.users, username, password, claims)
        except UserExists:
            raise _Refused(f"a user named {username!r} exists already") from None

    user = _run(settings, work)
    added = f"added user {user.username} (sub {user.sub})"
    typer.echo(json.dumps(_describe(user)) if where.as_json else added)


@app.command("list")
@with_option_groups
def list_users(
    where: Where,
) -> None:
    """Every user: name, subject, whether they may log in, name and e-mail."""
    settings = where.settings()
    users = _run(settings, lambda store: store.users.list())
    if where.as_json:
        typer.echo(json.dumps({"users": [_describe(u) for u in users]}))
        return
    columns = ("USERNAME", "SUB", "ENABLED", "NAME", "EMAIL")
    rows = [[u.username, u.sub, str(u.enabled).lower(), str(u.claims.get("name", "-")),
             str(u.claims.get("email", "-"))] for u in users]  # fmt: skip
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    for row in [list(columns), *rows]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@app.command()
@with_option_groups
def passwd(
    username: UsernameArg,
    where: Where,
    password_file: PasswordFileOpt = None,
) -> None:
    """Set a user's password (the old one stops working at once)."""
    settings = where.settings()
    password = _new_password(password_file)

    async def work(store: SqlStore) -> User:
        user = await set_password(store.users, username, password)
        if user is None:
            raise _Refused(f"no user named {username!r}")
        return user

    user = _run(settings, work)
    typer.echo(json.dumps(_describe(user)) if where.as_json else f"changed the password of {user.username}")


def _set_enabled(username: str, enabled: bool, where: Where) -> None:
    settings = where.settings()

    async def work(store: SqlStore) -> tuple[User, tuple[int, int]]:
        user = await store.users.update(username, enabled=enabled)
        if user is None:
            raise _Refused(f"no user named {username!r}")
        ended = (0, 0) if enabled else await store.grants.revoke_subject(user.sub, session_purpose=PURPOSE)
        return user, ended

    user, (revoked, sessions) = _run(settings, work)
    if where.as_json:
        typer.echo(json.dumps(_describe(user) | {"grants_revoked": revoked, "sessions_ended": sessions}))
    elif enabled:
        typer.echo(f"enabled {user.username}: they can log in again")
    else:
        typer.echo(f"disabled {user.username}: they cannot log in; {revoked} grant(s) revoked, "
                   f"{sessions} login session(s) ended")  # fmt: skip


@app.command()
@with_option_groups
def disable(
    username: UsernameArg,
    where: Where,
) -> None:
    """Stop a user from logging in, and revoke every grant they gave (refresh and access tokens)."""
    _set_enabled(username, False, where)


@app.command()
@with_option_groups
def enable(
    username: UsernameArg,
    where: Where,
) -> None:
    """Let a disabled user log in again."""
    _set_enabled(username, True, where)


@app.command()
@with_option_groups
def delete(
    username: UsernameArg,
    where: Where,
) -> None:
    """Delete a user: their grants are revoked first, their consent goes with them."""
    settings = where.settings()

    async def work(store: SqlStore) -> tuple[User, tuple[int, int]]:
        # disabled first: a code exchange racing the deletion then issues nothing (the issuing
        # transaction reads the user), rather than writing a grant the deletion would drop unrevoked
        user = await store.users.update(username, enabled=False)
        if user is None:
            raise _Refused(f"no user named {username!r}")
        ended = await store.grants.revoke_subject(user.sub, session_purpose=PURPOSE)
        if await store.users.delete(username) is None:
            raise _Refused(f"no user named {username!r}")
        return user, ended

    user, (revoked, sessions) = _run(settings, work)
    if where.as_json:
        extra = {"deleted": True, "grants_revoked": revoked, "sessions_ended": sessions}
        typer.echo(json.dumps(_describe(user) | extra))
    else:
        typer.echo(f"deleted {user.username}; {revoked} grant(s) revoked, {sessions} login session(s) ended")
