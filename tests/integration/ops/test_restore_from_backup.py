"""Restoring from a backup, as docs/operations.md says ("Runbook 4: restoring from a backup").

On each database: referrals come in through the real API; the store is backed up with the
runbook's own tool (`pg_dump -Fc`, or SQLite's online backup); more referrals come in and
the relay publishes everything; then the backup is restored into an empty database (on
PostgreSQL one owned by an unprivileged role, which the restore and the gateway connect as,
as the runbook says) and the runbook's commands are run (`db upgrade`, `keys status`, `audit
verify`). The referrals from before the backup read back decrypted; those from after it
answer 404, which is how an API partner finds out it must submit them again; the outbox rows
the backup holds as unpublished are published again (receivers' adapters find their earlier
record by the gateway's referral id); the audit trail ends where the backup was taken, so a
head written down after it no longer matches; and without the key file the restored data
cannot be read.
"""

import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text

from gateway.partners import register_partner
from gateway.protection.crypto import new_key_line
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from servers import PG_ADMIN_URL, LiveServer, drop_pg_database, fresh_pg_database, key
from sharing import write_agreement


def libpq(url: str) -> str:
    """The URL PostgreSQL's own tools take: `postgresql://…` without SQLAlchemy's driver."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


@contextmanager
def empty_database(kind: str, folder: Path, name: str) -> Iterator[str]:
    """An empty database (not migrated: a restore fills it), dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / name}"
        return
    url = fresh_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@contextmanager
def gateway_owned_database() -> Iterator[str]:
    """As the runbook makes it: `createdb --owner=<the gateway's user>`, an unprivileged
    role, which the restore and the gateway then connect as. Dropped afterwards."""
    role = f"casebridge_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{role}" OWNER "{role}"')
    server = PG_ADMIN_URL.rsplit("/", 1)[0].split("://", 1)[1].split("@", 1)[1]
    try:
        yield f"postgresql+psycopg://{role}@{server}/{role}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def back_up(url: str, backup: Path) -> None:
    """The runbook's backup, taken while the gateway serves."""
    if url.startswith("sqlite"):
        # SQLite's online backup API (what `sqlite3 casebridge.db ".backup …"` calls): a
        # consistent copy while others write, the WAL's committed pages included.
        with closing(sqlite3.connect(sqlite_path(url))) as source, \
                closing(sqlite3.connect(backup)) as target:
            source.backup(target)
        return
    subprocess.run(["pg_dump", "--format=custom", f"--file={backup}", libpq(url)],
                   check=True, capture_output=True, timeout=60)


def restore(backup: Path, url: str) -> None:
    """The runbook's restore into an empty database, every CaseBridge process stopped."""
    if url.startswith("sqlite"):
        shutil.copyfile(backup, sqlite_path(url))
        return
    subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={libpq(url)}",
                    str(backup)], check=True, capture_output=True, timeout=60)


def head_of(output: str) -> str:
    """`SEQ:HASH` from `audit verify`'s last line (`… chain intact, head SEQ HASH`)."""
    seq, digest = output.strip().splitlines()[-1].split("head ", 1)[1].split()
    return f"{seq}:{digest}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        # The runbook's own tools: Debian's postgresql package (which `make test` installs
        # where PostgreSQL is missing) brings them; without them the runbook cannot be run.
        missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
        assert not missing, f"{missing} not installed: install postgresql-client"
    return str(request.param)


