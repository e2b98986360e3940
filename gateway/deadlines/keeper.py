"""The deadline keeper: deadlines follow each referral from state to state, and the overdue
ones are flagged to both sides.

`tick(sessions, book, now)` does two things, each in short transactions:

1. It applies the status events it has not applied yet (`deadlines_applied_at` is None),
   oldest first and each referral's in order. Moving to a state meets the running
   deadlines that state meets (late: missed), ends those it makes pointless (a withdrawal,
   a failure), pauses those whose clock stands still there (the referral waits on the
   sender) and runs paused ones again; entering a state starts the deadlines the policies
   give it (`deadlines_for`), once per referral, state and deadline.
2. The overdue scan (`service.find_overdue`, one indexed read, rows locked and skipped by a
   second keeper on PostgreSQL): a deadline past due gets the overdue flag, once; past the
   policy's second threshold it escalates, once.

Each flag raised, escalated or cleared is a deadline event, an audit entry, a log line (ids
only) and an alert in the outbox to the sender, the receiver and the observers of the
referral's agreement. Each other change of a deadline is a deadline event.

Instants. What happens to a deadline happens when the status event says the change
occurred (`occurred_at`), never later than the gateway recorded it (`recorded_at`): a
partner whose clock runs ahead cannot put a change in the future, and a change polled late
counts from when it happened at the partner. Flags are the keeper's own acts: they take
the tick's `now`. Nothing here reads a clock except to time the scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, defer, sessionmaker

from gateway.deadlines import compute, service
from gateway.deadlines.alerts import EVENT_OF, Flag, instant
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.calendars import Calendar
from gateway.deadlines.policies import Duration, Rule
from gateway.delivery.outbox import enqueue
from gateway.lifecycle import TERMINAL, State
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.store.db import unit_of_work
from gateway.store.models import DeadlineEvent, Partner, Referral, StatusEvent, TrackedDeadline

log = structlog.get_logger()

ACTOR = "system:keeper"
Observers = Callable[[str | None], frozenset[str]]


@dataclass
class TickReport:
    """What one tick did, in counts."""

    applied: int = 0  # status events applied
    started: int = 0
    finished: int = 0  # met, missed or ended
    raised: int = 0
    escalated: int = 0
    cleared: int = 0
    failed: int = 0  # referrals whose status events could not be applied this time
    scan_seconds: float = 0.0


@dataclass
class _Tick:
    book: DeadlineBook
    now: datetime
    observers: Observers
    report: TickReport = field(default_factory=TickReport)
    partners: dict[str, bool] = field(default_factory=dict)  # observer id → may be told


def tick(sessions: sessionmaker[Session], book: DeadlineBook, now: datetime, *,
         agreements: AgreementRegistry | None = None, batch: int = 200) -> TickReport:
    """Apply the pending status events to the deadlines, then raise and escalate overdue
    flags as of `now`; the alerts go to the outbox."""
    book.refresh()
    observers: Observers = (agreements.observers if agreements is not None
                            else lambda _: frozenset())
    state = _Tick(book=book, now=now, observers=_cached(observers))
    _apply_pending(sessions, state, batch)
    started = time.perf_counter()
    _scan(sessions, state, batch)
    state.report.scan_seconds = time.perf_counter() - started
    return state.report


def _cached(observers: Observers) -> Observers:
    """Observers looked up once per agreement in a tick."""
    seen: dict[str | None, frozenset[str]] = {}

    def lookup(agreement_id: str | None) -> frozenset[str]:
        if agreement_id not in seen:
            seen[agreement_id] = observers(agreement_id)
        return seen[agreement_id]

    return lookup


# ---------------------------------------------------------------------------- status events


def _apply_pending(sessions: sessionmaker[Session], state: _Tick, batch: int) -> None:
    """Every pending status event, a referral per transaction."""
    passed: set[str] = set()  # failed, or held by another keeper: next tick
    while True:
        with sessions() as session:
            query = select(StatusEvent.referral_id).where(
                StatusEvent.deadlines_applied_at.is_(None))
            if passed:
                query = query.where(StatusEvent.referral_id.not_in(passed))
            referral_ids = list(dict.fromkeys(session.scalars(
                query.order_by(StatusEvent.recorded_at, StatusEvent.id).limit(batch))))
        if not referral_ids:
            return
        for referral_id in referral_ids:
            try:
                with unit_of_work(sessions) as session:
                    if not _apply_referral(session, referral_id, state):
                        passed.add(referral_id)
            except OperationalError:
                raise  # the database is away: the scheduler waits and tries again
            except Exception as error:
                # A fault nobody classified must not stop the other referrals' deadlines:
                # its events stay pending and are tried again next tick. Only the type is
                # logged, never the message (it may quote a value).
                passed.add(referral_id)
                state.report.failed += 1
                log.error("deadlines_apply_failed", referral_id=referral_id,
                          error_type=type(error).__name__)


def _apply_referral(session: Session, referral_id: str, state: _Tick) -> bool:
    """Apply one referral's pending events in order; False if another keeper holds it."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    query = select(Referral).where(Referral.id == referral_id)
    if postgresql:
        # NO KEY UPDATE: outbox and deadline rows may still reference the referral meanwhile.
        query = query.with_for_update(skip_locked=True, key_share=True)
    referral = session.scalar(query)
    if referral is None:
        return False
    events = session.scalars(select(StatusEvent).where(
        StatusEvent.referral_id == referral_id, StatusEvent.deadlines_applied_at.is_(None))
        .order_by(StatusEvent.seq)).all()
    deadlines = (select(TrackedDeadline).where(TrackedDeadline.referral_id == referral_id)
                 .order_by(TrackedDeadline.id))
    if postgresql:
        # Waits for a scan that holds one of them, so a flag it raises is seen and cleared.
        deadlines = deadlines.with_for_update()
    rows = list(session.scalars(deadlines))
    for event in events:
        at = min(event.occurred_at, event.recorded_at)
        for row in rows:
            if row.met_at is None and row.cleared_at is None:
                _follow(session, state, referral, row, event.to_state, at)
        rows += _start(session, state, referral, rows, event.to_state, at)
        event.deadlines_applied_at = state.now
        state.report.applied += 1
    return True


