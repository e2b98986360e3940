"""Key rotation on a real store: every record stays readable, and nothing is stored in clear.

Each test has a store of its own (rotation rewrites every row, and would otherwise leave the
other tests' rows under a key they do not hold), and puts back the key ring it found.
"""

import json
import re
import sqlite3
import stat
import uuid
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import flag_modified
from typer.testing import CliRunner

from gateway.casework import list_referrals
from gateway.partners import register_partner
from gateway.protection import audit, crypto, keys
from gateway.protection.crypto import DecryptionError, Keyring, new_key_line, use_keyring
from gateway.protection.identifiers import search_terms, store_digests
from gateway.protection.keys import Batch, key_status, rotate
from gateway.protection.keys_cli import keys_app
from gateway.settings import get_settings
from gateway.store.db import unit_of_work
from gateway.store.models import (
    AuditEntry,
    DeadLetter,
    Delivery,
    FhirSubscription,
    IdentifierDigest,
    Partner,
    Referral,
    StatusEvent,
)

KEY_A, KEY_B = new_key_line("kA"), new_key_line("kB")
PERSONAL = ("Zawadi", "Fictionalson", "2014-03-09")


@pytest.fixture
def use_keys(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Keyring]:
    """Put a key ring in use for this test; the ring in use before comes back after it."""
    monkeypatch.setattr(crypto, "_ring", crypto._ring)

    def use(*lines: str, active: str | None = None) -> Keyring:
        ring = Keyring.parse("\n".join(lines), active=active)
        use_keyring(ring)
        return ring

    return use


@pytest.fixture
def add_referrals(sessions: sessionmaker[Session], make_referral: Callable[..., dict[str, Any]]
                  ) -> Callable[..., list[str]]:
    """Store `count` referrals about the fictional child, each with two status events."""

    def add(count: int, *, connected: bool = False) -> list[str]:
        suffix = uuid.uuid4().hex[:8]
        sender, receiver = f"primero-{suffix}", f"progres-{suffix}"
        ids = []
        with unit_of_work(sessions) as session:
            register_partner(session=session, partner_id=sender, name="Primero", system="primero")
            progres, _ = register_partner(session=session, partner_id=receiver,
                                          name="proGres", system="progres")
            if connected:  # the credentials the gateway uses at the receiver's system
                progres.connection = {"base_url": "http://127.0.0.1:9", "credentials": {
                    "client_id": "casebridge", "client_secret": "sandbox-secret"}}
            for _ in range(count):
                referral = Referral(
                    kind="referral", sender_id=sender, receiver_id=receiver, status="accepted",
                    correlation_id=uuid.uuid4().hex, request_hash="0" * 64,
                    content=make_referral(sender, receiver))
                session.add(referral)
                session.add_all([
                    StatusEvent(referral=referral, seq=1, to_state="submitted", actor="sender",
                                content={}),
                    StatusEvent(referral=referral, seq=2, from_state="submitted",
                                to_state="accepted", actor="receiver",
                                content={"note": "Zawadi Fictionalson seen with her aunt"}),
                ])
                session.flush()
                store_digests(session, referral)
                ids.append(referral.id)
        return ids

    return add


def documents(sessions: sessionmaker[Session]) -> dict[str, dict[str, Any]]:
    """Every stored document, decrypted, by table and id."""
    with sessions() as session:
        found = {f"referral {r.id}": r.content for r in session.scalars(select(Referral))}
        found.update({f"event {e.id}": e.content for e in session.scalars(select(StatusEvent))})
        found.update({f"partner {p.id}": p.connection for p in session.scalars(
            select(Partner).where(Partner.connection.is_not(None)))})
    return found


