"""Retention: a closed referral is purged once the agreement's retention period has passed.

The period (`retention_days`) is taken from the agreement when the referral is
submitted and runs from its last change after it closed (completed, rejected or
withdrawn). Purging removes the referral, its status events, deliveries, outbox rows,
partner records, dead letters, identifier digests, deadlines and their events; the audit
trail keeps one `referral.purge` entry for it (ids and codes only, as every entry). A
referral that has not closed is never purged: a failed one waits for an operator.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.lifecycle import TERMINAL
from gateway.protection import audit
from gateway.store.db import unit_of_work
from gateway.store.models import (
    DeadLetter,
    DeadlineEvent,
    Delivery,
    IdentifierDigest,
    OutboxMessage,
    PartnerRecord,
    Referral,
    ReferralService,
    StatusEvent,
    TrackedDeadline,
    utcnow,
)

log = structlog.get_logger()
# In deleting order: a deadline's events before the deadline.
DEPENDENTS = (IdentifierDigest, Delivery, OutboxMessage, PartnerRecord, DeadLetter,
              DeadlineEvent, TrackedDeadline, ReferralService)


@dataclass
class PurgeReport:
    purged: list[str] = field(default_factory=list)
    due: list[str] = field(default_factory=list)  # what a dry run would purge


def expired(session: Session, *, now: datetime, limit: int) -> list[str]:
    """Ids of closed referrals past their retention period, oldest first."""
    periods = session.scalars(select(Referral.retention_days).distinct()
                              .where(Referral.retention_days.is_not(None))).all()
    due: list[tuple[datetime, str]] = []
    for days in periods:
        assert days is not None
        due += [(row.updated_at, row.id) for row in session.execute(
            select(Referral.updated_at, Referral.id)
            .where(Referral.retention_days == days, Referral.status.in_(TERMINAL),
                   Referral.updated_at < now - timedelta(days=days))
            .order_by(Referral.updated_at).limit(limit))]
    return [referral_id for _, referral_id in sorted(due)[:limit]]


def purge(sessions: sessionmaker[Session], *, now: datetime | None = None, batch: int = 200,
          dry_run: bool = False, actor: str = "system:retention") -> PurgeReport:
    """Purge every expired referral, a batch per transaction, each one audited."""
    now = now or utcnow()
    report = PurgeReport()
    while True:
        with unit_of_work(sessions) as session:
            ids = expired(session, now=now, limit=batch)
            if dry_run:
                report.due = ids
                return report
            for referral_id in ids:
                _purge_one(session, referral_id, actor=actor)
        report.purged += ids
        if len(ids) < batch:
            break
    log.info("retention_purged", purged=len(report.purged))
    return report


def _purge_one(session: Session, referral_id: str, *, actor: str) -> None:
    referral = session.get(Referral, referral_id, with_for_update=True)
    assert referral is not None
    for model in DEPENDENTS:
        session.execute(delete(model).where(model.referral_id == referral_id))
    session.execute(delete(StatusEvent).where(StatusEvent.referral_id == referral_id))
    audit.record(session, actor=actor, action="referral.purge", partner_id=referral.sender_id,
                 referral_id=referral_id, correlation_id=referral.correlation_id,
                 detail={"receiver": referral.receiver_id, "state": referral.status,
                         "agreement": referral.agreement_id,
                         "retention_days": referral.retention_days})
    session.delete(referral)
    session.flush()
