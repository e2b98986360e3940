"""A month of referrals with known turnaround figures, written straight into a store.

Every referral is delivered one hour after it is submitted; the hours below count from that
delivery. Partner ids get a suffix of their own, so several histories share a store.

  id  kind   pair unit     services       1st answer  accepted completed  deadlines
  r1  ref    A→B  Unit 1   psychosocial   ack 2h      4h       48h        ack met, complete late
  r2  ref    A→B  Unit 1   psy., legal    ack 6h      10h                 ack met
  r3  ref    A→B  Unit 2   legal          accept 12h  12h      100h       ack met
  r4  ref    A→B  (none)   psychosocial   reject 30h                      ack late
  r5  ref    A→B  Unit 2   psychosocial                                   ack overdue now
  r6  ref    A→B  not recorded (never delivered)                          raised, then ended
  t1  trans  A→C  PDU 1    (none)         ack 24h     72h      240h       decision met
  t2  trans  A→C  PDU 1    (none)         accept 48h  48h                 decision raised, late

Two more referrals A→B fall just outside the month (the last second before it, the first
second after it) and must count nowhere.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gateway.partners import register_partner
from gateway.store.models import (
    Referral,
    ReferralService,
    StatusEvent,
    TrackedDeadline,
    new_id,
)

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class History:
    a: str
    b: str
    c: str
    first: datetime  # the month's first instant
    ids: dict[str, str]


def seed_history(session: Session, first: datetime) -> History:
    """Write the table above into `session` for the month starting at `first` (UTC)."""
    suffix = uuid.uuid4().hex[:8]
    a, b, c = f"ha-{suffix}", f"hb-{suffix}", f"hc-{suffix}"
    for partner in (a, b, c):
        register_partner(session=session, partner_id=partner, name="History partner",
                         system="other")
    ids: dict[str, str] = {}

    def referral(name: str, day: int, *, receiver: str = b, kind: str = "referral",
                 unit: str | None = None, services: list[str] | None = None,
                 steps: tuple[tuple[str, float], ...] = (), delivered: bool = True,
                 submitted: datetime | None = None) -> tuple[str, datetime]:
        created = submitted or first + timedelta(days=day, hours=8)
        row = Referral(id=new_id(), kind=kind, sender_id=a, receiver_id=receiver,
                       status="submitted", correlation_id=f"corr-{name}-{suffix}",
                       request_hash="0" * 64, content={}, created_at=created,
                       updated_at=created, receiver_unit=unit, service_types=services)
        session.add(row)
        session.add_all(ReferralService(referral=row, service_type=service, created_at=created)
                        for service in services or [])
        events = [("submitted", created)]
        delivered_at = created + HOUR
        if delivered:
            events.append(("delivered", delivered_at))
            events += [(state, delivered_at + hours * HOUR) for state, hours in steps]
        previous = None
        for seq, (state, at) in enumerate(events, start=1):
            session.add(StatusEvent(id=new_id(), referral=row, seq=seq, from_state=previous,
                                    to_state=state, actor="receiver", occurred_at=at,
                                    recorded_at=at, content={}))
            previous = state
        row.status = previous or "submitted"
        session.flush()
        ids[name] = row.id
        return row.id, delivered_at

    def deadline(referral_id: str, start: datetime, name: str, *, due: float,
                 met: float | None = None, raised: float | None = None,
                 ended: float | None = None) -> None:
        session.add(TrackedDeadline(
            referral_id=referral_id, state="delivered", name=name, policy_id="history",
            calendar_id="gb-eng", started_at=start, due_at=start + due * HOUR,
            escalate_at=None, next_alert_at=None, paused_seconds=0,
            met_at=None if met is None else start + met * HOUR,
            raised_at=None if raised is None else start + raised * HOUR,
            cleared_at=None if ended is None else start + ended * HOUR))

    psychosocial, legal = "psychosocial_support", "legal_aid"
    r1, at = referral("r1", 1, unit="Unit 1", services=[psychosocial], steps=(
        ("acknowledged", 2), ("accepted", 4), ("completed", 48)))
    deadline(r1, at, "acknowledge", due=48, met=2)
    deadline(r1, at, "complete", due=24, met=48, raised=24)
    r2, at = referral("r2", 2, unit="Unit 1", services=[legal, psychosocial], steps=(
        ("acknowledged", 6), ("accepted", 10)))
    deadline(r2, at, "acknowledge", due=48, met=6)
    r3, at = referral("r3", 3, unit="Unit 2", services=[legal], steps=(
        ("accepted", 12), ("completed", 100)))
    deadline(r3, at, "acknowledge", due=48, met=12)
    r4, at = referral("r4", 4, services=[psychosocial], steps=(("rejected", 30),))
    deadline(r4, at, "acknowledge", due=24, met=30, raised=24)
    r5, at = referral("r5", 5, unit="Unit 2", services=[psychosocial])
    deadline(r5, at, "acknowledge", due=24, raised=24)
    r6, at = referral("r6", 6, delivered=False)
    deadline(r6, at, "deliver", due=2, raised=2, ended=5)
    t1, at = referral("t1", 7, receiver=c, kind="transfer", unit="PDU 1", services=[], steps=(
        ("acknowledged", 24), ("accepted", 72), ("completed", 240)))
    deadline(t1, at, "transfer_decision", due=480, met=72)
    t2, at = referral("t2", 8, receiver=c, kind="transfer", unit="PDU 1", services=[], steps=(
        ("accepted", 48),))
    deadline(t2, at, "transfer_decision", due=24, met=48, raised=24)
    # Just outside the month: never counted.
    before, _ = referral("before", 0, unit="Unit 1", services=[psychosocial],
                         submitted=first - timedelta(seconds=1), steps=(("accepted", 1),))
    deadline(before, first, "acknowledge", due=1, raised=1)
    referral("after", 0, unit="Unit 1", services=[psychosocial],
             submitted=_next_month(first), steps=(("accepted", 1),))
    session.flush()
    return History(a, b, c, first, ids)


def _next_month(first: datetime) -> datetime:
    return (first + timedelta(days=32)).replace(day=1)