def _follow(session: Session, state: _Tick, referral: Referral, row: TrackedDeadline,
            to_state: str, at: datetime) -> None:
    """What the referral's move to `to_state` at `at` does to one open deadline."""
    rule = state.book.rule(row.policy_id, row.state, row.name)
    if rule is None:
        log.warning("deadline_policy_gone", referral_id=referral.id, deadline_id=row.id,
                    policy=row.policy_id, deadline=row.name)
    outcome = rule.outcome_of(to_state) if rule is not None else _outcome_without_rule(
        row, to_state)
    calendar = state.book.calendars().get(row.calendar_id)
    if outcome == "paused":
        if row.paused_at is None:
            service.pause(row, at)
            _record(session, row, "paused", at, by_state=to_state)
        return
    if outcome == "running":
        if row.paused_at is not None:
            due_at = _moved(row.due_at, row.paused_at, at, _due_unit(rule), calendar)
            escalate_at = None if row.escalate_at is None else _moved(
                row.escalate_at, row.paused_at, at, _escalate_unit(rule), calendar)
            service.resume(row, at, due_at=due_at, escalate_at=escalate_at)
            _record(session, row, "resumed", at, by_state=to_state)
        return
    flagged = row.raised_at is not None
    if outcome == "met":
        due_at = row.due_at if row.paused_at is None else _moved(
            row.due_at, row.paused_at, at, _due_unit(rule), calendar)
        service.mark_met(row, at)
        _record(session, row, "missed" if at > due_at else "met", at, by_state=to_state)
    else:
        service.mark_cleared(row, at)
        _record(session, row, "ended", at, by_state=to_state)
    state.report.finished += 1
    if flagged:
        _alert(session, state, referral, row, "cleared")


def _outcome_without_rule(row: TrackedDeadline, to_state: str) -> str:
    """A deadline whose policy left force: leaving its state meets it, unless the referral
    was withdrawn or failed (the rule of a deadline without `met_by`)."""
    return Rule(name=row.name, state=row.state, within=None, by=None, met_by=None,
                pauses_in=frozenset(), escalate_after_due=None).outcome_of(to_state)


def _due_unit(rule: Rule | None) -> str:
    # A date the referral carries moves on by the working days lost, as a count would.
    return rule.within.unit if rule is not None and rule.within is not None else "working_days"


def _escalate_unit(rule: Rule | None) -> str:
    duration: Duration | None = rule.escalate_after_due if rule is not None else None
    return duration.unit if duration is not None else "working_days"


def _moved(deadline_at: datetime, paused_at: datetime, resumed_at: datetime, unit: str,
           calendar: Calendar | None) -> datetime:
    """A due or escalation instant moved on by a pause (elapsed time if the calendar is
    gone)."""
    if calendar is None:
        return deadline_at + max(resumed_at - paused_at, timedelta())
    return compute.resume(deadline_at, paused_at, resumed_at, unit, calendar)


