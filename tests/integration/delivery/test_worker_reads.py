"""What the worker reads before and writes after a partner's call, without a broker: the
target's standing and system in one read, a status for an API partner settled on the
event's id alone, the partner's record written once however often a delivery repeats,
status events numbered in turn."""

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.casework import record_status_event
from gateway.contracts import Contracts
from gateway.delivery.worker import Dead, Done, Wait
from gateway.lifecycle import Actor
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import (
    Delivery,
    OutboxMessage,
    Partner,
    PartnerRecord,
    Referral,
    utcnow,
)
from worker_doubles import StoringAdapter, deliverer, referral_between


@pytest.fixture
def sessions(isolated_database_url: str) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(isolated_database_url))


def status_envelopes(sessions: sessionmaker[Session], referral_id: str) -> list[dict[str, Any]]:
    with sessions() as session:
        return list(session.scalars(select(OutboxMessage.envelope).where(
            OutboxMessage.referral_id == referral_id, OutboxMessage.message_type == "status")
            .order_by(OutboxMessage.id)))


def test_a_status_change_is_queued_only_for_a_partner_whose_system_the_gateway_writes_to(
        sessions: sessionmaker[Session], settings: Settings, make_referral: Any) -> None:
    adapter = StoringAdapter()
    worker = deliverer(sessions, settings, adapter)
    sender, receiver, envelope = referral_between(sessions, settings, make_referral,
                                                  receiver_connected=True)
    assert worker.handle(envelope, 1) == Done("delivered")
    # The sender is on the API: it reads the new status there, and nothing is queued.
    assert status_envelopes(sessions, envelope["referral_id"]) == []
    # Once the gateway writes to the sender's system too, its status changes are queued.
    with unit_of_work(sessions) as session:
        session.get_one(Partner, sender).connection = {"base_url": "http://127.0.0.1:9"}
    with unit_of_work(sessions) as session:
        referral = session.get_one(Referral, envelope["referral_id"])
        record_status_event(session=session, contracts=Contracts(settings.contracts_dir),
                            referral=referral, actor=Actor.RECEIVER,
                            actor_partner=session.get_one(Partner, receiver),
                            document={"status": "acknowledged"})
    [queued] = status_envelopes(sessions, envelope["referral_id"])
    assert (queued["target"], queued["state"]) == (sender, "acknowledged")


def test_a_status_message_for_an_api_partner_is_done_and_one_for_an_unknown_event_is_dead(
        sessions: sessionmaker[Session], settings: Settings, make_referral: Any) -> None:
    # None is queued any more, but one queued before (or re-driven) is settled.
    adapter = StoringAdapter()
    worker = deliverer(sessions, settings, adapter)
    sender, _, envelope = referral_between(sessions, settings, make_referral,
                                           receiver_connected=False)
    assert worker.handle(envelope, 1) == Done("delivered")
    with sessions() as session:
        event = session.get_one(Referral, envelope["referral_id"]).events[-1]
        status = {**envelope, "type": "status", "target": sender, "status_event_id": event.id,
                  "state": event.to_state}
    assert worker.handle(status, 1) == Done("the partner reads status through the API")
    unknown = worker.handle({**status, "status_event_id": "no-such-event"}, 1)
    assert isinstance(unknown, Dead) and unknown.reason == "unknown_referral"
    nobody = worker.handle({**status, "target": "no-such-partner"}, 1)
    assert isinstance(nobody, Dead) and nobody.reason == "unknown_referral"
    assert adapter.created == []  # an API partner's system is never called


