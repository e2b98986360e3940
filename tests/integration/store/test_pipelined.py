"""`pipelined`: writes sent to PostgreSQL together, in one round trip, with their errors
raised as SQLAlchemy raises them; on SQLite the block simply runs. On both databases."""

import contextvars
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, MetaData, String, Table, func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.partners import register_partner
from gateway.store.db import (
    insert_now,
    make_engine,
    make_sessionmaker,
    pipelined,
    unit_of_work,
)
from gateway.store.group_commit import GROUPED, write_together
from gateway.store.models import IdentifierDigest, Partner, Referral, StatusEvent, new_id

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
REFERRALS: Table = Referral.__table__  # type: ignore[assignment]
EVENTS: Table = StatusEvent.__table__  # type: ignore[assignment]


@pytest.fixture
def sessions(isolated_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(isolated_database_url)
    sessions = make_sessionmaker(engine)
    with unit_of_work(sessions) as session:
        for partner in ("pipe-a", "pipe-b"):
            if session.get(Partner, partner) is None:
                register_partner(session=session, partner_id=partner, name=partner,
                                 system="other")
    yield sessions
    engine.dispose()


def referral_row(referral_id: str) -> dict[str, object]:
    return {"id": referral_id, "kind": "referral", "sender_id": "pipe-a",
            "receiver_id": "pipe-b", "status": "submitted", "correlation_id": "corr-pipe",
            "request_hash": "0" * 64, "idempotency_key": new_id(), "withheld": [],
            "content": {"subject": {"given_name": "Zawadi"}}, "created_at": NOW,
            "updated_at": NOW}


def event_row(referral_id: str) -> dict[str, object]:
    return {"id": new_id(), "referral_id": referral_id, "seq": 1, "to_state": "submitted",
            "actor": "sender", "inferred": False, "content": {}, "occurred_at": NOW,
            "recorded_at": NOW}


def count(sessions: sessionmaker[Session], *ids: str) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(REFERRALS)
                              .where(REFERRALS.c.id.in_(ids))) or 0


def round_trips(connection: Connection, block: list[tuple[object, object]]) -> int | None:
    """How many times PostgreSQL answered and waited for more (its ReadyForQuery message,
    as libpq traces it) while `block`'s statements ran in `pipelined`; None on SQLite,
    which has no round trips."""
    def run() -> None:
        with pipelined(connection):
            for statement, rows in block:
                connection.execute(statement, rows)  # type: ignore[call-overload]

    if connection.dialect.name != "postgresql":
        run()
        return None
    pgconn = connection.connection.driver_connection.pgconn  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "libpq.trace"
        with trace.open("w") as out:
            pgconn.trace(out.fileno())
            try:
                run()
            finally:
                pgconn.untrace()
                os.fsync(out.fileno())
        return sum(line.split("\t")[1:4:2] == ["B", "ReadyForQuery"]
                   for line in trace.read_text().splitlines())


def test_the_block_is_written_and_on_postgresql_answered_once(
        sessions: sessionmaker[Session]) -> None:
    first, second = new_id(), new_id()
    with unit_of_work(sessions) as session:
        connection = session.connection()
        connection.execute(text("SELECT 1"))  # begun, as a group's transaction is by its reads
        answers = round_trips(connection, [
            (insert(REFERRALS), [referral_row(first), referral_row(second)]),
            (insert(EVENTS), [event_row(first), event_row(second)]),
            (insert(EVENTS), [{**event_row(first), "seq": 2}])])
        if connection.dialect.name == "postgresql":
            # three statements, five rows: one round trip (without the block, one each)
            assert answers == 1
    assert count(sessions, first, second) == 2
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EVENTS)
                              .where(EVENTS.c.referral_id == first)) == 2


def test_a_lone_row_numbered_by_the_database_is_written_with_its_group_not_alone(
        sessions: sessionmaker[Session]) -> None:
    # One row of a table whose key the database numbers: a one-row INSERT would fetch
    # that key back, which nothing in a pipelined block can read (the group would fail,
    # and its work be written again alone).
    referral = new_id()
    with unit_of_work(sessions) as session:
        session.connection().execute(insert(REFERRALS), [referral_row(referral)])
    runs: list[bool] = []

    def work(session: Session) -> None:
        runs.append(bool(session.info.get(GROUPED)))
        insert_now(session, IdentifierDigest(referral_id=referral, digest="d" * 64))

    assert write_together(sessions, [(contextvars.copy_context(), work)]) == [(True, None)]
    assert runs == [True]  # written in its group: not split, not run again
    with sessions() as session:
        assert session.scalars(select(IdentifierDigest.digest).where(
            IdentifierDigest.referral_id == referral)).all() == ["d" * 64]


def test_a_duplicate_in_the_block_is_an_integrity_error_and_nothing_of_it_stays(
        sessions: sessionmaker[Session]) -> None:
    taken, fresh = new_id(), new_id()
    with unit_of_work(sessions) as session:
        session.connection().execute(insert(REFERRALS), [referral_row(taken)])
    with pytest.raises(IntegrityError), unit_of_work(sessions) as session:
        connection = session.connection()
        with pipelined(connection):
            connection.execute(insert(REFERRALS), [referral_row(fresh)])
            connection.execute(insert(REFERRALS), [referral_row(taken)])
    assert count(sessions, fresh) == 0 and count(sessions, taken) == 1


def gone_by(connection: Connection, backend: int, seconds: float = 10.0) -> None:
    """Wait until the PostgreSQL backend `backend` has exited (a terminated backend exits
    a moment after `pg_terminate_backend` returns)."""
    deadline = time.monotonic() + seconds
    while True:
        there = connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = "
                                        ":pid"), {"pid": backend}).scalar_one()
        connection.rollback()  # the next look sees the activity anew, not this snapshot
        if not there:
            return
        assert time.monotonic() < deadline, f"backend {backend} still there"
        time.sleep(0.01)


def test_a_lost_connection_is_an_operational_error_and_the_next_session_reconnects(
        pg_url: str) -> None:
    # PostgreSQL alone: SQLite has no connection to lose (the block runs as it is, above)
    engine = make_engine(pg_url)
    notes = Table("pipelined_notes", MetaData(), Column("note", String),
                  prefixes=["TEMPORARY"])
    try:
        with engine.connect() as connection:
            notes.create(connection)
            backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with pytest.raises(OperationalError) as raised, pipelined(connection):
                connection.execute(insert(notes), [{"note": "lost"}])
                # gone while the block waits for its answer (the database restarted, say)
                with engine.connect() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
                    gone_by(other, backend)
        # as SQLAlchemy says of a connection it found gone: the pool will not give it again
        assert raised.value.connection_invalidated
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != backend
    finally:
        engine.dispose()
