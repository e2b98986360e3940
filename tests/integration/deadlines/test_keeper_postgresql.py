"""Two keepers at once on PostgreSQL (a scheduler taking over while the old leader still
ticks, or `casebridge scheduler --once` beside a running one): every deadline starts once
and every flag is raised and escalated once; and only one scheduler leads at a time."""

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.keeper import TickReport, tick
from gateway.deadlines.scheduler import PostgresLeadership, leadership_for
from gateway.partners import register_partner
from gateway.protection.audit import verify
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import DeadlineEvent, OutboxMessage, Referral, StatusEvent
from servers import fresh_store

NOW = datetime(2027, 5, 3, 12, 0, tzinfo=UTC)
REFERRALS = 30


@pytest.fixture(scope="module")
def engine(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with fresh_store(pg_url, tmp_path_factory.mktemp("pg")) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


def book(folder: Path) -> DeadlineBook:
    (folder / "transfers.yaml").write_text(
        "id: transfers\napplies_to: {kind: transfer}\ncalendar: gb-eng\ndeadlines:\n"
        "  - name: acknowledge\n    state: delivered\n    within: {calendar_hours: 1}\n"
        "    escalate_after_due: {calendar_hours: 1}\n")
    return DeadlineBook(deadlines_dir=folder, calendars_dir=folder / "none",
                        contracts=Contracts(ROOT / "contracts"))


def delivered_transfers(sessions: sessionmaker[Session], count: int) -> list[str]:
    """Transfers delivered three hours before NOW, their delivery not yet applied."""
    ids = []
    with unit_of_work(sessions) as session:
        sender, receiver = (f"pg-{uuid.uuid4().hex[:8]}" for _ in range(2))
        for partner_id in (sender, receiver):
            register_partner(session=session, partner_id=partner_id, name="x", system="other")
        for _ in range(count):
            referral = Referral(kind="transfer", sender_id=sender, receiver_id=receiver,
                                status="delivered", correlation_id="corr", request_hash="h",
                                content={"kind": "transfer", "sender": {"partner": sender},
                                         "receiver": {"partner": receiver}})
            session.add(referral)
            session.flush()
            for seq, state in enumerate(("submitted", "delivered"), start=1):
                session.add(StatusEvent(referral_id=referral.id, seq=seq, to_state=state,
                                        actor="gateway", occurred_at=NOW - timedelta(hours=3),
                                        recorded_at=NOW - timedelta(hours=3)))
            ids.append(referral.id)
    return ids


def test_two_keepers_at_once_start_raise_and_escalate_each_deadline_once(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    referral_ids = delivered_transfers(sessions, REFERRALS)
    policies = book(tmp_path)
    reports: list[TickReport] = []
    start = threading.Barrier(2)

    def keeper() -> None:
        start.wait()
        reports.append(tick(sessions, policies, NOW, batch=4))

    threads = [threading.Thread(target=keeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(reports) == 2 and sum(r.failed for r in reports) == 0
    assert sum(r.started for r in reports) == REFERRALS
    assert sum(r.raised for r in reports) == sum(r.escalated for r in reports) == REFERRALS
    with sessions() as session:
        per_deadline = session.execute(
            select(DeadlineEvent.deadline_id, DeadlineEvent.event, func.count())
            .where(DeadlineEvent.referral_id.in_(referral_ids))
            .group_by(DeadlineEvent.deadline_id, DeadlineEvent.event)).all()
        alerts = session.scalar(select(func.count()).where(
            OutboxMessage.referral_id.in_(referral_ids), OutboxMessage.message_type == "alert"))
        pending = session.scalar(select(func.count()).where(
            StatusEvent.referral_id.in_(referral_ids),
            StatusEvent.deadlines_applied_at.is_(None)))
    assert {count for _, _, count in per_deadline} == {1}
    assert len(per_deadline) == 3 * REFERRALS  # started, raised, escalated: once each
    assert alerts == 2 * 2 * REFERRALS  # overdue and escalated, to sender and receiver
    assert pending == 0
    with sessions() as session:
        assert verify(session).breaks == []  # the audit chain stayed a line


def test_one_scheduler_leads_and_the_other_takes_over_when_it_goes(engine: Engine) -> None:
    first, second = leadership_for(engine), leadership_for(engine)
    assert isinstance(first, PostgresLeadership)
    assert first.lead() and first.lead()  # still the leader on the next tick
    assert not second.lead()
    first.release()
    assert second.lead()
    assert not first.lead()
    second.release()
