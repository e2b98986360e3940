"""Deadlines in the store: start them, find the overdue ones, and record what became of them.

Each function keeps `next_alert_at` true to the row (the scan's one indexed column), so the
overdue scan is a single range read however many deadlines are stored. The caller owns the
transaction (one unit of work) and writes the status events, audit entries and outbox
messages that go with a change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gateway.deadlines.compute import Deadline
from gateway.store.models import TrackedDeadline

Alert = Literal["raise", "escalate"]


def track(session: Session, *, referral_id: str,
          deadlines: Iterable[Deadline]) -> list[TrackedDeadline]:
    """Store the deadlines that started for a referral (from `deadlines_for`)."""
    rows = [TrackedDeadline(referral_id=referral_id, state=d.state, name=d.name,
                            policy_id=d.policy_id, calendar_id=d.calendar,
                            started_at=d.started_at, due_at=d.due_at, escalate_at=d.escalate_at,
                            next_alert_at=d.due_at, paused_seconds=0)
            for d in deadlines]
    session.add_all(rows)
    session.flush()
    return rows


def find_overdue(session: Session, now: datetime, *, limit: int = 500
                 ) -> Sequence[TrackedDeadline]:
    """Deadlines with an alert due at `now` (a flag to raise or to escalate), oldest first."""
    locking = session.get_bind().dialect.name == "postgresql"
    return session.scalars(overdue_query(now, limit=limit, lock=locking)).all()


def overdue_query(now: datetime, *, limit: int, lock: bool) -> Select[TrackedDeadline]:
    """The scan: one range read on the partial index of `next_alert_at`.

    With `lock` (PostgreSQL) the rows are locked and rows another scanner holds are skipped,
    so two scanners never alert twice.
    """
    query = (select(TrackedDeadline)
             .where(TrackedDeadline.next_alert_at <= now)
             .order_by(TrackedDeadline.next_alert_at, TrackedDeadline.id)
             .limit(limit))
    return query.with_for_update(skip_locked=True) if lock else query


def alert_due(row: TrackedDeadline) -> Alert:
    """Which alert the scan owes a row it found: the overdue flag, or its escalation."""
    return "raise" if row.raised_at is None else "escalate"


def mark_raised(row: TrackedDeadline, at: datetime) -> None:
    """The overdue flag was raised: next comes the escalation, if the policy has one."""
    row.raised_at = at
    row.next_alert_at = row.escalate_at if row.escalate_at and row.escalated_at is None else None


def mark_escalated(row: TrackedDeadline, at: datetime) -> None:
    """The overdue deadline was escalated: nothing more is owed."""
    if row.raised_at is None:  # escalation passed before a scan ran: both at once
        row.raised_at = at
    row.escalated_at = at
    row.next_alert_at = None


def mark_met(row: TrackedDeadline, at: datetime) -> None:
    """The referral reached a state that meets the deadline (late if `at` > `due_at`)."""
    _finish(row, at)
    row.met_at = at


def mark_cleared(row: TrackedDeadline, at: datetime) -> None:
    """The deadline no longer applies (the referral was withdrawn or ended otherwise)."""
    _finish(row, at)
    row.cleared_at = at


def pause(row: TrackedDeadline, at: datetime) -> None:
    """The referral waits on the sender: the clock stands still, no alert is owed."""
    if row.paused_at is None:
        row.paused_at = at
        row.next_alert_at = None


def resume(row: TrackedDeadline, at: datetime, *, due_at: datetime,
           escalate_at: datetime | None) -> None:
    """The clock runs again with the due and escalation instants moved on (see
    `compute.resume`)."""
    if row.paused_at is None:
        return
    row.paused_seconds += int((at - row.paused_at).total_seconds())
    row.paused_at = None
    row.due_at, row.escalate_at = due_at, escalate_at
    if row.raised_at is None:
        row.next_alert_at = due_at
    elif row.escalated_at is None:
        row.next_alert_at = escalate_at


def _finish(row: TrackedDeadline, at: datetime) -> None:
    if row.paused_at is not None:
        row.paused_seconds += int((at - row.paused_at).total_seconds())
        row.paused_at = None
    row.next_alert_at = None
