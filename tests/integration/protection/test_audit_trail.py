"""The audit trail on a real store: append-only, and every change to it is found.

Each test has a store of its own: several drop the append-only triggers and rewrite the
trail, as a database administrator could.
"""

import hashlib
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from gateway.protection import audit
from gateway.protection.audit_cli import audit_app
from gateway.settings import get_settings
from gateway.store.db import unit_of_work
from gateway.store.models import AuditEntry


def write_trail(sessions: sessionmaker[Session], count: int) -> list[AuditEntry]:
    """`count` entries, each in a transaction of its own, as the gateway writes them."""
    written = []
    for n in range(1, count + 1):
        with unit_of_work(sessions) as session:
            written.append(audit.record(
                session, actor=f"partner:primero-{n % 2}", action="referral.read",
                partner_id=f"primero-{n % 2}", referral_id=f"00000000-0000-0000-0000-{n:012}",
                correlation_id=f"corr-{n}", detail={"n": n, "fields": ["subject"]}))
    return written


def as_dba(engine: Engine, *statements: str) -> None:
    """Run statements with the append-only triggers dropped, as the database's owner can."""
    drop = (["DROP TRIGGER audit_log_append_only ON audit_log",
             "DROP TRIGGER audit_log_no_truncate ON audit_log"]
            if engine.dialect.name == "postgresql"
            else ["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"])
    with engine.begin() as connection:
        for statement in [*drop, *statements]:
            connection.execute(text(statement))


def verified(sessions: sessionmaker[Session]) -> audit.Verification:
    with sessions() as session:
        return audit.verify(session)


def test_recorded_entries_verify_as_an_intact_chain(sessions) -> None:
    written = write_trail(sessions, 5)

    result = verified(sessions)

    assert result.ok and result.breaks == []
    assert (result.entries, result.head_seq, result.head_hash) == (5, 5, written[-1].hash)
    assert [e.prev_hash for e in written[1:]] == [e.hash for e in written[:-1]]
    assert written[0].prev_hash == audit.GENESIS


def test_an_entry_that_is_not_an_action_is_refused(sessions) -> None:
    with sessions() as session, pytest.raises(ValueError, match="unknown audit action"):
        audit.record(session, actor="user:x", action="referral.delete_everything")


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 2",
    "DELETE FROM audit_log WHERE seq = 2",
    "DELETE FROM audit_log",
])
def test_the_database_refuses_to_update_or_delete_an_entry(sessions, engine, statement) -> None:
    write_trail(sessions, 3)

    with pytest.raises(DBAPIError, match="audit_log is append-only"), engine.begin() as db:
        db.execute(text(statement))

    assert verified(sessions).entries == 3 and verified(sessions).ok


def test_an_edited_entry_is_found_by_its_number(sessions, engine) -> None:
    write_trail(sessions, 5)

    as_dba(engine, "UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 3")

    result = verified(sessions)
    assert not result.ok
    assert [(b.seq, b.problem) for b in result.breaks] == [
        (3, "edited after it was written (hash does not match)")]


def test_an_edit_that_recomputes_its_own_hash_breaks_the_link_to_the_next(
        sessions, engine) -> None:
    write_trail(sessions, 5)
    with sessions() as session:
        entry = session.get(AuditEntry, 3)
        entry.actor = "user:nobody"
        forged = audit.entry_hash(entry)

    as_dba(engine, f"UPDATE audit_log SET actor = 'user:nobody', hash = '{forged}' "
                   "WHERE seq = 3")

    assert [b.seq for b in verified(sessions).breaks] == [4]


def test_a_removed_middle_entry_is_found(sessions, engine) -> None:
    write_trail(sessions, 5)

    as_dba(engine, "DELETE FROM audit_log WHERE seq = 3")

    result = verified(sessions)
    assert result.entries == 4
    assert [(b.seq, b.problem) for b in result.breaks] == [
        (4, "entry 3 missing before it"),
        (4, "does not follow the entry before it (an entry was removed, inserted or "
            "rewritten)")]


