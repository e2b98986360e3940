"""The deadline keeper on a real SQLite store with a frozen clock: deadlines start as a
referral enters a state, are met, missed, paused, resumed or ended as it moves on, and the
overdue flag is raised, escalated and cleared once each, with an alert to both sides."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.deadlines.alerts import alert_document
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.compute import due_day
from gateway.deadlines.keeper import TickReport, tick
from gateway.delivery.dead_letters import redrive
from gateway.partners import register_partner
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.retention import purge
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work, upgrade
from gateway.store.models import (
    AuditEntry,
    DeadLetter,
    DeadlineEvent,
    OutboxMessage,
    Partner,
    Referral,
    StatusEvent,
    TrackedDeadline,
)

CONTRACTS = Contracts(ROOT / "contracts")
BOOK = DeadlineBook(deadlines_dir=ROOT / "deadlines", calendars_dir=ROOT / "calendars",
                    contracts=CONTRACTS)
ENGLAND = BOOK.calendars()["gb-eng"]
# Monday 22 March 2027, 10:00 in London (GMT): a case-transfer NSI reaches the receiver.
RECEIVED = datetime(2027, 3, 22, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store migrated once; each test works on a copy of its own."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sessions(migrated: Path, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    shutil.copy(migrated, tmp_path / "store.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield make_sessionmaker(engine)
    engine.dispose()


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (ROOT / "contracts" / "examples" / "referral" / f"{name}.json").read_text())
    return document


def case_transfer() -> dict[str, Any]:
    """A permanent probation case transfer between two regions of England."""
    return example("valid-ndelius-case-transfer")


def referral_to_ethiopia() -> dict[str, Any]:
    document = example("valid-primero-to-progres-referral")
    document["receiver"]["partner"] = "progres-eth"
    return document


def stored(sessions: sessionmaker[Session], document: dict[str, Any], *,
           agreement_id: str | None = None) -> str:
    """A referral as the gateway stores it when submitted (its first event included)."""
    with unit_of_work(sessions) as session:
        for party in ("sender", "receiver"):
            _partner(session, document[party]["partner"])
        referral = Referral(kind=document["kind"], subtype=document.get("subtype"),
                            sender_id=document["sender"]["partner"],
                            receiver_id=document["receiver"]["partner"], status="submitted",
                            correlation_id=f"corr-{uuid.uuid4().hex[:8]}", request_hash="h",
                            content=document, agreement_id=agreement_id)
        session.add(referral)
        session.flush()
        referral_id = referral.id
    move(sessions, referral_id, "submitted", RECEIVED - timedelta(hours=1))
    return referral_id


def _partner(session: Session, partner_id: str) -> None:
    if session.get(Partner, partner_id) is None:
        register_partner(session=session, partner_id=partner_id, name=partner_id,
                         system="other")


def move(sessions: sessionmaker[Session], referral_id: str, state: str, at: datetime, *,
         recorded_late: timedelta = timedelta()) -> None:
    """A status event as casework records it: it occurred at `at` and was recorded
    `recorded_late` after (a change polled some time after it happened)."""
    with unit_of_work(sessions) as session:
        referral = session.get_one(Referral, referral_id)
        seq = session.scalar(select(func.count()).where(
            StatusEvent.referral_id == referral_id)) or 0
        session.add(StatusEvent(referral_id=referral_id, seq=seq + 1,
                                from_state=referral.status if seq else None, to_state=state,
                                actor="gateway", occurred_at=at, recorded_at=at + recorded_late))
        referral.status = state


def keep(sessions: sessionmaker[Session], now: datetime, **kwargs: Any) -> TickReport:
    return tick(sessions, kwargs.pop("book", BOOK), now, **kwargs)


def deadlines(sessions: sessionmaker[Session], referral_id: str) -> dict[str, TrackedDeadline]:
    with sessions() as session:
        return {row.name: row for row in session.scalars(select(TrackedDeadline).where(
            TrackedDeadline.referral_id == referral_id))}


def events(sessions: sessionmaker[Session], referral_id: str) -> list[tuple[str, str]]:
    """(deadline, event) of the referral's deadline events, in order."""
    with sessions() as session:
        return [(e.detail["deadline"], e.event) for e in session.scalars(
            select(DeadlineEvent).where(DeadlineEvent.referral_id == referral_id)
            .order_by(DeadlineEvent.id))]