def _start(session: Session, state: _Tick, referral: Referral,
           rows: Sequence[TrackedDeadline], to_state: str, at: datetime
           ) -> list[TrackedDeadline]:
    """Start the deadlines of `to_state` the referral has not had before."""
    policies = state.book.policies()
    if to_state in TERMINAL or to_state == State.FAILED or not any(
            rule.state == to_state for policy in policies for rule in policy.rules):
        return []  # nothing can start: the referral's content is not even opened
    had = {(row.state, row.name) for row in rows}
    receiver = session.get(Partner, referral.receiver_id)
    country = receiver.country if receiver else None
    fresh = [d for d in compute.deadlines_for(referral.content, to_state, at, policies,
                                              state.book.calendars(), receiver_country=country)
             if (d.state, d.name) not in had]
    started = service.track(session, referral_id=referral.id, deadlines=fresh)
    for row in started:
        _record(session, row, "started", at, calendar=row.calendar_id)
    state.report.started += len(started)
    return started


# ---------------------------------------------------------------------------- overdue scan


def _scan(sessions: sessionmaker[Session], state: _Tick, batch: int) -> None:
    """Raise and escalate every flag due at `now`, a batch per transaction."""
    while True:
        with unit_of_work(sessions) as session:
            rows = service.find_overdue(session, state.now, limit=batch)
            referrals = {r.id: r for r in session.scalars(
                select(Referral).options(defer(Referral.content))
                .where(Referral.id.in_({row.referral_id for row in rows})))} if rows else {}
            for row in rows:
                referral = referrals[row.referral_id]
                if service.alert_due(row) == "raise":
                    service.mark_raised(row, state.now)
                    _alert(session, state, referral, row, "overdue")
                    if row.next_alert_at is None or row.next_alert_at > state.now:
                        continue  # the escalation, if any, is still to come
                service.mark_escalated(row, state.now)
                _alert(session, state, referral, row, "escalated")
        if len(rows) < batch:
            return


# ---------------------------------------------------------------------------- records


def _record(session: Session, row: TrackedDeadline, event: str, at: datetime,
            **detail: Any) -> DeadlineEvent:
    """A deadline event with what the deadline looked like then (envelope data only)."""
    record = DeadlineEvent(referral_id=row.referral_id, deadline_id=row.id, event=event, at=at,
                           detail={"deadline": row.name, "state": row.state,
                                   "policy": row.policy_id, "due_at": instant(row.due_at),
                                   "escalate_at": instant(row.escalate_at), **detail})
    session.add(record)
    log.debug(f"deadline_{event}", referral_id=row.referral_id, deadline_id=row.id,
              deadline=row.name, state=row.state)
    return record


def _alert(session: Session, state: _Tick, referral: Referral, row: TrackedDeadline,
           flag: Flag) -> None:
    """Record a flag and tell the sender, the receiver and the agreement's observers."""
    event = _record(session, row, EVENT_OF[flag], state.now, flag=flag)
    session.flush()  # the event's id goes into every envelope
    told = [(referral.sender_id, "sender"), (referral.receiver_id, "receiver")]
    told += [(observer, "observer") for observer in sorted(state.observers(referral.agreement_id))
             if observer not in (referral.sender_id, referral.receiver_id)
             and _may_be_told(session, state, observer, referral)]
    for target, role in told:
        enqueue(session, referral, None, message_type="alert", target=target,
                deadline_event_id=event.id, flag=flag, deadline=row.name, role=role)
    audit.record(session, actor=ACTOR, action="deadline.alert", partner_id=referral.receiver_id,
                 referral_id=referral.id, correlation_id=referral.correlation_id,
                 detail={"flag": flag, "deadline": row.name, "state": row.state,
                         "policy": row.policy_id, "deadline_event": event.id,
                         "told": [target for target, _ in told]})
    log.info(f"deadline_{event.event}", referral_id=referral.id, deadline_id=row.id,
             deadline=row.name, state=row.state, sender=referral.sender_id,
             receiver=referral.receiver_id, observers=len(told) - 2,
             correlation_id=referral.correlation_id)
    report = state.report
    report.raised += flag == "overdue"
    report.escalated += flag == "escalated"
    report.cleared += flag == "cleared"


def _may_be_told(session: Session, state: _Tick, observer: str, referral: Referral) -> bool:
    """Whether an observer is a registered, active partner (checked once per tick)."""
    if observer not in state.partners:
        partner = session.get(Partner, observer)
        state.partners[observer] = partner is not None and partner.active
        if not state.partners[observer]:
            log.warning("observer_unknown", observer=observer, agreement=referral.agreement_id)
    return state.partners[observer]
