"""The overdue scan on a real store (SQLite and PostgreSQL): one read on the partial index
of `next_alert_at` finds the flags to raise and to escalate, and nothing else."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.deadlines import service
from gateway.deadlines.compute import Deadline
from gateway.partners import register_partner
from gateway.protection.retention import purge
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import DeadlineEvent, Referral, TrackedDeadline

NOW = datetime(2027, 4, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def engine(isolated_database_url: str) -> Iterator[Engine]:
    engine = make_engine(isolated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


def new_referral(session: Session, **fields: object) -> str:
    sender, receiver = (f"dl-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for partner_id in (sender, receiver):
        register_partner(session=session, partner_id=partner_id, name="x", system="other")
    referral = Referral(kind="transfer", sender_id=sender, receiver_id=receiver,
                        status=str(fields.pop("status", "delivered")), correlation_id="corr",
                        request_hash="h", content={}, **fields)
    session.add(referral)
    session.flush()
    return referral.id


def deadline(name: str, due_at: datetime, escalate_at: datetime | None) -> Deadline:
    return Deadline(policy_id="probation-case-transfer-england", name=name, state="delivered",
                    calendar="gb-eng", started_at=due_at - timedelta(days=28), due_at=due_at,
                    escalate_at=escalate_at)


def overdue(sessions: sessionmaker[Session], now: datetime) -> list[tuple[str, str]]:
    with sessions() as session:
        return [(row.name, service.alert_due(row)) for row in service.find_overdue(session, now)]


def test_the_scan_raises_once_escalates_once_and_skips_paused_and_met_deadlines(
        sessions: sessionmaker[Session]) -> None:
    hour = timedelta(hours=1)
    with unit_of_work(sessions) as session:
        session.execute(text("DELETE FROM deadlines"))
        referral_id = new_referral(session)
        service.track(session, referral_id=referral_id, deadlines=[
            deadline("late", NOW - 2 * hour, NOW - hour),
            deadline("later", NOW - hour, NOW + 24 * hour),
            deadline("not_yet", NOW + hour, NOW + 2 * hour),
            deadline("paused", NOW - 3 * hour, None),
            deadline("met", NOW - 3 * hour, None),
        ])
    assert overdue(sessions, NOW) == [("paused", "raise"), ("met", "raise"), ("late", "raise"),
                                      ("later", "raise")]
    with unit_of_work(sessions) as session:
        rows = {r.name: r for r in session.scalars(select(TrackedDeadline))}
        service.pause(rows["paused"], NOW - 4 * hour)
        service.mark_met(rows["met"], NOW - 4 * hour)
        service.mark_raised(rows["late"], NOW)
        service.mark_raised(rows["later"], NOW)
    # Raised once: what is left is the escalation that is due, and only that.
    assert overdue(sessions, NOW) == [("late", "escalate")]
    with unit_of_work(sessions) as session:
        rows = {r.name: r for r in session.scalars(select(TrackedDeadline))}
        service.mark_escalated(rows["late"], NOW)
        service.resume(rows["paused"], NOW, due_at=NOW + 48 * hour, escalate_at=None)
    assert overdue(sessions, NOW) == []
    assert overdue(sessions, NOW + 49 * hour) == [("not_yet", "raise"), ("later", "escalate"),
                                                  ("paused", "raise")]
    with sessions() as session:
        paused = session.scalars(select(TrackedDeadline).where(
            TrackedDeadline.name == "paused")).one()
        assert paused.paused_seconds == 4 * 3600 and paused.paused_at is None


def test_the_scan_query_reads_the_partial_index(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        connection = session.connection()
        postgresql = connection.dialect.name == "postgresql"
        compiled = service.overdue_query(NOW, limit=500, lock=postgresql).compile(
            dialect=connection.dialect)
        if postgresql:
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table
            plan = [row[0] for row in connection.exec_driver_sql(
                f"EXPLAIN {compiled}", compiled.params)]
        else:
            positional = tuple(compiled.params[name] for name in compiled.positiontup or [])
            plan = [str(row[-1]) for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", positional)]
    assert any("ix_deadlines_next_alert" in line for line in plan), plan


def test_purging_a_closed_referral_removes_its_deadlines_and_their_events(
        sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        referral_id = new_referral(session, status="completed", retention_days=1,
                                   updated_at=NOW - timedelta(days=30))
        [row] = service.track(session, referral_id=referral_id,
                              deadlines=[deadline("done", NOW - timedelta(days=40), None)])
        session.add(DeadlineEvent(referral_id=referral_id, deadline_id=row.id, event="started",
                                  at=row.started_at))
    assert referral_id in purge(sessions, now=NOW).purged
    with sessions() as session:
        for model in (TrackedDeadline, DeadlineEvent):
            assert session.scalars(select(model).where(
                model.referral_id == referral_id)).all() == []