def alerts(sessions: sessionmaker[Session], referral_id: str) -> list[tuple[str, str, str, str]]:
    """(flag, deadline, target, role) of the alerts in the outbox, in order."""
    with sessions() as session:
        return [(m.envelope["flag"], m.envelope["deadline"], m.envelope["target"],
                 m.envelope["role"]) for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.referral_id == referral_id,
                                        OutboxMessage.message_type == "alert")
            .order_by(OutboxMessage.id))]


def both(flag: str, deadline: str, document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [(flag, deadline, document["sender"]["partner"], "sender"),
            (flag, deadline, document["receiver"]["partner"], "receiver")]


# ---------------------------------------------------------------------------- the path


def test_a_deadline_starts_is_raised_escalated_and_cleared_when_met_late(
        sessions: sessionmaker[Session]) -> None:
    transfer = case_transfer()
    referral_id = stored(sessions, transfer)
    move(sessions, referral_id, "delivered", RECEIVED)
    report = keep(sessions, RECEIVED + timedelta(minutes=1))
    assert (report.applied, report.started, report.raised) == (2, 3, 0)
    started = deadlines(sessions, referral_id)
    assert {name: due_day(row.due_at, ENGLAND) for name, row in started.items()} == {
        "acknowledge": date(2027, 3, 24), "address_assessment": date(2027, 4, 7),
        "transfer_decision": date(2027, 4, 21)}
    assert all(row.started_at == RECEIVED for row in started.values())

    # Thursday morning: acknowledging was due by the end of Wednesday.
    thursday = datetime(2027, 3, 25, 9, 0, tzinfo=UTC)
    assert keep(sessions, thursday).raised == 1
    assert alerts(sessions, referral_id) == both("overdue", "acknowledge", transfer)
    # Once: a second tick, and a third later the same day, raise nothing more.
    assert keep(sessions, thursday).raised == 0
    assert keep(sessions, thursday + timedelta(hours=8)).raised == 0

    # Escalates a working day after: Thursday's end (Good Friday does not count anyway).
    report = keep(sessions, datetime(2027, 3, 26, 0, 0, tzinfo=UTC))
    assert (report.raised, report.escalated) == (0, 1)
    assert keep(sessions, datetime(2027, 3, 30, tzinfo=UTC)).escalated == 0

    # Acknowledged on Tuesday 30 March (the poll brought it in an hour later): missed, and
    # the flag comes down on both sides.
    move(sessions, referral_id, "acknowledged", datetime(2027, 3, 30, 11, tzinfo=UTC),
         recorded_late=timedelta(hours=1))
    report = keep(sessions, datetime(2027, 3, 30, 13, tzinfo=UTC))
    assert (report.finished, report.cleared) == (1, 1)
    assert alerts(sessions, referral_id) == [
        *both("overdue", "acknowledge", transfer), *both("escalated", "acknowledge", transfer),
        *both("cleared", "acknowledge", transfer)]
    assert events(sessions, referral_id) == [
        ("acknowledge", "started"), ("address_assessment", "started"),
        ("transfer_decision", "started"), ("acknowledge", "raised"),
        ("acknowledge", "escalated"), ("acknowledge", "missed"), ("acknowledge", "cleared")]
    done = deadlines(sessions, referral_id)
    assert done["acknowledge"].met_at == datetime(2027, 3, 30, 11, tzinfo=UTC)  # occurred_at
    assert done["acknowledge"].next_alert_at is None
    assert done["transfer_decision"].met_at is None  # acknowledging does not decide
    with sessions() as session:
        flags = [entry.detail["flag"] for entry in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "deadline.alert",
                                     AuditEntry.referral_id == referral_id)
            .order_by(AuditEntry.seq))]
        applied = session.scalars(select(StatusEvent.deadlines_applied_at).where(
            StatusEvent.referral_id == referral_id)).all()
    assert flags == ["overdue", "escalated", "cleared"]
    assert None not in applied


def test_met_in_time_is_met_and_tells_nobody(sessions: sessionmaker[Session]) -> None:
    referral_id = stored(sessions, case_transfer())
    move(sessions, referral_id, "delivered", RECEIVED)
    move(sessions, referral_id, "acknowledged", RECEIVED + timedelta(days=1))
    move(sessions, referral_id, "accepted", RECEIVED + timedelta(days=2))
    keep(sessions, RECEIVED + timedelta(days=3))
    assert events(sessions, referral_id) == [
        ("acknowledge", "started"), ("address_assessment", "started"),
        ("transfer_decision", "started"), ("acknowledge", "met"),
        ("address_assessment", "met")]
    assert alerts(sessions, referral_id) == []
    # The decision runs on through `accepted`: it is met by completion only.
    assert deadlines(sessions, referral_id)["transfer_decision"].next_alert_at is not None