def test_a_restored_backup_holds_what_it_held_and_nothing_after(
        kind: str, tmp_path: Path, cli: Callable[..., Any],
        make_referral: Callable[..., dict[str, Any]]) -> None:
    agreements = tmp_path / "agreements"
    suffix = uuid.uuid4().hex[:8]
    sender, receiver = f"primero-{suffix}", f"progres-{suffix}"
    write_agreement(agreements, f"restore-{suffix}", [sender, receiver])
    backup = tmp_path / ("casebridge.db.backup" if kind == "sqlite" else "casebridge.dump")

    with empty_database(kind, tmp_path, "live.db") as live_url, \
            (empty_database(kind, tmp_path, "restored.db") if kind == "sqlite"
             else gateway_owned_database()) as restored_url:
        upgrade(live_url)
        live = make_engine(live_url)
        with unit_of_work(make_sessionmaker(live)) as session:
            _, api_key = register_partner(session=session, partner_id=sender, name="Primero",
                                          system="primero")
            register_partner(session=session, partner_id=receiver, name="proGres",
                             system="progres")

        sent: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}

        def submit(client: httpx.Client, again: str | None = None) -> str:
            document, headers = sent[again] if again else (make_referral(sender, receiver),
                                                           key())
            answer = client.post("/v1/referrals", json=document, headers=headers)
            assert answer.status_code == 201, answer.text
            sent[answer.json()["id"]] = (document, headers)
            return str(answer.json()["id"])

        settings = Settings(database_url=live_url, agreements_dir=agreements)
        with LiveServer(settings) as server, httpx.Client(
                base_url=server.url, timeout=10,
                headers={"Authorization": f"Bearer {api_key}"}) as client:
            before = [submit(client) for _ in range(2)]
            assert client.get(f"/v1/referrals/{before[0]}").status_code == 200
            back_up(live_url, backup)
            after = submit(client)
        with live.begin() as connection:  # the relay publishes everything, after the backup
            connection.execute(text("UPDATE outbox SET published_at = CURRENT_TIMESTAMP"))
        live.dispose()
        verified = cli("audit", "verify", database_url=live_url)
        assert verified.exit_code == 0, verified.output
        head_after_backup = head_of(verified.output)

        # Restore into an empty database, then the runbook's commands, in its order.
        restore(backup, restored_url)
        upgraded = cli("db", "upgrade", database_url=restored_url)
        assert upgraded.exit_code == 0, upgraded.output
        status = cli("keys", "status", database_url=restored_url)
        assert status.exit_code == 0, status.output
        assert "keys still needed: test-run" in status.output, status.output
        verified = cli("audit", "verify", database_url=restored_url)
        assert verified.exit_code == 0, verified.output
        assert "chain intact" in verified.output
        # The trail after the backup is gone: a head written down since no longer matches.
        anchored = cli("audit", "verify", "--expect-head", head_after_backup,
                       database_url=restored_url)
        assert anchored.exit_code == 1, anchored.output
        assert "beyond the trail's end" in anchored.output, anchored.output

        # Without the key file (another key only), the restored data cannot be read.
        keyless = cli("keys", "status", database_url=restored_url,
                      keys=new_key_line("not-the-backed-up-key"))
        assert keyless.exit_code == 1
        assert "test-run" in keyless.output and "not in the key ring" in keyless.output

        # Work done after the backup: outbox rows unpublished in it go out again.
        restored = make_engine(restored_url)
        with restored.connect() as connection:
            waiting = set(connection.scalars(text(
                "SELECT referral_id FROM outbox WHERE published_at IS NULL")))
        restored.dispose()
        assert waiting == set(before)

        settings = Settings(database_url=restored_url, agreements_dir=agreements)
        with LiveServer(settings) as server, httpx.Client(
                base_url=server.url, timeout=10,
                headers={"Authorization": f"Bearer {api_key}"}) as client:
            for referral_id in before:
                answer = client.get(f"/v1/referrals/{referral_id}")
                assert answer.status_code == 200, answer.text
                assert answer.json()["content"]["subject"]["given_name"] == "Zawadi"
            gone = client.get(f"/v1/referrals/{after}")
            assert gone.status_code == 404
            assert gone.json()["type"].endswith("/not-found")
            # Submitted again with its idempotency key (as the poller does with a partner
            # record it finds again), it is the same referral: receivers holding it already
            # recognise it by its id.
            assert submit(client, again=after) == after