def stored_text(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Every stored content value as the database holds it, by table and id."""
    with sessions() as session:
        return {f"{table} {row_id}": content for table in ("referrals", "status_events")
                for row_id, content in session.execute(text(f"SELECT id, content FROM {table}"))}


def raw_store(engine: Engine) -> str:
    """What someone with the database files or a SQL prompt (but no key) can read."""
    if engine.dialect.name == "sqlite":
        database = Path(str(engine.url.database))
        return "".join(path.read_bytes().decode("latin-1") for path in
                       (database, database.with_name(database.name + "-wal"),
                        database.with_name(database.name + "-shm")) if path.exists())
    with engine.connect() as connection:
        tables = connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
        return "\n".join(row for table in tables for row in connection.execute(
            text(f'SELECT CAST(t AS text) FROM "{table}" AS t')).scalars())


# The columns holding what partners answered or sent that could not be taken, and where
# FHIR partners' notifications go: empty unless a test puts something there.
NO_ANSWERS = {name: {"keys": {}, "unencrypted": 0} for name in (
    "deliveries.partner_error", "dead_letters.change", "dead_letters.partner_error",
    "fhir_subscriptions.channel")}


def rotations(sessions: sessionmaker[Session]) -> list[AuditEntry]:
    with sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "keys.rotate")
                                    .order_by(AuditEntry.seq)))


def test_rotation_keeps_every_record_readable_under_the_new_key_alone(
        sessions, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    ids = add_referrals(5, connected=True)
    before = documents(sessions)
    assert len(before) == 16
    new = use_keys(KEY_A, KEY_B)
    seen: list[Batch] = []

    report = rotate(sessions, batch=4, on_batch=seen.append)

    assert report.key_id == "kB" and report.rotated == {
        "referrals.content": 5, "status_events.content": 10, "partners.connection": 1,
        **dict.fromkeys(NO_ANSWERS, 0)}
    assert [(b.column, b.count, b.done, b.left) for b in seen] == [
        ("referrals.content", 4, 4, 5), ("referrals.content", 1, 5, 5),
        ("status_events.content", 4, 4, 10), ("status_events.content", 4, 8, 10),
        ("status_events.content", 2, 10, 10), ("partners.connection", 1, 1, 1)]
    with sessions() as session:
        assert key_status(session) == {
            "referrals.content": {"keys": {"kB": 5}, "unencrypted": 0},
            "status_events.content": {"keys": {"kB": 10}, "unencrypted": 0},
            "partners.connection": {"keys": {"kB": 1}, "unencrypted": 0}, **NO_ANSWERS}
    use_keys(KEY_B)  # kA is gone: only what was re-encrypted can still be read
    assert documents(sessions) == before
    with sessions() as session:
        for referral_id in ids:
            referral = session.get(Referral, referral_id)
            sender = session.get(Partner, referral.sender_id)
            for term in search_terms(referral.content):
                found = list_referrals(session=session, partner=sender, identifier=term)
                assert [r.id for r in found.items] == [referral_id]
                assert session.scalar(select(IdentifierDigest.referral_id).where(
                    IdentifierDigest.digest == new.digest(term))) == referral_id
        assert audit.verify(session).ok
    entries = rotations(sessions)
    assert [(e.actor, e.detail) for e in entries] == [
        ("system:keys-rotate", {"column": "referrals.content", "count": 4, "to_key": "kB"}),
        ("system:keys-rotate", {"column": "referrals.content", "count": 1, "to_key": "kB"}),
        ("system:keys-rotate", {"column": "status_events.content", "count": 4, "to_key": "kB"}),
        ("system:keys-rotate", {"column": "status_events.content", "count": 4, "to_key": "kB"}),
        ("system:keys-rotate", {"column": "status_events.content", "count": 2, "to_key": "kB"}),
        ("system:keys-rotate", {"column": "partners.connection", "count": 1, "to_key": "kB"})]


def test_partner_answers_and_changes_kept_for_redrive_are_rotated_too(
        sessions, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    [referral_id] = add_referrals(1)
    answer = {"status": 400, "code": "0x0", "message": "Zawadi Fictionalson exists already"}
    change = {"kind": "status", "native_id": "42", "record": {"notes": "Zawadi seen"}}
    hook = {"reason": "desk", "endpoint": "https://clinic.example/hook", "payload": None,
            "header": ["Authorization: Bearer hook-secret"]}
    with unit_of_work(sessions) as session:
        referral = session.get(Referral, referral_id)
        session.add(Delivery(referral_id=referral_id, partner_id=referral.receiver_id,
                             attempt=1, outcome="permanent", partner_error=answer))
        session.add(DeadLetter(message_id=f"inbound:{uuid.uuid4().hex}", direction="inbound",
                               partner_id=referral.sender_id, reason="take-failed",
                               change=change, partner_error=answer))
        session.add(FhirSubscription(
            partner_id=referral.sender_id, status="active", criteria="Task", channel=hook,
            events_since_start=0, error_count=0))
    use_keys(KEY_A, KEY_B)

    report = rotate(sessions)

    assert {name: report.rotated[name] for name in NO_ANSWERS} == dict.fromkeys(NO_ANSWERS, 1)
    use_keys(KEY_B)  # kA is gone: the operator still reads what the partner said
    with sessions() as session:
        status = key_status(session)
        assert {name: status[name] for name in NO_ANSWERS} == dict.fromkeys(
            NO_ANSWERS, {"keys": {"kB": 1}, "unencrypted": 0})
        assert session.scalar(select(Delivery.partner_error)) == answer
        letter = session.scalar(select(DeadLetter))
        assert letter.change == change and letter.partner_error == answer
        assert session.scalar(select(FhirSubscription.channel)) == hook


def test_a_second_rotation_changes_nothing(sessions, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    add_referrals(3)
    use_keys(KEY_A, KEY_B)
    rotate(sessions)
    stored, entries = stored_text(sessions), len(rotations(sessions))

    again = rotate(sessions)

    assert again.total == 0 and again.batches == 0
    assert stored_text(sessions) == stored
    assert len(rotations(sessions)) == entries == 2


def test_an_interrupted_rotation_keeps_what_it_committed_and_resumes(
        sessions, use_keys, add_referrals, monkeypatch) -> None:
    use_keys(KEY_A)
    add_referrals(5)
    before = documents(sessions)
    use_keys(KEY_A, KEY_B)
    calls = {"n": 0}

    def crash_in_the_second_batch(session: Session, referral: Referral) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt  # the operator's Ctrl-C, in the middle of batch 2
        store_digests(session, referral)

    monkeypatch.setattr(keys, "store_digests", crash_in_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        rotate(sessions, batch=4)
    monkeypatch.undo()
    use_keys(KEY_A, KEY_B)

    with sessions() as session:
        assert key_status(session) == {
            "referrals.content": {"keys": {"kA": 1, "kB": 4}, "unencrypted": 0},
            "status_events.content": {"keys": {"kA": 10}, "unencrypted": 0},
            "partners.connection": {"keys": {}, "unencrypted": 0}, **NO_ANSWERS}
    assert len(rotations(sessions)) == 1

    resumed = rotate(sessions, batch=4)

    assert resumed.rotated == {"referrals.content": 1, "status_events.content": 10,
                               "partners.connection": 0, **dict.fromkeys(NO_ANSWERS, 0)}
    use_keys(KEY_B)
    assert documents(sessions) == before
    with sessions() as session:
        assert audit.verify(session).ok


def test_unencrypted_rows_from_before_encryption_are_encrypted(
        sessions, engine, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    ids = add_referrals(3)
    before = documents(sessions)
    with unit_of_work(sessions) as session:  # as the store held them before migration 0003
        for referral_id in ids[:2]:
            session.execute(text("UPDATE referrals SET content = :plain WHERE id = :id"), {
                "plain": json.dumps(before[f"referral {referral_id}"]), "id": referral_id})
        session.execute(text("UPDATE status_events SET content = '{}' WHERE seq = 1"))
    with sessions() as session:
        assert key_status(session) == {
            "referrals.content": {"keys": {"kA": 1}, "unencrypted": 2},
            "status_events.content": {"keys": {"kA": 3}, "unencrypted": 3},
            "partners.connection": {"keys": {}, "unencrypted": 0}, **NO_ANSWERS}
    assert documents(sessions) == before
    assert "Fictionalson" in raw_store(engine)

    use_keys(KEY_A, KEY_B)
    assert rotate(sessions).total == 9

    use_keys(KEY_B)
    assert documents(sessions) == before
    assert all(value.startswith("cb1:kB:") for value in stored_text(sessions).values())
    if engine.dialect.name == "sqlite":
        # The plain text may linger in the file's free pages until it is rebuilt.
        with engine.connect() as connection:
            connection.exec_driver_sql("VACUUM")
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert not [word for word in PERSONAL if word in raw_store(engine)]


def test_the_raw_store_holds_no_name_before_or_after_rotation(
        sessions, engine, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    add_referrals(3)
    assert "Zawadi" in json.dumps(documents(sessions))
    assert not [word for word in PERSONAL if word in raw_store(engine)]

    use_keys(KEY_A, KEY_B)
    rotate(sessions, batch=2)

    assert not [word for word in PERSONAL if word in raw_store(engine)]
    assert "cb1:kB:" in raw_store(engine)


def test_values_under_a_key_missing_from_the_ring_stop_the_rotation_before_any_change(
        sessions, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    add_referrals(2)
    stored = stored_text(sessions)
    use_keys(KEY_B)

    with pytest.raises(DecryptionError) as caught:
        rotate(sessions)

    assert str(caught.value) == (
        "stored values are encrypted under key 'kA' (2 in referrals.content, 4 in "
        "status_events.content), not in the key ring: put it back in CASEBRIDGE_KEY_FILE and "
        "run the rotation again; nothing was changed")
    assert stored_text(sessions) == stored and rotations(sessions) == []


def test_a_value_that_fails_authentication_stops_the_rotation_naming_its_row(
        sessions, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    first, second = add_referrals(2)
    with unit_of_work(sessions) as session:  # an event's value pasted into a referral
        moved = session.execute(text(
            "SELECT content FROM status_events WHERE referral_id = :id AND seq = 2"),
            {"id": second}).scalar_one()
        session.execute(text("UPDATE referrals SET content = :moved WHERE id = :id"),
                        {"moved": moved, "id": second})
    stored = stored_text(sessions)
    use_keys(KEY_A, KEY_B)

    with pytest.raises(DecryptionError, match=f"referrals.content row {second}: a value under "
                                              "key 'kA' fails authentication"):
        rotate(sessions, batch=10)

    assert stored_text(sessions) == stored


def test_a_batch_holds_its_rows_against_other_writers_until_it_commits(
        sessions, engine, use_keys, add_referrals, monkeypatch) -> None:
    use_keys(KEY_A)
    first, *_ = add_referrals(2)
    use_keys(KEY_A, KEY_B)
    refused: list[str] = []  # after the batch read its rows, before it writes them

    def write_meanwhile(row: object, key: str) -> None:
        if not refused:
            refused.append(try_to_change(engine, first))
        flag_modified(row, key)

    monkeypatch.setattr(keys, "flag_modified", write_meanwhile)
    rotate(sessions)

    assert refused == ["refused"]


def try_to_change(engine: Engine, referral_id: str) -> str:
    """Change a referral from another connection, as another process would; waits 0.2 s."""
    try:
        if engine.dialect.name == "sqlite":
            with closing(sqlite3.connect(str(engine.url.database), timeout=0.2)) as other, \
                    other:
                other.execute("UPDATE referrals SET status = 'closed' WHERE id = ?",
                              (referral_id,))
        else:
            with engine.connect() as connection:
                connection.exec_driver_sql("SET lock_timeout = '200ms'")
                connection.execute(text("UPDATE referrals SET status = 'closed' WHERE id = :id"),
                                   {"id": referral_id})
                connection.commit()
    except (sqlite3.OperationalError, DBAPIError):
        return "refused"
    return "changed"


# -- the command line ---------------------------------------------------------------------

def invoke(*args: str, **env: str | None) -> Any:
    """`casebridge keys …` in-process; env None unsets a variable the test run may set."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(keys_app, list(args), env={
            "CASEBRIDGE_KEYS": None, "CASEBRIDGE_KEY_FILE": None,
            "CASEBRIDGE_ACTIVE_KEY": None,
            **{f"CASEBRIDGE_{k.upper()}": v for k, v in env.items()}})
    finally:
        get_settings.cache_clear()