def test_a_challenge_pauses_the_clock_and_the_due_moves_on_by_the_days_it_stood_still(
        sessions: sessionmaker[Session]) -> None:
    referral_id = stored(sessions, case_transfer())
    move(sessions, referral_id, "delivered", RECEIVED)
    move(sessions, referral_id, "accepted", datetime(2027, 3, 23, 9, tzinfo=UTC))
    move(sessions, referral_id, "challenged", datetime(2027, 4, 1, 14, tzinfo=UTC))
    keep(sessions, datetime(2027, 4, 2, tzinfo=UTC))
    paused = deadlines(sessions, referral_id)["transfer_decision"]
    assert paused.paused_at == datetime(2027, 4, 1, 14, tzinfo=UTC)
    assert paused.next_alert_at is None  # no flag while the referral waits on the sender
    # Still paused on 22 April, when the decision would have been overdue: no flag.
    assert keep(sessions, datetime(2027, 4, 22, tzinfo=UTC)).raised == 0
    move(sessions, referral_id, "challenged", datetime(2027, 4, 1, 14, tzinfo=UTC))  # repeated
    keep(sessions, datetime(2027, 4, 22, tzinfo=UTC))
    # The sender enforces on Tuesday 6 April: three working days passed (2nd, 5th, 6th).
    move(sessions, referral_id, "accepted", datetime(2027, 4, 6, 11, tzinfo=UTC))
    keep(sessions, datetime(2027, 4, 6, 12, tzinfo=UTC))
    resumed = deadlines(sessions, referral_id)["transfer_decision"]
    assert due_day(resumed.due_at, ENGLAND) == date(2027, 4, 26)
    assert resumed.escalate_at is not None and due_day(resumed.escalate_at,
                                                       ENGLAND) == date(2027, 5, 4)
    assert resumed.paused_at is None and resumed.next_alert_at == resumed.due_at
    assert resumed.paused_seconds == 5 * 24 * 3600 - 3 * 3600
    decision = [e for d, e in events(sessions, referral_id) if d == "transfer_decision"]
    assert decision == ["started", "paused", "resumed"]  # the repeated challenge changes nothing
    assert keep(sessions, datetime(2027, 4, 26, 22, tzinfo=UTC)).raised == 0  # BST: 23:00
    assert keep(sessions, datetime(2027, 4, 26, 23, tzinfo=UTC)).raised == 1


def test_a_withdrawal_ends_the_deadlines_and_clears_a_raised_flag(
        sessions: sessionmaker[Session]) -> None:
    referral = referral_to_ethiopia()
    referral_id = stored(sessions, referral)
    delivered = datetime(2027, 3, 1, 7, tzinfo=UTC)
    move(sessions, referral_id, "delivered", delivered)
    keep(sessions, delivered)
    assert keep(sessions, delivered + timedelta(days=4)).raised == 1  # acknowledge
    move(sessions, referral_id, "withdrawn", delivered + timedelta(days=4, hours=1))
    report = keep(sessions, delivered + timedelta(days=5))
    assert (report.finished, report.cleared, report.raised) == (2, 1, 0)
    assert events(sessions, referral_id) == [
        ("acknowledge", "started"), ("decide", "started"), ("acknowledge", "raised"),
        ("acknowledge", "ended"), ("acknowledge", "cleared"), ("decide", "ended")]
    assert alerts(sessions, referral_id)[-2:] == both("cleared", "acknowledge", referral)
    # Nothing is left for the scan, however long it waits.
    assert keep(sessions, delivered + timedelta(days=60)).raised == 0


def test_a_state_entered_again_does_not_start_its_deadlines_twice(
        sessions: sessionmaker[Session]) -> None:
    move_ = example("valid-temporary-move")
    move_["transfer"]["return_date"] = "2027-08-27"
    referral_id = stored(sessions, move_)
    for state, day in (("delivered", 1), ("accepted", 2), ("challenged", 3), ("accepted", 4)):
        move(sessions, referral_id, state, datetime(2027, 6, day, 9, tzinfo=UTC))
    keep(sessions, datetime(2027, 6, 5, tzinfo=UTC))
    assert events(sessions, referral_id) == [("return", "started")]
    [back] = deadlines(sessions, referral_id).values()
    assert due_day(back.due_at, ENGLAND) == date(2027, 8, 27)


