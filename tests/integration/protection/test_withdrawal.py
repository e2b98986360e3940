"""Consent withdrawn after a delivery failed: the dead letter can no longer be re-driven."""

import uuid

from gateway.contracts import Contracts
from gateway.delivery import dead_letters
from gateway.partners import register_partner
from gateway.protection import audit
from gateway.referrals import submit_referral, withdraw_consent
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AuditEntry, Partner, Referral
from sharing import agreed


def test_a_failed_delivery_is_not_redriven_once_consent_is_withdrawn(
    settings, make_referral
) -> None:
    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    sender_id, receiver_id = (f"wd-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with unit_of_work(sessions) as session:
        for partner_id in (sender_id, receiver_id):
            register_partner(session=session, partner_id=partner_id, name="x", system="other")
        referral = submit_referral(
            session=session, contracts=contracts,
            agreements=agreed(settings, sender_id, receiver_id),
            sender=session.get(Partner, sender_id),
            document=make_referral(sender_id, receiver_id), idempotency_key="wd",
            correlation_id=f"corr-{sender_id}").referral
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
