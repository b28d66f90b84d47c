"""`certbound keys`: list the signing keys and rotate them without downtime (docs/keys.md).

Rotation is two steps, because a relying party must be able to fetch a key before it sees a token
signed with it:

1. ``certbound keys rotate`` adds a ``next`` key: published in JWKS at once, signing nothing;
2. ``certbound keys rotate`` again, once the next key has been published ``--min-next-age`` seconds
   (default: the JWKS endpoint's cache lifetime), makes it ``active``; the previous key is
   ``retired`` and stays published until every token it signed has expired.

``--activate-after SECONDS`` does both in one run, waiting in between. The command only writes the
store; every worker and node of a running server follows within a second (their key rings are
rebuilt when the store's generation counter moves). Errors end in one line on stderr: exit status 1
when the step cannot be done yet, 2 for a usage or configuration problem.

The store and the server's bootstrap are imported when a command runs: `certbound.cli.main` loads this
module for every command, ``certbound gateway`` too, which has no use for SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeAlias

import typer

from certbound.cli.store_options import ConfigOpt, DatabaseOpt, DataDirOpt
from certbound.config import Settings, SettingsError, load_settings
from certbound.jose.keyring import KeyManager, KeyRing, KeyRotationError, NoActiveKeyError, Rotation
from certbound.jose.signer import JwsSigner, SigningKeyError
from certbound.sealing import Sealer
from certbound.store.records import SigningKey

if TYPE_CHECKING:
    from certbound.store.sql import SqlStore

__all__ = ["DEFAULT_MIN_NEXT_AGE", "ROTATION_MARGIN", "app", "retirement_lifetime"]

#: The JWKS endpoint's ``Cache-Control: max-age``: a relying party may not see a new key before that.
DEFAULT_MIN_NEXT_AGE = 60
#: Slack after the longest token lifetime: workers and nodes that have not seen the activation yet
#: keep signing with the old key for a moment (normally well under a second).
ROTATION_MARGIN = timedelta(seconds=60)

app = typer.Typer(
    help="Signing keys: list them, and rotate them without downtime.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

KekFileOpt = Annotated[Path | None, typer.Option("--kek-file", help="Key-encryption key file.")]


class _Refused(Exception):
    """The step cannot be done now (exit status 1)."""


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"certbound keys: {message}", err=True)
    raise typer.Exit(code)


def retirement_lifetime(settings: Settings) -> timedelta:
    """How long a retired key stays published: the longest access token lifetime, the verifiers'
    clock skew, and :data:`ROTATION_MARGIN`."""
    return timedelta(seconds=settings.access_token_lifetime + settings.clock_skew) + ROTATION_MARGIN


def _settings(
    config: Path | None, data_dir: Path | None, database_url: str | None, kek_file: Path | None
) -> Settings:
    flags = {"data_dir": data_dir, "database_url": database_url, "kek_file": kek_file}
    try:
        return load_settings(flags, config, serving=False)
    except SettingsError as exc:
        _fail(str(exc))


def _sqlite_path(settings: Settings) -> Path | None:
    url = settings.effective_database_url
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///"))


Work: TypeAlias = "Callable[[SqlStore, KeyManager, Sealer], Awaitable[Any]]"


async def _with_keys(settings: Settings, work: Work) -> Any:
    """Open the server's store and key manager, check the KEK opens the active key, run `work`."""
    from certbound.server.bootstrap import open_sealer
    from certbound.store.sql import open_store

    db = _sqlite_path(settings)
    if db is not None and not db.is_file():
        raise _Refused(f"no database at {db}: is this the server's data_dir (start the server once first)?")
    default_kek = settings.data_dir / "kek"
    if settings.kek is None and settings.kek_file is None and not default_kek.is_file():
        raise _Refused(f"no key-encryption key at {default_kek}: give the server's kek_file or kek")
    store = open_store(settings.effective_database_url)
    try:
        sealer = open_sealer(settings)
        lifetime = retirement_lifetime(settings)
        manager = KeyManager(
            store,
            sealer,
            alg=settings.signing_alg,
            extra_algs=settings.id_token_signing_algs,
            max_token_lifetime=lifetime,
        )
        try:
            ring = await manager.keyring()
        except Exception as exc:  # no schema yet, or the database is unreachable
            raise _Refused(f"cannot read the signing keys ({type(exc).__name__}: {exc})") from None
        if not ring.keys:
            raise _Refused("no signing keys in the store: start the server once first (it creates one)")
        with contextlib.suppress(NoActiveKeyError):
            ring.active()  # a KEK other than the server's would seal keys the server cannot open
        return await work(store, manager, sealer)
    finally:
        await store.close()


