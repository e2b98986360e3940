"""Response shapes of the API (requests are validated against contracts/ instead)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.errors import FieldError
from gateway.lifecycle import Actor, Kind, State, allowed_next
from gateway.store.models import Referral, StatusEvent


class StatusEventOut(BaseModel):
    id: str
    seq: int
    from_state: str | None
    to_state: str
    actor: str
    actor_partner: str | None
    reason_code: str | None
    occurred_at: datetime
    recorded_at: datetime
    details: dict[str, Any] = Field(description="reason text, note, outcome, native status")

    @classmethod
    def of(cls, event: StatusEvent) -> "StatusEventOut":
        return cls(id=event.id, seq=event.seq, from_state=event.from_state,
                   to_state=event.to_state, actor=event.actor,
                   actor_partner=event.actor_partner_id, reason_code=event.reason_code,
                   occurred_at=event.occurred_at, recorded_at=event.recorded_at,
                   details=event.content)


class ReferralSummary(BaseModel):
    id: str
    kind: str
    subtype: str | None
    status: str
    sender: str
    receiver: str
    correlation_id: str
    created_at: datetime
    updated_at: datetime
    due_at: datetime | None
    next_states: dict[str, list[str]] = Field(
        description="What may come next, by who may cause it (sender, receiver, gateway)")

    @classmethod
    def fields_of(cls, referral: Referral) -> dict[str, Any]:
        kind, state = Kind(referral.kind), State(referral.status)
        return dict(
            id=referral.id, kind=referral.kind, subtype=referral.subtype, status=referral.status,
            sender=referral.sender_id, receiver=referral.receiver_id,
            correlation_id=referral.correlation_id, created_at=referral.created_at,
            updated_at=referral.updated_at, due_at=referral.due_at,
            next_states={a.value: [s.value for s in allowed_next(kind, state, a)] for a in Actor},
        )

    @classmethod
    def of(cls, referral: Referral) -> "ReferralSummary":
        return cls(**cls.fields_of(referral))


class Note(BaseModel):
    """A warning about a field, named by JSON Pointer (never repeating its value)."""

    pointer: str
    rule: str
    detail: str


class ReferralOut(ReferralSummary):
    content: dict[str, Any] = Field(
        description="The receiver's copy of the canonical document (contracts/): what the "
        "consent and the agreement let leave")
    withheld: list[str] = Field(
        description="JSON Pointers of the sender's fields the need-to-know filter removed")
    agreement_id: str | None = Field(description="The data-sharing agreement it left under")
    consent_withdrawn_at: datetime | None
    restricted_at: datetime | None = Field(
        description="When a data-subject request restricted it: its content and status "
        "details are no longer shown")
    erased_at: datetime | None = Field(
        description="When a data-subject request erased it: nothing personal is kept")
    events: list[StatusEventOut]
    warnings: list[Note] = Field(
        default=[], description="On a new submission only: what the service directory "
        "noted (a waiting list, an area or eligibility it could not confirm)")

    @classmethod
    def of(cls, referral: Referral, warnings: Sequence[FieldError] = ()) -> "ReferralOut":
        frozen = referral.restricted_at is not None
        events = [StatusEventOut.of(e) for e in referral.events]
        if frozen:
            events = [e.model_copy(update={"details": {}}) for e in events]
        return cls(**cls.fields_of(referral), content={} if frozen else referral.content,
                   withheld=referral.withheld, agreement_id=referral.agreement_id,
                   consent_withdrawn_at=referral.consent_withdrawn_at,
                   restricted_at=referral.restricted_at, erased_at=referral.erased_at,
                   events=events, warnings=[Note(**w.as_dict()) for w in warnings])


class ReferralPage(BaseModel):
    items: list[ReferralSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
