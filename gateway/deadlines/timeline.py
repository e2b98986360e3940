"""A referral's timeline: its status changes, its deadlines and their flags, and every
delivery attempt, in the order they happened.

Read from the non-personal columns only (no content is decrypted, no note or partner error
is shown), so the same timeline serves the partners of the referral, operations and the
console. Whoever calls decides who may see it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import NotFound
from gateway.store.models import (
    DeadlineEvent,
    Delivery,
    Referral,
    StatusEvent,
    TrackedDeadline,
)

# Deadline events that change the overdue flag: the console marks them.
FLAG_EVENTS = frozenset({"raised", "escalated", "cleared"})


class StatusEntry(BaseModel):
    """The referral changed state."""

    type: Literal["status"] = "status"
    at: datetime = Field(description="When it happened (as the partner said)")
    recorded_at: datetime = Field(description="When the gateway recorded it")
    seq: int
    from_state: str | None
    to_state: str
    actor: str = Field(description="sender, receiver or gateway")
    actor_partner: str | None
    reason_code: str | None
    inferred: bool = Field(description="A step the gateway filled in between two polls")


class DeadlineEntry(BaseModel):
    """Something happened to one of the referral's deadlines."""

    type: Literal["deadline"] = "deadline"
    at: datetime
    event: str = Field(description="started, paused, resumed, met (in time), missed (met "
                       "late), ended (no longer applies), raised (overdue), escalated, "
                       "cleared (the overdue flag came down)")
    deadline: str = Field(description="The deadline's name in its policy")
    state: str = Field(description="The state that started its clock")
    policy: str
    due_at: datetime = Field(description="When it falls (or fell) due, pauses counted")
    escalate_at: datetime | None


class DeliveryEntry(BaseModel):
    """One attempt to hand the referral, or one of its changes, to a partner system."""

    type: Literal["delivery"] = "delivery"
    at: datetime = Field(description="When the attempt started")
    finished_at: datetime | None
    partner: str = Field(description="The partner it was delivered to")
    message: Literal["referral", "status", "alert"] = Field(
        description="What was delivered: the referral, a status change or a deadline alert")
    status_seq: int | None = Field(description="The status change delivered, if one was")
    attempt: int
    outcome: str
    detail: str | None = Field(description="The gateway's own summary of a failure (as "
                               "logged); never the partner's message, which may quote the "
                               "record")


def _message(message_type: str | None, status_event_id: str | None
             ) -> Literal["referral", "status", "alert"]:
    """What an attempt delivered (attempts stored before deliveries named it: by their
    status event)."""
    if message_type == "alert":
        return "alert"
    return "status" if message_type == "status" or status_event_id else "referral"


Entry = Annotated[StatusEntry | DeadlineEntry | DeliveryEntry, Field(discriminator="type")]


class DeadlineSummary(BaseModel):
    """One deadline as it stands."""

    deadline: str
    state: str
    policy: str
    calendar: str
    started_at: datetime
    due_at: datetime
    escalate_at: datetime | None
    outcome: Literal["running", "paused", "met", "missed", "ended"]
    flag: Literal["overdue", "escalated"] | None = Field(
        description="The overdue flag, while it is up")

    @classmethod
    def of(cls, row: TrackedDeadline) -> DeadlineSummary:
        finished = row.met_at is not None or row.cleared_at is not None
        flag: Literal["overdue", "escalated"] | None = None
        if not finished and row.raised_at is not None:
            flag = "escalated" if row.escalated_at is not None else "overdue"
        return cls(deadline=row.name, state=row.state, policy=row.policy_id,
                   calendar=row.calendar_id, started_at=row.started_at, due_at=row.due_at,
                   escalate_at=row.escalate_at, outcome=_outcome(row), flag=flag)


class Timeline(BaseModel):
    referral_id: str
    correlation_id: str
    kind: str
    status: str
    sender: str
    receiver: str
    deadlines: list[DeadlineSummary]
    entries: list[Entry] = Field(description="Oldest first")

    @property
    def flagged(self) -> bool:
        """An overdue flag is up on one of its deadlines."""
        return any(d.flag for d in self.deadlines)


def referral_timeline(*, session: Session, referral_id: str) -> Timeline:
    """The timeline of a referral, or NotFound; the caller has checked who may see it."""
    referral = session.execute(
        select(Referral.id, Referral.correlation_id, Referral.kind, Referral.status,
               Referral.sender_id, Referral.receiver_id)
        .where(Referral.id == referral_id)).one_or_none()
    if referral is None:
        raise NotFound("referral")
    seq_of: dict[str, int] = {}
    entries: list[tuple[datetime, int, int, Entry]] = []
    for event in session.execute(
            select(StatusEvent.id, StatusEvent.seq, StatusEvent.from_state,
                   StatusEvent.to_state, StatusEvent.actor, StatusEvent.actor_partner_id,
                   StatusEvent.reason_code, StatusEvent.inferred, StatusEvent.occurred_at,
                   StatusEvent.recorded_at).where(StatusEvent.referral_id == referral_id)):
        seq_of[event.id] = event.seq
        entries.append((event.occurred_at, 0, event.seq, StatusEntry(
            at=event.occurred_at, recorded_at=event.recorded_at, seq=event.seq,
            from_state=event.from_state, to_state=event.to_state, actor=event.actor,
            actor_partner=event.actor_partner_id, reason_code=event.reason_code,
            inferred=event.inferred)))
    rows = session.scalars(select(TrackedDeadline).where(
        TrackedDeadline.referral_id == referral_id).order_by(TrackedDeadline.started_at,
                                                             TrackedDeadline.id)).all()
    by_id = {row.id: row for row in rows}
    for happened in session.scalars(select(DeadlineEvent).where(
            DeadlineEvent.referral_id == referral_id)):
        row = by_id[happened.deadline_id]
        entries.append((happened.at, 1, happened.id, DeadlineEntry(
            at=happened.at, event=happened.event, deadline=row.name, state=row.state,
            policy=row.policy_id, due_at=row.due_at, escalate_at=row.escalate_at)))
    for delivery in session.execute(
            select(Delivery.id, Delivery.partner_id, Delivery.status_event_id,
                   Delivery.message_type, Delivery.attempt,
                   Delivery.outcome, Delivery.detail, Delivery.started_at, Delivery.finished_at)
            .where(Delivery.referral_id == referral_id)):
        status_seq = seq_of.get(delivery.status_event_id) if delivery.status_event_id else None
        entries.append((delivery.started_at, 2, delivery.id, DeliveryEntry(
            at=delivery.started_at, finished_at=delivery.finished_at,
            partner=delivery.partner_id,
            message=_message(delivery.message_type, delivery.status_event_id),
            status_seq=status_seq, attempt=delivery.attempt, outcome=delivery.outcome,
            detail=delivery.detail)))
    entries.sort(key=lambda entry: entry[:3])
    return Timeline(referral_id=referral.id, correlation_id=referral.correlation_id,
                    kind=referral.kind, status=referral.status,
                    sender=referral.sender_id, receiver=referral.receiver_id,
                    deadlines=[DeadlineSummary.of(row) for row in rows],
                    entries=[entry for *_, entry in entries])


def _outcome(row: TrackedDeadline) -> Literal["running", "paused", "met", "missed", "ended"]:
    if row.met_at is not None:
        return "met" if row.met_at <= row.due_at else "missed"
    if row.cleared_at is not None:
        return "ended"
    return "paused" if row.paused_at is not None else "running"
