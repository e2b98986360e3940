"""Retention: closed referrals past their agreement's period are purged, audited, nothing else."""

from datetime import timedelta

from sqlalchemy import func, select, update

from gateway.casework import record_status_event, submit_referral
from gateway.contracts import Contracts
from gateway.lifecycle import Actor
from gateway.partners import register_partner
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.retention import purge
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import (
    AuditEntry,
    IdentifierDigest,
    OutboxMessage,
    Referral,
    StatusEvent,
    utcnow,
)
from sharing import write_agreement


def test_closed_referrals_past_retention_are_purged_and_the_purge_is_audited(
    isolated_database_url, settings, tmp_path, make_referral, cli
) -> None:
    sessions = make_sessionmaker(make_engine(isolated_database_url))
    contracts = Contracts(settings.contracts_dir)
    write_agreement(tmp_path, "isp-short", ["ret-sender", "ret-receiver"], retention_days=30)
    agreements = AgreementRegistry(tmp_path, contracts)
    with unit_of_work(sessions) as session:
        sender, _ = register_partner(session=session, partner_id="ret-sender", name="S",
                                     system="other")
        register_partner(session=session, partner_id="ret-receiver", name="R", system="other")
    ids = []
    for n in range(3):
        with unit_of_work(sessions) as session:
            ids.append(submit_referral(
                session=session, contracts=contracts, agreements=agreements,
                sender=session.get(type(sender), "ret-sender"),
                document=make_referral("ret-sender", "ret-receiver"),
                idempotency_key=f"ret-{n}", correlation_id=f"corr-ret-{n}").referral.id)
    closed_long_ago, closed_lately, still_open = ids
    with unit_of_work(sessions) as session:
        for referral_id in (closed_long_ago, closed_lately):
            record_status_event(session=session, contracts=contracts,
                                referral=session.get(Referral, referral_id),
                                actor=Actor.SENDER, actor_partner=None,
                                document={"status": "withdrawn"})
        session.execute(update(Referral).where(Referral.id.in_([closed_long_ago, still_open]))
                        .values(updated_at=utcnow() - timedelta(days=31)))

    env = {"database_url": isolated_database_url}
    dry = cli("purge", "--dry-run", **env)
    assert dry.exit_code == 0, dry.output
    assert dry.output.strip() == f"due for purging: 1 {closed_long_ago}"
    result = cli("purge", **env)
    assert result.exit_code == 0 and "purged: 1 referrals" in result.output

    with sessions() as session:
        assert set(session.scalars(select(Referral.id))) == {closed_lately, still_open}
        for model in (StatusEvent, OutboxMessage, IdentifierDigest):
            assert session.scalar(select(func.count()).select_from(model).where(
                model.referral_id == closed_long_ago)) == 0
        purged = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "referral.purge")).all()
        assert [(e.referral_id, e.detail["retention_days"]) for e in purged] == [
            (closed_long_ago, 30)]
        # The trail still holds the referral's earlier entries, and the chain is intact.
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.referral_id == closed_long_ago)) >= 3
        assert audit.verify(session).ok
    assert purge(sessions).purged == []  # nothing more is due