def test_a_removed_tail_is_found_through_the_head(sessions, engine) -> None:
    write_trail(sessions, 5)

    as_dba(engine, "DELETE FROM audit_log WHERE seq >= 4")

    result = verified(sessions)
    assert [(b.seq, b.problem) for b in result.breaks] == [
        (5, "the trail ends at entry 3 but its head names entry 5: entries were removed")]


def test_a_truncated_trail_is_found_through_the_head(sessions, engine) -> None:
    write_trail(sessions, 3)
    # PostgreSQL's TRUNCATE; SQLite's is a DELETE without WHERE (its truncate optimisation).
    truncate = ("TRUNCATE audit_log" if engine.dialect.name == "postgresql"
                else "DELETE FROM audit_log")

    # Refused like any DELETE; an owner who drops the triggers first is found.
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(truncate))
    as_dba(engine, truncate)

    assert [b.seq for b in verified(sessions).breaks] == [3]


# -- the command line ---------------------------------------------------------------------

def invoke(store_url: str, *args: str) -> Any:
    """`casebridge audit …` in-process, with no encryption key configured: none is needed."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(audit_app, list(args), env={
            "CASEBRIDGE_DATABASE_URL": store_url, "CASEBRIDGE_KEYS": None,
            "CASEBRIDGE_KEY_FILE": None, "CASEBRIDGE_ACTIVE_KEY": None})
    finally:
        get_settings.cache_clear()


def test_audit_verify_prints_the_head_to_anchor(sessions, store_url) -> None:
    written = write_trail(sessions, 4)

    result = invoke(store_url, "verify")

    assert result.exit_code == 0, result.output
    assert result.stdout == f"4 entries, chain intact, head 4 {written[-1].hash}\n"


def test_audit_verify_names_each_break_and_exits_1(sessions, engine, store_url) -> None:
    write_trail(sessions, 5)
    as_dba(engine, "UPDATE audit_log SET detail = '{\"n\": 99}' WHERE seq = 2")

    result = invoke(store_url, "verify")

    assert result.exit_code == 1
    assert result.stdout == ("entry 2: edited after it was written (hash does not match)\n"
                             "5 entries, chain BROKEN in 1 place\n")


def test_an_anchored_head_catches_a_removed_tail_with_a_rewritten_head(
        sessions, engine, store_url) -> None:
    written = write_trail(sessions, 5)
    anchor = f"5:{written[-1].hash}"  # printed by yesterday's verify, kept in a ticket
    assert invoke(store_url, "verify", "--expect-head", anchor).exit_code == 0
    write_trail(sessions, 1)  # the trail grows: an earlier anchor still holds
    assert invoke(store_url, "verify", "--expect-head", anchor).exit_code == 0

    as_dba(engine, "DELETE FROM audit_log WHERE seq >= 5",
           f"UPDATE audit_head SET seq = 4, hash = '{written[3].hash}'")

    assert invoke(store_url, "verify").exit_code == 0  # the trail alone looks whole
    result = invoke(store_url, "verify", "--expect-head", anchor)
    assert result.exit_code == 1
    assert result.stdout == (
        f"entry 5: the anchored head 5 {written[-1].hash} is beyond the trail's end at entry 4:"
        " entries were removed\n4 entries, chain BROKEN in 1 place\n")
    assert invoke(store_url, "verify", "--expect-head", "5:nothex").exit_code == 2


def test_an_anchored_head_catches_a_rewritten_trail(sessions, engine, store_url) -> None:
    written = write_trail(sessions, 3)
    with sessions() as session:  # entry 3 rewritten and the chain rehashed from there
        entry = session.get(AuditEntry, 3)
        entry.detail = {"n": 3, "fields": []}
        forged = audit.entry_hash(entry)
    as_dba(engine, f"UPDATE audit_log SET detail = '{{\"n\": 3, \"fields\": []}}', "
                   f"hash = '{forged}' WHERE seq = 3",
           f"UPDATE audit_head SET hash = '{forged}'")
    assert invoke(store_url, "verify").exit_code == 0

    result = invoke(store_url, "verify", "--expect-head", f"3:{written[2].hash}")

    assert result.exit_code == 1
    assert result.stdout.startswith(f"entry 3: differs from the anchored head 3 "
                                    f"{written[2].hash}: the trail was rewritten\n")


def auditor_verifies(lines: list[str]) -> list[str]:
    """What an auditor runs on an export, with nothing but hashlib and json."""
    problems, previous = [], None
    *records, closing = [json.loads(line) for line in lines]
    for record in records:
        claimed = record.pop("hash")
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        if hashlib.sha256(canonical.encode()).hexdigest() != claimed:
            problems.append(f"entry {record['seq']}: hash does not match")
        if previous is not None and record["prev_hash"] != previous:
            problems.append(f"entry {record['seq']}: does not follow the one before")
        previous = claimed
    if records and records[0]["seq"] == 1 and records[0]["prev_hash"] != "0" * 64:
        problems.append("entry 1: does not start the chain")
    if closing["exported"] != len(records):
        problems.append("count differs")
    if records and records[-1]["seq"] == closing["head"]["seq"] and (
            previous != closing["head"]["hash"]):
        problems.append("the head is not the last entry")
    return problems


def test_an_export_round_trips_and_an_auditor_can_verify_it_alone(
        sessions, store_url, tmp_path) -> None:
    written = write_trail(sessions, 6)

    printed = invoke(store_url, "export")
    to_file = invoke(store_url, "export", "--output", str(tmp_path / "trail.jsonl"))

    assert printed.exit_code == 0 and to_file.exit_code == 0, printed.output + to_file.output
    lines = printed.stdout.splitlines()
    # The second export holds the first, and the first export's own entry (7).
    in_file = (tmp_path / "trail.jsonl").read_text().splitlines()
    assert in_file[:6] == lines[:6]
    first_export = json.loads(in_file[6])
    assert (first_export["seq"], first_export["action"], first_export["detail"]["exported"]) == (
        7, "audit.export", 6)
    assert first_export["actor"].startswith("user:") and first_export["actor"].endswith("@cli")
    assert to_file.stderr == (f"7 entries exported to {tmp_path / 'trail.jsonl'}, "
                              f"head 7 {first_export['hash']}\n")
    with sessions() as session:
        assert [json.loads(line) for line in lines[:-1]] == [
            audit.as_record(e) for e in audit.entries(session)][:6]
    assert json.loads(lines[-1]) == {"head": {"seq": 6, "hash": written[-1].hash},
                                     "exported": 6}
    assert auditor_verifies(lines) == []
    tampered = json.loads(lines[2])
    tampered["actor"] = "user:nobody"
    assert auditor_verifies([*lines[:2], json.dumps(tampered), *lines[3:]]) == [
        "entry 3: hash does not match"]
    assert auditor_verifies([*lines[:2], *lines[3:]]) == ["entry 4: does not follow the one "
                                                          "before", "count differs"]


def test_an_export_can_be_limited_to_a_period(sessions, engine, store_url) -> None:
    write_trail(sessions, 4)
    with sessions() as session:
        times = [e.at for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    start, end = times[1], times[3]

    result = invoke(store_url, "export", "--since", start.isoformat(), "--until",
                    end.isoformat())
    day = invoke(store_url, "export", "--since", f"{times[0]:%Y-%m-%d}", "--until",
                 f"{times[0] + timedelta(days=1):%Y-%m-%d}")
    bad = invoke(store_url, "export", "--since", "yesterday")

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in records[:-1]] == [2, 3]
    assert records[-1]["exported"] == 2 and records[-1]["head"]["seq"] == 4
    # The day holds the 4 entries and the first export's own entry.
    assert json.loads(day.stdout.splitlines()[-1])["exported"] == 5
    assert bad.exit_code == 2 and "'yesterday' is not an ISO 8601 date or time" in bad.output


def test_the_audit_commands_fail_in_one_line_without_a_store(tmp_path) -> None:
    result = invoke(f"sqlite:///{tmp_path / 'empty.db'}", "verify")

    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.fullmatch(r"error: database: \(sqlite3\.OperationalError\) no such table: "
                        r"audit_log\n", result.stderr)