def test_keys_new_makes_a_private_key_file_and_prints_the_id_never_the_key(
        tmp_path, use_keys) -> None:
    path = tmp_path / "secrets" / "keys"

    made = invoke("new", key_file=str(path))
    again = invoke("new", "--id", "k-second", key_file=str(path))

    assert made.exit_code == 0 and again.exit_code == 0, made.output + again.output
    first_id = re.fullmatch(r"k\d{8}-[0-9a-f]{4}", made.stdout.split()[2])
    assert first_id is not None
    assert made.stdout.startswith(f"new key {first_id[0]} added to {path}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == [first_id[0], "k-second"]
    for line in lines:
        assert line.split(":")[1] not in made.output + again.output
    assert Keyring.parse(path.read_text()).active == "k-second"
    beside = invoke("new", "--id", "k-third", key_file=str(path), keys=KEY_A)
    assert ("CASEBRIDGE_KEYS is set too and its last key stays the active one: set "
            "CASEBRIDGE_ACTIVE_KEY=k-third to make the new key active") in beside.stdout


def test_keys_new_refuses_without_a_file_or_with_an_id_taken(tmp_path, use_keys) -> None:
    nowhere = invoke("new")
    assert nowhere.exit_code == 2
    assert nowhere.stderr == "error: no key file: set CASEBRIDGE_KEY_FILE or pass --file\n"
    path = tmp_path / "keys"
    assert invoke("new", "--id", "k1", "--file", str(path)).exit_code == 0
    taken = invoke("new", "--id", "k1", "--file", str(path))
    assert taken.exit_code == 2 and "has a key 'k1' already" in taken.stderr
    bad = invoke("new", "--id", "no good", "--file", str(path))
    assert bad.exit_code == 2 and bad.stderr.startswith("error: key id 'no good' must be")
    assert len(path.read_text().splitlines()) == 1


def test_keys_status_and_rotate_say_which_keys_are_needed(
        tmp_path, store_url, use_keys, add_referrals) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(KEY_A + "\n")
    use_keys(KEY_A)
    add_referrals(3)
    assert invoke("new", "--id", "kB", key_file=str(key_file)).exit_code == 0
    env = {"database_url": store_url, "key_file": str(key_file)}

    status = invoke("status", **env)
    rotated = invoke("rotate", "--batch", "2", **env)
    after = invoke("status", **env)

    assert status.exit_code == 0, status.output
    assert status.stdout == (
        "active key: kB\n"
        "referrals.content: 3 under kA\n"
        "status_events.content: 6 under kA\n"
        "partners.connection: no values\n"
        "deliveries.partner_error: no values\n"
        "dead_letters.change: no values\n"
        "dead_letters.partner_error: no values\n"
        "fhir_subscriptions.channel: no values\n"
        "keys still needed: kA, kB\n"
        "9 values are not under kB: run `casebridge keys rotate`\n")
    assert rotated.exit_code == 0, rotated.output
    lines = rotated.stdout.splitlines()
    assert lines[:6] == [
        "re-encrypting under key kB, 2 values a batch",
        "referrals.content: 2 re-encrypted (2 of 3)",
        "referrals.content: 1 re-encrypted (3 of 3)",
        "status_events.content: 2 re-encrypted (2 of 6)",
        "status_events.content: 2 re-encrypted (4 of 6)",
        "status_events.content: 2 re-encrypted (6 of 6)"]
    assert re.fullmatch(r"9 values re-encrypted \(referrals.content 3, status_events.content 6\)"
                        r" in 5 batches, \d+\.\d s", lines[6])
    assert lines[7] == "every value is under key kB: key kA can be removed from the key file"
    assert after.stdout == (
        "active key: kB\n"
        "referrals.content: 3 under kB\n"
        "status_events.content: 6 under kB\n"
        "partners.connection: no values\n"
        "deliveries.partner_error: no values\n"
        "dead_letters.change: no values\n"
        "dead_letters.partner_error: no values\n"
        "fhir_subscriptions.channel: no values\n"
        "keys still needed: kB\n"
        "key kA no stored value needs: it can be removed from the key file\n")


def test_keys_commands_fail_in_one_line_when_a_key_is_missing(
        tmp_path, store_url, use_keys, add_referrals) -> None:
    use_keys(KEY_A)
    add_referrals(1)
    env = {"database_url": store_url, "keys": KEY_B}

    status = invoke("status", **env)
    rotated = invoke("rotate", **env)
    no_key = invoke("status", database_url=store_url)

    assert status.exit_code == 1
    assert "key kA not in the key ring: the values under it cannot be read" in status.stderr
    assert rotated.exit_code == 2 and "Traceback" not in rotated.output
    assert rotated.stderr == (
        "error: stored values are encrypted under key 'kA' (1 in referrals.content, 2 in "
        "status_events.content), not in the key ring: put it back in CASEBRIDGE_KEY_FILE and "
        "run the rotation again; nothing was changed\n")
    assert no_key.exit_code == 2 and no_key.stderr.startswith("error: no encryption key: set")
