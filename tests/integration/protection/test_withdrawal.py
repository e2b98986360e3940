"""Consent withdrawn after a delivery failed: the dead letter can no longer be re-driven."""

import uuid

from gateway.casework import withdraw_consent
from gateway.contracts import Contracts
from gateway.delivery import dead_letters
from gateway.protection import audit
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AuditEntry, Partner, Referral
from sharing import stored_referral


def test_a_failed_delivery_is_not_redriven_once_consent_is_withdrawn(
    settings, make_referral
) -> None:
    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    referral_id, sender_id, receiver_id = stored_referral(settings, make_referral,
                                                          prefix="wd")
    with unit_of_work(sessions) as session:
        referral = session.get_one(Referral, referral_id)
        envelope = {
            "message_id": uuid.uuid4().hex, "type": "deliver", "referral_id": referral.id,
            "target": receiver_id, "correlation_id": referral.correlation_id}
        letter = dead_letters.record(
            session=session, contracts=contracts, envelope=envelope,
            headers={"x-casebridge-reason": "retries_exhausted", "x-casebridge-detail": "down"},
            routing_key=f"deliver.{receiver_id}", message_id=envelope["message_id"])
        assert letter is not None and referral.status == "failed"

    with unit_of_work(sessions) as session:
        referral = session.get(Referral, referral.id)
        told = withdraw_consent(session=session, contracts=contracts, referral=referral,
                                partner=session.get(Partner, sender_id),
                                withdrawn_on=referral.created_at.date())
        assert told is None  # failed: nothing reached the receiver, nothing to tell it
    with unit_of_work(sessions) as session:
        done = dead_letters.redrive(session=session, contracts=contracts,
                                    letters=dead_letters.find(session=session,
                                                              partner=receiver_id),
                                    actor="user:test")
    assert done == []
    with sessions() as session:
        referral = session.get(Referral, referral.id)
        assert referral.status == "failed" and referral.consent_withdrawn_at is not None
        actions = [e.action for e in session.query(AuditEntry).filter_by(
            referral_id=referral.id).order_by(AuditEntry.seq)]
        assert actions == ["referral.create", "status.change", "delivery.dead_letter",
                           "consent.withdraw"]
        assert audit.verify(session).ok
