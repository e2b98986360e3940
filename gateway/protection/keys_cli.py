"""`casebridge keys new | status | rotate`: the operator's tools for encryption keys."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from gateway.errors import CaseBridgeError
from gateway.protection.crypto import Keyring, key_file_path, keyring, new_key_line, use_keyring
from gateway.protection.keys import (
    COLUMNS,
    Batch,
    ColumnStatus,
    key_status,
    keys_in_use,
    missing_keys,
    removable_keys,
    rotate,
)
from gateway.settings import Settings, get_settings
from gateway.store.db import make_engine, make_sessionmaker

keys_app = typer.Typer(
    help="Encryption keys: add one, see which keys the stored data needs, re-encrypt.",
    no_args_is_help=True)


@contextmanager
def cli_errors() -> Iterator[None]:
    """A configuration, settings, file or database error as one line on stderr, exit 2."""
    try:
        yield
    except CaseBridgeError as error:
        _fail(str(error))
    except ValidationError as error:
        _fail("settings: " + "; ".join(
            f"CASEBRIDGE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}"
            for e in error.errors()))
    except OSError as error:
        _fail(f"{error.filename}: {error.strerror}" if error.filename else str(error))
    except SQLAlchemyError as error:
        # The first line names the failing statement's kind; parameters are never shown.
        _fail(f"database: {str(error).splitlines()[0]}")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@contextmanager
def open_store(*, keys: str = "required") -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    """The settings and sessions on the configured store, with the configured key ring in use.

    `keys="if-configured"` is for commands that read no encrypted value (the audit trail):
    they run without a key, so an auditor needs none.
    """
    settings = get_settings()
    if keys == "required" or settings.key_file is not None or settings.keys is not None:
        use_keyring(Keyring.from_settings(settings))
    engine = make_engine(settings.database_url)
    try:
        yield settings, make_sessionmaker(engine)
    finally:
        engine.dispose()


def default_key_id() -> str:
    """`k<YYYYMMDD>-<4 hex>`: sorts by date, and two keys made the same day differ."""
    return f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(2)}"


@keys_app.command("new")
def new(
    key_id: Annotated[str | None, typer.Option(
        "--id", help="Id of the new key (default k<YYYYMMDD>-<4 hex>)")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="Key file to add it to (default CASEBRIDGE_KEY_FILE)")] = None,
) -> None:
    """Add a new key to the key file; as its last line it becomes the active key."""
    with cli_errors():
        settings = get_settings()
        path = file or settings.key_file
        if path is None:
            _fail("no key file: set CASEBRIDGE_KEY_FILE or pass --file")
            return
        key_id = key_id or default_key_id()
        line = new_key_line(key_id)
        existing = path.read_text() if path.exists() else ""
        if existing.strip() and key_id in Keyring.parse(existing, source=str(path)).keys:
            _fail(f"{path} has a key '{key_id}' already: choose another --id")
        key_file_path(path)
        _append_line(path, line, newline_first=bool(existing) and not existing.endswith("\n"))
        Keyring.parse(path.read_text(), source=str(path))
    typer.echo(f"new key {key_id} added to {path}")
    if path.stat().st_mode & 0o077:
        typer.echo(f"warning: {path} can be read by others than its owner: chmod 600 it",
                   err=True)
    if settings.active_key is not None:
        typer.echo(f"CASEBRIDGE_ACTIVE_KEY names {settings.active_key}: set it to {key_id} "
                   "to make the new key the active one")
    elif settings.keys is not None:
        typer.echo("CASEBRIDGE_KEYS is set too and its last key stays the active one: set "
                   f"CASEBRIDGE_ACTIVE_KEY={key_id} to make the new key active")
    if existing.strip():
        typer.echo("back up the key file now (data under a lost key cannot be recovered), "
                   "restart every gateway process, then run `casebridge keys rotate`")
    else:
        typer.echo("back up the key file now (data under a lost key cannot be recovered); "
                   "data stored before encryption existed is encrypted by `casebridge keys "
                   "rotate`")


def _append_line(path: Path, line: str, *, newline_first: bool) -> None:
    """Append `line` and make sure it is on disk before saying so."""
    with path.open("a") as handle:
        handle.write(("\n" if newline_first else "") + line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


@keys_app.command("status")
def status() -> None:
    """How many stored values are under each key, which keys are needed, which are not."""
    with cli_errors(), open_store() as (_, sessions):
        ring = keyring()
        with sessions() as session:
            counts = key_status(session)
    typer.echo(f"active key: {ring.active}")
    for name in COLUMNS:
        typer.echo(f"{name}: {_describe(counts[name])}")
    needed = sorted(keys_in_use(counts) | {ring.active})
    typer.echo(f"keys still needed: {', '.join(needed)}")
    behind = sum(n for column in counts.values() for k, n in column["keys"].items()
                 if k != ring.active) + sum(c["unencrypted"] for c in counts.values())
    if behind:
        typer.echo(f"{behind} values are not under {ring.active}: run `casebridge keys rotate`")
    removable = removable_keys(counts, ring)
    if removable:
        typer.echo(f"{_keys(removable)} no stored value needs: {_it(removable)} can be "
                   "removed from the key file")
    missing = missing_keys(counts, ring)
    if missing:
        typer.echo(f"{_keys(missing)} not in the key ring: the values under {_it(missing)} "
                   "cannot be read; put the key back in the key file", err=True)
        raise typer.Exit(1)


def _describe(column: ColumnStatus) -> str:
    parts = [f"{n} under {k}" for k, n in column["keys"].items()]
    if column["unencrypted"]:
        parts.append(f"{column['unencrypted']} unencrypted")
    return ", ".join(parts) or "no values"


def _keys(ids: list[str]) -> str:
    return ("keys " if len(ids) > 1 else "key ") + ", ".join(ids)


def _it(ids: list[str]) -> str:
    return "they" if len(ids) > 1 else "it"


@keys_app.command("rotate")
def rotate_command(
    batch: Annotated[int, typer.Option(
        min=1, help="Values re-encrypted and committed together")] = 500,
) -> None:
    """Re-encrypt every stored value that is not under the active key, batch by batch."""

    def progress(done: Batch) -> None:
        typer.echo(f"{done.column}: {done.count} re-encrypted ({done.done} of {done.left})")

    with cli_errors(), open_store() as (_, sessions):
        ring = keyring()
        typer.echo(f"re-encrypting under key {ring.active}, {batch} values a batch")
        report = rotate(sessions, batch=batch, on_batch=progress)
        with sessions() as session:
            counts = key_status(session)
    if report.total:
        typer.echo(f"{report.total} values re-encrypted ("
                   + ", ".join(f"{name} {n}" for name, n in report.rotated.items() if n)
                   + f") in {report.batches} batches, {report.seconds:.1f} s")
    else:
        typer.echo(f"nothing to re-encrypt ({report.seconds:.1f} s)")
    behind = [f"{n} in {name} under {k}" for name in COLUMNS
              for k, n in counts[name]["keys"].items() if k != ring.active]
    behind += [f"{c['unencrypted']} in {name} unencrypted" for name, c in counts.items()
               if c["unencrypted"]]
    if behind:
        typer.echo(f"not yet under {ring.active}: {', '.join(behind)}, written during the "
                   "rotation by a gateway process still on the old key file: restart it "
                   "and run the rotation again", err=True)
        raise typer.Exit(1)
    removable = removable_keys(counts, ring)
    typer.echo(f"every value is under key {ring.active}: " + (
        f"{_keys(removable)} can be removed from the key file" if removable
        else "no other key is in the key ring"))
    if removable:
        typer.echo(f"keep a copy of {_keys(removable)} for as long as you keep database "
                   "backups made before this rotation: those backups need it")
