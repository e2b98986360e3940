"""When a referral's deadlines fall due: pure computation from its policies and calendars.

`deadlines_for` answers, for a referral that has just entered a state, which deadlines
start and when each is due and escalates, as UTC instants. `resume` moves a deadline on by
the time its clock stood still. Nothing here reads a clock or the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import structlog

from gateway.deadlines.calendars import (
    Calendar,
    add_calendar_hours,
    add_working_days,
    working_days_between,
)
from gateway.deadlines.policies import DateField, Duration, Policy, Rule

log = structlog.get_logger()

# The last moment of the due day: an end-of-day instant is the next midnight, local, and
# counting on from it must start from the day it closes, not the day it opens.
_JUST_BEFORE = timedelta(microseconds=1)


@dataclass(frozen=True)
class Deadline:
    """One deadline of one referral: which policy and rule, when due, when it escalates."""

    policy_id: str
    name: str
    state: str
    calendar: str
    started_at: datetime
    due_at: datetime
    escalate_at: datetime | None


def deadlines_for(referral_document: Mapping[str, Any], state: str, entered_at: datetime,
                  policies: Iterable[Policy], calendars: Mapping[str, Calendar], *,
                  receiver_country: str | None = None) -> list[Deadline]:
    """The deadlines that start when the referral enters `state` at `entered_at`.

    Of policies giving a deadline of the same name from the same state, the most specific
    (the one naming most of kind, subtype, module, service, sender, receiver, country)
    wins; a tie goes to the policy id first in alphabetical order. A deadline `by` a date
    the referral does not carry does not start: no date is made up.
    """
    chosen: dict[str, tuple[int, str, Policy, Rule]] = {}
    for policy in policies:
        if not policy.applies_to.matches(referral_document, receiver_country):
            continue
        rank = -policy.applies_to.specificity()
        for rule in policy.rules:
            if rule.state != state:
                continue
            best = chosen.get(rule.name)
            if best is None or (rank, policy.id) < best[:2]:
                chosen[rule.name] = (rank, policy.id, policy, rule)
    found: list[Deadline] = []
    for _, _, policy, rule in chosen.values():
        calendar = calendars[policy.calendar]
        due_at = _due(referral_document, rule, entered_at, calendar)
        if due_at is None:
            log.info("deadline_without_date", policy=policy.id, deadline=rule.name,
                     state=state, field=rule.by)
            continue
        escalate_at = (None if rule.escalate_after_due is None
                       else after(due_at, rule.escalate_after_due, calendar))
        found.append(Deadline(policy_id=policy.id, name=rule.name, state=state,
                              calendar=calendar.id, started_at=entered_at, due_at=due_at,
                              escalate_at=escalate_at))
    return sorted(found, key=lambda d: (d.due_at, d.name))


def _due(document: Mapping[str, Any], rule: Rule, entered_at: datetime,
         calendar: Calendar) -> datetime | None:
    if rule.within is not None:
        return _add(entered_at, rule.within, calendar)
    assert rule.by is not None  # checked: a rule has one of within and by
    day = date_field(document, rule.by)
    return None if day is None else calendar.end_of_day(day)


def date_field(document: Mapping[str, Any], field: DateField) -> date | None:
    """The date the referral carries in `field`; of several services, the earliest."""
    if field == "transfer.return_date":
        texts = [(document.get("transfer") or {}).get("return_date")]
    else:
        texts = [s.get("due_date") for s in document.get("services") or []
                 if isinstance(s, dict)]
    days = [date.fromisoformat(t) for t in texts if isinstance(t, str)]
    return min(days) if days else None


def _add(start: datetime, duration: Duration, calendar: Calendar) -> datetime:
    if duration.unit == "working_days":
        return add_working_days(start, duration.amount, calendar)
    return add_calendar_hours(start, duration.amount, calendar)


def after(due_at: datetime, duration: Duration, calendar: Calendar) -> datetime:
    """`duration` after a due instant (working days count from the due day's end)."""
    if duration.unit == "working_days":
        return add_working_days(due_at - _JUST_BEFORE, duration.amount, calendar)
    return add_calendar_hours(due_at, duration.amount, calendar)


def resume(deadline_at: datetime, paused_at: datetime, resumed_at: datetime, unit: str,
           calendar: Calendar) -> datetime:
    """`deadline_at` (a due or escalation instant) moved on by a pause of its clock.

    Calendar hours move on by the time paused; working days by the working days that
    passed during the pause, so a deadline never gains a weekend it did not lose.
    """
    if unit == "calendar_hours":
        return deadline_at + (resumed_at - paused_at)
    lost = working_days_between(paused_at, resumed_at, calendar)
    return deadline_at if lost <= 0 else add_working_days(deadline_at - _JUST_BEFORE, lost,
                                                          calendar)


def due_day(deadline_at: datetime, calendar: Calendar) -> date:
    """The day a deadline falls due at the office (the day an end-of-day instant closes)."""
    return calendar.local_date(deadline_at - _JUST_BEFORE)