def _run(settings: Settings, work: Work) -> Any:
    try:
        return asyncio.run(_with_keys(settings, work))
    except (_Refused, KeyRotationError) as exc:
        _fail(str(exc), 1)
    except SigningKeyError as exc:
        _fail(str(exc))
    except (OSError, ValueError) as exc:
        _fail(f"{type(exc).__name__}: {exc}")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value is not None else None


def _describe(key: SigningKey, ring: KeyRing, now: datetime) -> dict[str, Any]:
    published = any(jwk.get("kid") == key.kid for jwk in ring.jwks(now)["keys"])
    signing = key.state == "active" and ring.active(key.alg).kid == key.kid
    return {
        "kid": key.kid,
        "alg": key.alg,
        "state": key.state,
        "signing": signing,
        "published": published,
        "created_at": _iso(key.created_at),
        "activated_at": _iso(key.activated_at),
        "retired_at": _iso(key.retired_at),
        "publish_until": _iso(key.publish_until),
    }


@app.command("list")
def list_keys(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    kek_file: KekFileOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")] = False,
) -> None:
    """Every signing key, newest first: its state, whether it signs, whether JWKS publishes it."""
    settings = _settings(config, data_dir, database_url, kek_file)

    async def work(store: SqlStore, manager: KeyManager, sealer: Sealer) -> list[dict[str, Any]]:
        ring = await manager.keyring()
        now = datetime.now(UTC)
        return [_describe(key, ring, now) for key in reversed(ring.keys)]

    rows: list[dict[str, Any]] = _run(settings, work)
    if as_json:
        typer.echo(json.dumps({"keys": rows}, indent=2))
        return
    columns = ("kid", "alg", "state", "signing", "published", "created_at", "publish_until")
    table = [[str(row[c] if row[c] is not None else "-") for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _report(step: Rotation, manager: KeyManager, min_next_age: float) -> None:
    if step.added:
        typer.echo(f"added next key {step.added}: published in JWKS now, signing nothing yet")
        typer.echo(f"run 'certbound keys rotate' again in {min_next_age:g} s or later to make it active")
    if step.activated:
        typer.echo(f"activated key {step.activated}: new tokens are signed with it")
    for kid in step.retired:
        typer.echo(f"retired key {kid}: published for {manager.max_token_lifetime.total_seconds():g} s more")


@app.command()
def rotate(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    kek_file: KekFileOpt = None,
    min_next_age: Annotated[
        float, typer.Option(min=0, help="Seconds the next key must have been published before activation.")
    ] = DEFAULT_MIN_NEXT_AGE,
    activate_after: Annotated[
        float | None, typer.Option(min=0, help="Both steps now: add the next key, wait SECONDS, activate it.")
    ] = None,
    alg: Annotated[
        str | None,
        typer.Option(help="The algorithm whose key to rotate (default: signing_alg; RS256 signs ID tokens)."),
    ] = None,
) -> None:
    """One rotation step: add a next key (published, not signing), or activate the next key."""
    settings = _settings(config, data_dir, database_url, kek_file)
    if alg is not None and alg not in (settings.signing_alg, *settings.id_token_signing_algs):
        offered = ", ".join(dict.fromkeys((settings.signing_alg, *settings.id_token_signing_algs)))
        _fail(f"--alg {alg}: this server signs with {offered}")

    async def work(store: SqlStore, manager: KeyManager, sealer: Sealer) -> None:
        if activate_after is None:
            await _check_next_opens(store, sealer)
            step = await manager.rotate(datetime.now(UTC), min_next_age=_seconds(min_next_age), alg=alg)
            _report(step, manager, min_next_age)
            return
        keys = await store.list_signing_keys()
        which = alg or settings.signing_alg
        nexts = sorted(
            (k for k in keys if k.state == "next" and k.alg == which), key=lambda k: (k.created_at, k.kid)
        )
        if nexts:
            created = nexts[-1].created_at
            typer.echo(f"next key {nexts[-1].kid} exists already")
        else:
            step = await manager.rotate(datetime.now(UTC), alg=alg)
            _report(Rotation(added=step.added), manager, activate_after)
            created = datetime.now(UTC)
        wait = (created + _seconds(activate_after) - datetime.now(UTC)).total_seconds()
        if wait > 0:
            typer.echo(f"waiting {wait:.0f} s for relying parties to fetch it ...")
            await asyncio.sleep(wait)
        await _check_next_opens(store, sealer)
        step = await manager.rotate(datetime.now(UTC), min_next_age=_seconds(activate_after), alg=alg)
        _report(step, manager, 0)

    _run(settings, work)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


async def _check_next_opens(store: SqlStore, sealer: Sealer) -> None:
    """A key about to sign must open with this KEK (the server's, as the active key proved)."""
    for key in await store.list_signing_keys():
        if key.state == "next":
            JwsSigner(key, sealer)
