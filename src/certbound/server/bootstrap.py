"""Start-up work done once, in the parent process, before any worker starts.

`--dev` fills in what a newcomer has not configured (a dev PKI, a demo client, a registration token);
`initialize` migrates the store, makes sure a signing key exists and loads the clients file.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from certbound.config import Settings
from certbound.jose.keyring import KeyManager
from certbound.pki.devpki import DEMO_CLIENT_DN, DevPki, ensure_dev_pki
from certbound.sealing import Sealer, kek_from_text, load_kek, load_or_create_kek
from certbound.server.clients.file_clients import ClientsFileError, load_clients_file
from certbound.server.grants.scope import scope_catalogue
from certbound.server.users.accounts import create_user, set_password
from certbound.store.availability import is_unavailable
from certbound.store.interface import ClientExists
from certbound.store.sql import SqlStore, open_store

log = logging.getLogger("certbound")

#: Back-off of `--wait-for-database`: first pause, factor, longest pause (seconds).
WAIT_FIRST_S, WAIT_FACTOR, WAIT_LONGEST_S = 0.25, 2.0, 5.0

DEMO_CLIENT_ID = "demo-client"
#: The public client of the code flow that `--dev` declares, and where its redirect lands.
DEMO_APP_ID = "demo-app"
DEMO_APP_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEMO_USER = "alice"


@dataclass(frozen=True)
class DevSetup:
    """What `--dev` created, for the start-up banner."""

    pki: DevPki
    registration_token_file: Path
    clients_file: Path
    demo_password_file: Path


def apply_dev_defaults(settings: Settings) -> tuple[Settings, DevSetup]:
    """Create the dev PKI, demo client and registration token; fill in only what was not configured."""
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    pki = ensure_dev_pki(settings.dev_pki_dir)
    token_file = data / "registration-token"
    if not token_file.exists():
        _write_private(token_file, secrets.token_urlsafe(32) + "\n")
    clients_file = data / "dev-clients.toml"
    _write_private(clients_file, _demo_clients_toml())
    password_file = data / f"{DEMO_USER}-password"
    if not password_file.exists():
        _write_private(password_file, secrets.token_urlsafe(12) + "\n")
    update: dict[str, object] = {}
    if settings.tls_cert is None:
        update |= {"tls_cert": pki.server_cert, "tls_key": pki.server_key}
    if settings.client_ca is None:
        update["client_ca"] = pki.ca_cert
        dev_crl = pki.directory / "ca.crl"  # `certbound pki crl --out data/pki/ca.crl` publishes it
        reads_crls = settings.client_cert_revocation.endswith("crl")
        if not settings.client_ca_crls and dev_crl.is_file() and reads_crls:
            update["client_ca_crls"] = [str(dev_crl)]
    if settings.registration_token is None and settings.registration_token_file is None:
        update["registration_token_file"] = token_file
    if settings.clients_file is None:
        update["clients_file"] = clients_file
    return settings.model_copy(update=update), DevSetup(pki, token_file, clients_file, password_file)


def _demo_clients_toml() -> str:
    return (
        "# Written by `certbound serve --dev`: the demo client, authenticated by its certificate.\n"
        "[[client]]\n"
        f'client_id = "{DEMO_CLIENT_ID}"\n'
        'client_name = "certbound demo client"\n'
        'token_endpoint_auth_method = "tls_client_auth"\n'
        f'tls_client_auth_subject_dn = "{DEMO_CLIENT_DN}"\n'
        "tls_client_certificate_bound_access_tokens = true\n"
        'grant_types = ["client_credentials"]\n'
        'scope = "demo"\n'
        "\n"
        "# The demo app: a public client of the code flow (PKCE), for trying the login in a browser.\n"
        "[[client]]\n"
        f'client_id = "{DEMO_APP_ID}"\n'
        'client_name = "certbound demo app"\n'
        'token_endpoint_auth_method = "none"\n'
        'grant_types = ["authorization_code", "refresh_token"]\n'
        f'redirect_uris = ["{DEMO_APP_REDIRECT_URI}"]\n'
        'post_logout_redirect_uris = ["http://127.0.0.1:8765/"]\n'
        'scope = "demo offline_access"\n'
    )


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def open_sealer(settings: Settings) -> Sealer:
    """The sealer for secrets at rest, from `kek`, `kek_file`, or a KEK file created in the data dir."""
    if settings.kek is not None:
        return Sealer(kek_from_text(settings.kek.get_secret_value()))
    if settings.kek_file is not None:  # a configured file must exist: never invent a KEK in its place
        return Sealer(load_kek(settings.kek_file))
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Sealer(load_or_create_kek(settings.data_dir / "kek"))


async def ensure_demo_user(settings: Settings, dev: DevSetup) -> None:
    """`--dev`: the user alice, with the password in the data dir's ``alice-password`` (set again at
    every start, so the file is always right)."""
    password = dev.demo_password_file.read_text(encoding="utf-8").strip()
    store = open_store(settings.effective_database_url)
    try:
        if await set_password(store.users, DEMO_USER, password) is None:
            claims = {"name": "Alice Demo", "email": "alice@example.com", "email_verified": True}
            await create_user(store.users, DEMO_USER, password, claims)
    finally:
        await store.close()


class DatabaseUnavailable(Exception):
    """The configured database cannot be reached or migrated; the message is one line for the user."""


def _database_reason(exc: BaseException) -> str:
    """The driver's own first line (never the URL, which may hold a password)."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()
    return text[0] if text else type(cause).__name__


async def _migrate(store: SqlStore, wait_s: float) -> None:
    """Migrate, waiting up to `wait_s` seconds for a database that cannot be reached yet (it starts
    with certbound, or restarts): one warning line, then retries with back-off; DatabaseUnavailable
    once the time is up, or at once for an error that waiting would not cure."""
    deadline = time.monotonic() + wait_s
    pause = WAIT_FIRST_S
    warned = False
    while True:
        try:
            await store.migrate()
        except (SQLAlchemyError, OSError) as exc:
            left = deadline - time.monotonic()
            if not is_unavailable(exc) or left <= 0:
                waited = f" (waited {wait_s:g} s)" if warned else ""
                raise DatabaseUnavailable(
                    f"database_url: cannot open the database: {_database_reason(exc)}{waited}"
                ) from None
            if not warned:
                log.warning(
                    "database_url: cannot reach the database (%s); retrying for up to %g s "
                    "(wait_for_database)", _database_reason(exc), wait_s
                )
                warned = True
            await asyncio.sleep(min(pause, left))
            pause = min(pause * WAIT_FACTOR, WAIT_LONGEST_S)
        else:
            if warned:
                log.info("database_url: the database answers; starting")
            return


async def initialize(settings: Settings) -> None:
    """Migrate the store (waiting `wait_for_database` seconds for it to answer), make sure a signing
    key exists, and load the clients file."""
    store = open_store(settings.effective_database_url, fast_paths=settings.fast_paths)
    try:
        await _migrate(store, settings.wait_for_database)
        sealer = open_sealer(settings)
        keys = KeyManager(store, sealer, alg=settings.signing_alg, extra_algs=settings.id_token_signing_algs)
        await keys.ensure_keys(datetime.now(UTC))
        declared = []
        if settings.clients_file is not None:
            declared = load_clients_file(
                settings.clients_file,
                sealer=sealer,
                allowed_scopes=scope_catalogue(settings),
                id_token_algs=settings.id_token_signing_algs,
            )
        try:
            await store.sync_file_clients(declared)
        except ClientExists as exc:
            raise ClientsFileError(f"clients_file: {exc}") from None
    finally:
        await store.close()
