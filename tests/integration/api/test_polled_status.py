"""Status changes read from a partner's system: skipped states inferred, old reports ignored."""


import pytest

from gateway.casework import record_status_event
from gateway.contracts import Contracts
from gateway.errors import LifecycleViolation
from gateway.lifecycle import Actor
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import Partner, Referral
from servers import gateway_marks_delivered
from sharing import stored_referral


@pytest.fixture
def delivered_referral(settings, make_referral):
    referral_id, _, receiver_id = stored_referral(settings, make_referral, prefix="poll")
    gateway_marks_delivered(settings, referral_id)
    return (make_sessionmaker(make_engine(settings.database_url)),
            Contracts(settings.contracts_dir), referral_id, receiver_id)


def apply(sessions, contracts, referral_id, receiver_id, status, *, polled):
    document = status if isinstance(status, dict) else {"status": status}
    with unit_of_work(sessions) as session:
        return record_status_event(
            session=session, contracts=contracts, referral=session.get(Referral, referral_id),
            actor=Actor.RECEIVER, actor_partner=session.get(Partner, receiver_id),
            document=document, polled=polled)


def test_polled_change_records_the_states_skipped_between_polls(delivered_referral) -> None:
    sessions, contracts, referral_id, receiver_id = delivered_referral
    assert apply(sessions, contracts, referral_id, receiver_id, "in_progress", polled=True)
    with sessions() as session:
        events = session.get(Referral, referral_id).events
        steps = [(e.to_state, e.content.get("inferred", False), e.inferred) for e in events]
    assert steps == [("submitted", False, False), ("delivered", False, False),
                     ("accepted", True, True), ("in_progress", False, False)]


def test_an_old_polled_report_changes_nothing(delivered_referral) -> None:
    sessions, contracts, referral_id, receiver_id = delivered_referral
    apply(sessions, contracts, referral_id, receiver_id, "accepted", polled=True)
    apply(sessions, contracts, referral_id, receiver_id, "in_progress", polled=True)
    assert apply(sessions, contracts, referral_id, receiver_id, "accepted", polled=True) is None
    with sessions() as session:
        assert session.get(Referral, referral_id).status == "in_progress"


def test_an_api_event_is_never_inferred(delivered_referral) -> None:
    sessions, contracts, referral_id, receiver_id = delivered_referral
    with pytest.raises(LifecycleViolation):
        apply(sessions, contracts, referral_id, receiver_id, "in_progress", polled=False)


def test_a_sender_enforcing_a_challenged_transfer_is_not_taken_for_an_old_report(
    settings, make_referral
) -> None:
    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    referral_id, sender_id, receiver_id = stored_referral(
        settings, lambda sender, receiver: make_referral(sender, receiver, kind="transfer"),
        prefix="poll")
    gateway_marks_delivered(settings, referral_id)
    apply(sessions, contracts, referral_id, receiver_id, "accepted", polled=True)
    apply(sessions, contracts, referral_id, receiver_id, {"status": "challenged", "reason": {
        "code": "risk_concerns"}}, polled=True)
    with unit_of_work(sessions) as session:
        enforced = record_status_event(
            session=session, contracts=contracts, referral=session.get(Referral, referral_id),
            actor=Actor.SENDER, actor_partner=session.get(Partner, sender_id),
            document={"status": "accepted"}, polled=True)
    assert enforced is not None and enforced.from_state == "challenged"