def test_a_repeated_delivery_stores_one_partner_record_and_two_attempts(
        sessions: sessionmaker[Session], settings: Settings, make_referral: Any) -> None:
    adapter = StoringAdapter()
    worker = deliverer(sessions, settings, adapter)
    _, receiver, envelope = referral_between(sessions, settings, make_referral,
                                             receiver_connected=True)
    assert worker.handle(envelope, 1) == Done("delivered")
    # The broker gives it again (an ack lost): the referral is delivered already.
    assert worker.handle(envelope, 2) == Done("already delivered: nothing to deliver")
    with sessions() as session:
        records = session.scalars(select(PartnerRecord.native_id).where(
            PartnerRecord.referral_id == envelope["referral_id"])).all()
        delivered = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.referral_id == envelope["referral_id"], Delivery.outcome == "delivered",
            Delivery.partner_id == receiver))
    assert records == [f"native-{envelope['referral_id']}"]
    assert delivered == 1 and adapter.created == [envelope["referral_id"]]


def test_a_suspended_target_waits_and_nothing_is_read_or_called(
        sessions: sessionmaker[Session], settings: Settings, make_referral: Any) -> None:
    adapter = StoringAdapter()
    worker = deliverer(sessions, settings, adapter)
    _, receiver, envelope = referral_between(sessions, settings, make_referral,
                                             receiver_connected=True)
    with unit_of_work(sessions) as session:
        session.get_one(Partner, receiver).suspended_at = utcnow()
    assert worker.handle(envelope, 1) == Wait("suspended")
    with unit_of_work(sessions) as session:
        session.get_one(Partner, receiver).suspended_at = None
    assert worker.handle(envelope, 1) == Done("delivered")
    assert adapter.created == [envelope["referral_id"]]


def test_status_events_of_one_transaction_are_numbered_in_turn_and_read_back_in_order(
        sessions: sessionmaker[Session], settings: Settings, make_referral: Any) -> None:
    sender, receiver, envelope = referral_between(sessions, settings, make_referral,
                                                  receiver_connected=False)
    contracts = Contracts(settings.contracts_dir)
    with unit_of_work(sessions) as session:
        # The gateway writes to the sender's system: each change is queued for it.
        session.get_one(Partner, sender).connection = {"base_url": "http://127.0.0.1:9"}
        referral = session.get_one(Referral, envelope["referral_id"])
        assert [e.to_state for e in referral.events] == ["submitted"]  # loaded before
        record_status_event(session=session, contracts=contracts, referral=referral,
                            actor=Actor.GATEWAY, actor_partner=None,
                            document={"status": "delivered"})
        record_status_event(session=session, contracts=contracts, referral=referral,
                            actor=Actor.RECEIVER,
                            actor_partner=session.get_one(Partner, receiver),
                            document={"status": "acknowledged"})
        assert [(e.seq, e.to_state) for e in referral.events] == [
            (1, "submitted"), (2, "delivered"), (3, "acknowledged")]
    with sessions() as session:
        told = session.scalars(select(OutboxMessage.envelope).where(
            OutboxMessage.referral_id == envelope["referral_id"],
            OutboxMessage.message_type == "status").order_by(OutboxMessage.id)).all()
    assert [m["state"] for m in told] == ["delivered", "acknowledged"]


@pytest.mark.parametrize(("stops", "why"), [
    (("consent_withdrawn_at",), "consent withdrawn"),
    (("consent_withdrawn_at", "restricted_at"), "restricted"),
    (("consent_withdrawn_at", "restricted_at", "erased_at"), "erased"),
])
def test_a_referral_stopped_before_delivery_is_withheld_and_says_why(
        sessions: sessionmaker[Session], settings: Settings, make_referral: Any,
        stops: tuple[str, ...], why: str) -> None:
    adapter = StoringAdapter()
    worker = deliverer(sessions, settings, adapter)
    _, _, envelope = referral_between(sessions, settings, make_referral,
                                      receiver_connected=True)
    with unit_of_work(sessions) as session:
        referral = session.get_one(Referral, envelope["referral_id"])
        for column in stops:
            setattr(referral, column, utcnow())
    assert worker.handle(envelope, 1) == Done(f"{why}: nothing delivered")
    assert adapter.created == []  # nothing left for the receiver
    with sessions() as session:
        assert session.scalars(select(Delivery.outcome).where(
            Delivery.referral_id == envelope["referral_id"])).all() == ["withheld"]