def test_a_referral_no_policy_covers_gets_no_deadline_and_its_content_stays_closed(
        sessions: sessionmaker[Session]) -> None:
    document = example("valid-gbv-referral")
    referral_id = stored(sessions, document)
    move(sessions, referral_id, "delivered", RECEIVED)
    assert keep(sessions, RECEIVED + timedelta(days=30)).applied == 2
    assert deadlines(sessions, referral_id) == {}


def test_a_policy_narrowed_by_country_follows_the_receivers_country(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    policies, calendars = tmp_path / "deadlines", tmp_path / "calendars"
    policies.mkdir()
    calendars.mkdir()
    (policies / "kenya.yaml").write_text(
        "id: kenya\napplies_to: {kind: referral, countries: [KEN]}\ncalendar: gb-eng\n"
        "deadlines:\n  - name: acknowledge\n    state: delivered\n"
        "    within: {calendar_hours: 24}\n")
    book = DeadlineBook(deadlines_dir=policies, calendars_dir=calendars, contracts=CONTRACTS)
    in_kenya, elsewhere = referral_to_ethiopia(), referral_to_ethiopia()
    in_kenya["receiver"]["partner"] = "partner-ken"
    with unit_of_work(sessions) as session:
        register_partner(session=session, partner_id="partner-ken", name="Kenya",
                         system="other", country="KEN")
    found = {}
    for document in (in_kenya, elsewhere):
        referral_id = stored(sessions, document)
        move(sessions, referral_id, "delivered", RECEIVED)
        keep(sessions, RECEIVED, book=book)
        found[document["receiver"]["partner"]] = sorted(deadlines(sessions, referral_id))
    assert found == {"partner-ken": ["acknowledge"], "progres-eth": []}


# ---------------------------------------------------------------------------- observers


def test_observers_of_the_agreement_are_told_with_envelope_data_only(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    folder = tmp_path / "agreements"
    shutil.copytree(ROOT / "agreements", folder)
    registry = AgreementRegistry(folder, CONTRACTS)
    referral = referral_to_ethiopia()
    referral["sender"]["partner"] = "primero-ssd"
    referral_id = stored(sessions, referral, agreement_id="isp-ssd-eth-cp-referrals-2026")
    delivered = datetime(2027, 3, 1, 7, tzinfo=UTC)
    move(sessions, referral_id, "delivered", delivered)
    # The agreement's observer (cp-aor-eth) is not a partner yet: it is skipped, and said so.
    with capture_logs() as logs:
        keep(sessions, delivered + timedelta(days=4), agreements=registry)
    assert alerts(sessions, referral_id) == both("overdue", "acknowledge", referral)
    assert [e["observer"] for e in logs if e["event"] == "observer_unknown"] == ["cp-aor-eth"]
    with unit_of_work(sessions) as session:
        _partner(session, "cp-aor-eth")
    keep(sessions, delivered + timedelta(days=12), agreements=registry)
    assert alerts(sessions, referral_id)[2:] == [
        *both("escalated", "acknowledge", referral),
        ("escalated", "acknowledge", "cp-aor-eth", "observer"),
        *both("overdue", "decide", referral), ("overdue", "decide", "cp-aor-eth", "observer")]
    with sessions() as session:
        message = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral_id,
            OutboxMessage.routing_key == "alert.cp-aor-eth")).first()
        assert message is not None
        envelope = message.envelope
        event = session.get_one(DeadlineEvent, envelope["deadline_event_id"])
        document = alert_document(event, kind=envelope["kind"], role=envelope["role"])
    assert set(envelope) == {"message_id", "type", "referral_id", "kind", "sender", "receiver",
                             "target", "correlation_id", "deadline_event_id", "flag",
                             "deadline", "role"}
    assert CONTRACTS.validate("alert", document) == []
    assert document["role"] == "observer" and document["flag"] == "escalated"
    assert "observer" in document["message"]
    assert not {"Amani", "Testcase"} & set(json.dumps(document).split())


# ---------------------------------------------------------------------------- the book


