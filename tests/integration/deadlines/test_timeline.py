"""A referral's timeline over the API, on SQLite and PostgreSQL: everything that happened in
order, to its sender, its receiver and operations only, and nothing about the person."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fictional import find_personal
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import (
    AuditEntry,
    DeadlineEvent,
    Delivery,
    Referral,
    StatusEvent,
    TrackedDeadline,
    new_id,
)
from servers import LiveServer

T0 = datetime(2027, 3, 22, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
OPS_KEY = "ops-key-for-timeline-tests"
PERSON = {"Zawadi", "Fictionalson", "2014-03-09"}
PARTNER_SAID = "record CP-SECRET-77 of Zawadi Fictionalson refused"


@dataclass(frozen=True)
class Stored:
    referral_id: str
    keys: dict[str, str]  # sender, receiver, stranger -> API key
    receiver: str


@pytest.fixture(scope="module")
def stored(isolated_database_url: str) -> Stored:
    """A transfer delivered on the second attempt, acknowledged late after its overdue flag
    was raised and escalated, then accepted: the person is in its content and in the
    partner's answer to the failed attempt, never in its timeline."""
    engine = make_engine(isolated_database_url)
    suffix = uuid.uuid4().hex[:8]
    keys, ids = {}, {}
    with unit_of_work(make_sessionmaker(engine)) as session:
        for role in ("sender", "receiver", "stranger"):
            ids[role] = f"tl-{role}-{suffix}"
            _, keys[role] = register_partner(session=session, partner_id=ids[role],
                                             name="Timeline partner", system="other")
        referral = Referral(id=new_id(), kind="transfer", sender_id=ids["sender"],
                            receiver_id=ids["receiver"], status="accepted",
                            correlation_id=f"corr-tl-{suffix}", request_hash="0" * 64,
                            content={"subject": {"given_name": "Zawadi",
                                                 "family_name": "Fictionalson",
                                                 "birth_date": "2014-03-09"}},
                            created_at=T0, updated_at=T0)
        session.add(referral)
        steps = [(None, "submitted", "sender", T0, False, None),
                 ("submitted", "delivered", "gateway", T0 + 2 * HOUR, False, None),
                 ("delivered", "acknowledged", "receiver", T0 + 60 * HOUR, True, None),
                 ("acknowledged", "accepted", "receiver", T0 + 60 * HOUR, False, "capacity")]
        events = []
        for seq, (before, after, actor, at, inferred, reason) in enumerate(steps, start=1):
            events.append(StatusEvent(
                id=new_id(), referral=referral, seq=seq, from_state=before, to_state=after,
                actor=actor, actor_partner_id=ids["receiver"] if actor == "receiver" else None,
                reason_code=reason, inferred=inferred, occurred_at=at, recorded_at=at,
                content={"note": "Zawadi Fictionalson moved to her aunt's (2014-03-09)"}))
        session.add_all(events)
        session.flush()
        session.add_all([
            Delivery(referral_id=referral.id, partner_id=ids["receiver"], attempt=1,
                     outcome="transient_failure", detail="partner answered 503",
                     partner_error={"status": 503, "message": PARTNER_SAID},
                     started_at=T0 + HOUR, finished_at=T0 + HOUR),
            Delivery(referral_id=referral.id, partner_id=ids["receiver"], attempt=2,
                     outcome="delivered", started_at=T0 + 2 * HOUR,
                     finished_at=T0 + 2 * HOUR),
            Delivery(referral_id=referral.id, partner_id=ids["sender"], message_type="alert",
                     attempt=1, outcome="delivered", detail="alert overdue shown at the partner",
                     started_at=T0 + 25 * HOUR, finished_at=T0 + 25 * HOUR),
            Delivery(referral_id=referral.id, status_event_id=events[2].id,
                     partner_id=ids["sender"], attempt=1, outcome="delivered",
                     started_at=T0 + 61 * HOUR, finished_at=T0 + 61 * HOUR)])
        acknowledge = TrackedDeadline(
            referral_id=referral.id, state="delivered", name="acknowledge", policy_id="p",
            calendar_id="gb-eng", started_at=T0 + 2 * HOUR, due_at=T0 + 24 * HOUR,
            escalate_at=T0 + 48 * HOUR, next_alert_at=None, raised_at=T0 + 24 * HOUR,
            escalated_at=T0 + 48 * HOUR, met_at=T0 + 60 * HOUR, paused_seconds=0)
        decision = TrackedDeadline(
            referral_id=referral.id, state="delivered", name="transfer_decision",
            policy_id="p", calendar_id="gb-eng", started_at=T0 + 2 * HOUR,
            due_at=T0 + 480 * HOUR, escalate_at=None, next_alert_at=None,
            met_at=T0 + 60 * HOUR, paused_seconds=0)
        session.add_all([acknowledge, decision])
        session.flush()
        session.add_all([
            DeadlineEvent(referral_id=referral.id, deadline_id=d.id, event=event, at=at)
            for d, event, at in (
                (acknowledge, "started", T0 + 2 * HOUR), (decision, "started", T0 + 2 * HOUR),
                (acknowledge, "raised", T0 + 24 * HOUR),
                (acknowledge, "escalated", T0 + 48 * HOUR),
                (acknowledge, "missed", T0 + 60 * HOUR),
                (acknowledge, "cleared", T0 + 60 * HOUR),
                (decision, "met", T0 + 60 * HOUR))])
        referral_id = referral.id
    engine.dispose()
    return Stored(referral_id, keys, ids["receiver"])


@pytest.fixture(scope="module")
def server(settings: Settings, isolated_database_url: str) -> Iterator[LiveServer]:
    ops = settings.model_copy(update={"database_url": isolated_database_url,
                                      "operator_key": OPS_KEY})
    with LiveServer(ops) as live:
        yield live


