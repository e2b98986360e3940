"""The scheduler: one leader at a time on SQLite (a lock file beside the database), ticks
with the clock it is given, and says how it is on /healthz and /metrics."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.keeper import TickReport
from gateway.deadlines.scheduler import (
    FileLeadership,
    SchedulerHealth,
    leadership_for,
    run_scheduler,
)
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import Referral, StatusEvent
from servers import free_port

NOW = datetime(2027, 3, 22, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "store.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sessions(migrated: Path, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    shutil.copy(migrated, tmp_path / "store.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()


def test_one_scheduler_leads_an_sqlite_store_the_other_stands_by(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    engine = sessions.kw["bind"]
    first, second = leadership_for(engine), leadership_for(engine)
    assert isinstance(first, FileLeadership)
    assert first.path == tmp_path / "store.db.scheduler.lock"
    assert first.lead() and first.lead()
    assert not second.lead()
    first.release()
    assert second.lead() and not first.lead()
    second.release()


def test_the_leader_ticks_and_says_so_on_healthz_and_metrics(
        sessions: sessionmaker[Session]) -> None:
    settings = Settings(scheduler_interval=0.05, scheduler_port=free_port())
    book = DeadlineBook(deadlines_dir=ROOT / "deadlines", calendars_dir=ROOT / "calendars",
                        contracts=Contracts(ROOT / "contracts"))
    health = SchedulerHealth(interval=settings.scheduler_interval)
    stop, ticked = threading.Event(), threading.Event()
    ticks: list[datetime] = []

    def clock() -> datetime:
        ticks.append(NOW + timedelta(minutes=len(ticks)))
        if len(ticks) >= 3:
            ticked.set()
        return ticks[-1]

    thread = threading.Thread(target=run_scheduler, kwargs=dict(
        settings=settings, sessions=sessions, book=book, agreements=None, stop=stop,
        health=health, clock=clock))
    thread.start()
    try:
        assert ticked.wait(10)
        url = f"http://127.0.0.1:{settings.scheduler_port}"
        answer = httpx.get(f"{url}/healthz")
        assert answer.status_code == 200
        assert answer.json()["role"] == "leader" and answer.json()["status"] == "ok"
        assert datetime.fromisoformat(answer.json()["last_tick_at"]) in ticks
        metrics = httpx.get(f"{url}/metrics").text
        assert "casebridge_scheduler_leader 1.0" in metrics
        count = next(line for line in metrics.splitlines()
                     if line.startswith("casebridge_deadline_scan_seconds_count"))
        assert float(count.split()[-1]) >= 3
        assert httpx.get(f"{url}/other").status_code == 404
    finally:
        stop.set()
        thread.join(timeout=10)
    # The lead is given up on the way out: the next scheduler takes it at once.
    successor = leadership_for(sessions.kw["bind"])
    assert successor.lead()
    successor.release()


def test_a_standby_does_not_tick_and_a_silent_leader_is_stale() -> None:
    health = SchedulerHealth(interval=30)
    health.led(False)
    assert health.status(NOW) == (200, {
        "status": "ok", "role": "standby", "interval_seconds": 30, "last_tick_at": None,
        "last_tick_seconds": None})
    health.led(True)
    assert health.status(NOW)[0] == 503  # leads, and has never ticked
    health.ticked(NOW, 0.25, TickReport(scan_seconds=0.01))
    assert health.status(NOW + timedelta(minutes=2))[0] == 200
    status, body = health.status(NOW + timedelta(minutes=2, seconds=1))
    assert (status, body["status"], body["last_tick_seconds"]) == (503, "stale", 0.25)


def test_a_standby_scheduler_leaves_the_status_events_to_the_leader(
        sessions: sessionmaker[Session]) -> None:
    leader = leadership_for(sessions.kw["bind"])
    assert leader.lead()
    try:
        with unit_of_work(sessions) as session:
            for partner_id in ("standby-a", "standby-b"):
                register_partner(session=session, partner_id=partner_id, name="x",
                                 system="other")
            referral = Referral(kind="referral", sender_id="standby-a", receiver_id="standby-b",
                                status="submitted", correlation_id="c", request_hash="h",
                                content={})
            session.add(referral)
            session.flush()
            session.add(StatusEvent(referral_id=referral.id, seq=1, to_state="submitted",
                                    actor="sender", occurred_at=NOW, recorded_at=NOW))
        settings = Settings(scheduler_interval=0.05, scheduler_port=0)
        health = SchedulerHealth(interval=settings.scheduler_interval)
        stop = threading.Event()
        thread = threading.Thread(target=run_scheduler, kwargs=dict(
            settings=settings, sessions=sessions, book=DeadlineBook(
                deadlines_dir=ROOT / "deadlines", calendars_dir=ROOT / "calendars",
                contracts=Contracts(ROOT / "contracts")),
            agreements=None, stop=stop, health=health, clock=lambda: NOW))
        thread.start()
        stop.wait(0.3)
        stop.set()
        thread.join(timeout=10)
        assert not health.leader and health.last_tick_at is None
        with sessions() as session:
            assert session.scalars(select(StatusEvent.deadlines_applied_at)).all() == [None]
    finally:
        leader.release()