def test_a_bad_policy_file_is_refused_with_its_position_and_the_old_one_stays_in_force(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    policies, calendars = tmp_path / "deadlines", tmp_path / "calendars"
    policies.mkdir()
    calendars.mkdir()
    path = policies / "test-referrals.yaml"
    good = ("id: test-referrals\napplies_to: {kind: referral}\ncalendar: gb-eng\n"
            "deadlines:\n  - name: acknowledge\n    state: delivered\n"
            "    within: {calendar_hours: 48}\n")
    path.write_text(good)
    book = DeadlineBook(deadlines_dir=policies, calendars_dir=calendars, contracts=CONTRACTS)
    book.refresh()
    [in_force] = book.policies()
    path.write_text(good.replace("state: delivered", "state: deliverd"))
    with capture_logs() as logs:
        book.refresh()
    [refused] = [e for e in logs if e["event"] == "deadline_policy_refused"]
    assert refused["problems"] == [
        f"{path}:6:12: unknown-state: 'deliverd' is not a state (did you mean 'delivered'?)"]
    assert book.policies() == [in_force]
    # The keeper counts by the version in force.
    referral_id = stored(sessions, referral_to_ethiopia())
    move(sessions, referral_id, "delivered", RECEIVED)
    keep(sessions, RECEIVED, book=book)
    assert deadlines(sessions, referral_id)["acknowledge"].due_at == RECEIVED + timedelta(
        hours=48)


def test_a_policy_waiting_for_its_calendar_comes_into_force_when_the_calendar_does(
        tmp_path: Path) -> None:
    policies, calendars = tmp_path / "deadlines", tmp_path / "calendars"
    policies.mkdir()
    calendars.mkdir()
    (policies / "office.yaml").write_text(
        "id: office\napplies_to: {kind: referral}\ncalendar: et-office\n"
        "deadlines:\n  - {name: acknowledge, state: delivered, within: {working_days: 2}}\n")
    book = DeadlineBook(deadlines_dir=policies, calendars_dir=calendars, contracts=CONTRACTS)
    with capture_logs() as logs:
        book.refresh()
    assert book.policies() == []
    assert "unknown-calendar" in next(
        e for e in logs if e["event"] == "deadline_policy_refused")["problems"][0]
    (calendars / "et-office.yaml").write_text(
        "id: et-office\nbased_on: et\nclosed:\n  - {date: 2027-03-10, name: Office closure}\n")
    book.refresh()
    [policy] = book.policies()
    assert policy.calendar == "et-office" and date(2027, 3, 10) in book.calendars()[
        "et-office"].closed


# ---------------------------------------------------------------------------- retention


def test_purging_a_closed_referral_removes_its_deadline_events(
        sessions: sessionmaker[Session]) -> None:
    referral_id = stored(sessions, referral_to_ethiopia())
    move(sessions, referral_id, "delivered", RECEIVED)
    keep(sessions, RECEIVED + timedelta(days=10))
    move(sessions, referral_id, "rejected", RECEIVED + timedelta(days=11))
    keep(sessions, RECEIVED + timedelta(days=11))
    with unit_of_work(sessions) as session:
        closed = session.get_one(Referral, referral_id)
        closed.retention_days, closed.updated_at = 1, RECEIVED
    assert referral_id in purge(sessions, now=RECEIVED + timedelta(days=30)).purged
    assert events(sessions, referral_id) == [] and alerts(sessions, referral_id) == []


def test_a_dead_lettered_alert_is_sent_again_on_redrive(sessions: sessionmaker[Session]) -> None:
    referral_id = stored(sessions, referral_to_ethiopia())
    move(sessions, referral_id, "delivered", RECEIVED)
    keep(sessions, RECEIVED + timedelta(days=5))
    with unit_of_work(sessions) as session:
        first = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral_id,
            OutboxMessage.message_type == "alert")).first()
        assert first is not None
        letter = DeadLetter(message_id=first.envelope["message_id"], referral_id=referral_id,
                            partner_id=first.envelope["target"], message_type="alert",
                            routing_key=first.routing_key, envelope=first.envelope,
                            reason="retries_exhausted", attempts=3)
        session.add(letter)
        session.flush()
        assert redrive(session=session, contracts=CONTRACTS, letters=[letter],
                       actor="user:test") == [letter.id]
    with sessions() as session:
        again = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral_id, OutboxMessage.message_type == "alert")
            .order_by(OutboxMessage.id.desc())).first()
    assert again is not None and again.published_at is None
    assert again.envelope["message_id"] != first.envelope["message_id"]
    assert {k: v for k, v in again.envelope.items() if k != "message_id"} == {
        k: v for k, v in first.envelope.items() if k != "message_id"}