def timeline(server: LiveServer, key: str, referral_id: str, *, ops: bool = False
             ) -> httpx.Response:
    path = (f"/v1/ops/referrals/{referral_id}/timeline" if ops
            else f"/v1/referrals/{referral_id}/timeline")
    return httpx.get(server.url + path, headers={"Authorization": f"Bearer {key}"})


def test_the_timeline_tells_everything_in_order(server, stored) -> None:
    answer = timeline(server, stored.keys["sender"], stored.referral_id)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["referral_id"], body["kind"], body["status"]) == (
        stored.referral_id, "transfer", "accepted")
    said = [(e["type"], e.get("to_state") or e.get("event") or e["outcome"],
             e.get("deadline") or e.get("partner") or e["actor"]) for e in body["entries"]]
    sender, receiver = body["sender"], body["receiver"]
    assert said == [
        ("status", "submitted", "sender"),
        ("delivery", "transient_failure", receiver),
        ("status", "delivered", "gateway"),
        ("deadline", "started", "acknowledge"),
        ("deadline", "started", "transfer_decision"),
        ("delivery", "delivered", receiver),
        ("deadline", "raised", "acknowledge"),
        ("delivery", "delivered", sender),
        ("deadline", "escalated", "acknowledge"),
        ("status", "acknowledged", "receiver"),
        ("status", "accepted", "receiver"),
        ("deadline", "missed", "acknowledge"),
        ("deadline", "cleared", "acknowledge"),
        ("deadline", "met", "transfer_decision"),
        ("delivery", "delivered", sender),
    ]
    instants = [e["at"] for e in body["entries"]]
    assert instants == sorted(instants)
    assert [e["message"] for e in body["entries"] if e["type"] == "delivery"] == [
        "referral", "referral", "alert", "status"]
    acknowledged = body["entries"][9]
    assert (acknowledged["inferred"], acknowledged["actor_partner"]) == (True, receiver)
    assert body["entries"][10]["reason_code"] == "capacity"
    assert body["entries"][-1] | {"at": None} == {
        "type": "delivery", "at": None, "finished_at": "2027-03-24T22:00:00Z",
        "partner": sender, "message": "status", "status_seq": 3, "attempt": 1,
        "outcome": "delivered", "detail": None}
    assert body["entries"][6]["due_at"] == "2027-03-23T09:00:00Z"
    assert [(d["deadline"], d["outcome"], d["flag"]) for d in body["deadlines"][:2]] == [
        ("acknowledge", "missed", None), ("transfer_decision", "met", None)]


def test_the_receiver_sees_the_same_and_a_stranger_nothing(server, stored,
                                                           isolated_database_url) -> None:
    for_sender = timeline(server, stored.keys["sender"], stored.referral_id).json()
    for_receiver = timeline(server, stored.keys["receiver"], stored.referral_id)
    assert for_receiver.status_code == 200
    assert for_receiver.json() == for_sender
    for key, referral_id in ((stored.keys["stranger"], stored.referral_id),
                             (stored.keys["sender"], new_id())):
        refused = timeline(server, key, referral_id)
        assert refused.status_code == 404
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/not-found")
    assert timeline(server, "not-a-key", stored.referral_id).status_code == 401
    engine = make_engine(isolated_database_url)
    with sessionmaker(engine)() as session:
        entries = session.scalars(select(AuditEntry).where(
            AuditEntry.referral_id == stored.referral_id).order_by(AuditEntry.seq)).all()
    engine.dispose()
    read = [(e.action, e.actor, e.detail.get("role")) for e in entries
            if e.action == "referral.timeline"]
    assert (("referral.timeline", f"partner:{for_sender['sender']}", "sender") in read
            and ("referral.timeline", f"partner:{stored.receiver}", "receiver") in read)
    assert any(e.action == "referral.deny" and e.partner_id.startswith("tl-stranger")
               for e in entries)


def test_operations_read_any_timeline_with_the_operator_key(server, stored) -> None:
    answer = timeline(server, OPS_KEY, stored.referral_id, ops=True)
    assert answer.status_code == 200
    assert answer.json() == timeline(server, stored.keys["sender"], stored.referral_id).json()
    assert timeline(server, stored.keys["sender"], stored.referral_id,
                    ops=True).status_code == 401
    missing = timeline(server, OPS_KEY, new_id(), ops=True)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


def test_no_content_note_or_partner_answer_reaches_the_timeline(server, stored) -> None:
    text = timeline(server, stored.keys["sender"], stored.referral_id).text
    assert "partner answered 503" in text  # the gateway's own summary of the failure
    assert not find_personal(text, PERSON | {"CP-SECRET-77"})
    assert "aunt" not in text and PARTNER_SAID not in text


def test_a_deadline_overdue_now_carries_its_flag(isolated_database_url, server,
                                                 stored) -> None:
    engine = make_engine(isolated_database_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        session.add(TrackedDeadline(
            referral_id=stored.referral_id, state="accepted", name="complete", policy_id="p",
            calendar_id="gb-eng", started_at=T0 + 60 * HOUR, due_at=T0 + 70 * HOUR,
            escalate_at=T0 + 80 * HOUR, next_alert_at=T0 + 80 * HOUR,
            raised_at=T0 + 70 * HOUR, paused_seconds=0))
    engine.dispose()
    body = timeline(server, stored.keys["receiver"], stored.referral_id).json()
    assert body["deadlines"][-1] | {"started_at": None} == {
        "deadline": "complete", "state": "accepted", "policy": "p", "calendar": "gb-eng",
        "started_at": None, "due_at": "2027-03-25T07:00:00Z",
        "escalate_at": "2027-03-25T17:00:00Z", "outcome": "running", "flag": "overdue"}
