"""GET /v1/alerts: the deadline alerts addressed to the calling partner.

The same alerts the worker shows in a partner's own system (a Primero flag, a proGres
notification, an nDelius contact), for partners that call the API instead and for the
observers an agreement names. Each alert is addressed to one partner in one role (sender,
receiver or observer), and only that partner reads it here. Envelope data only.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from gateway.api.deps import PartnerDep, SessionDep, SettingsDep
from gateway.api.params import DateTime
from gateway.deadlines.alerts import alert_document
from gateway.store.models import DeadlineEvent, OutboxMessage

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
# Outbox ids are 32-bit: a cursor beyond the last one is past them all (and PostgreSQL would
# refuse to compare it with the column).
_LAST_ID = 2**31 - 1


class AlertOut(BaseModel):
    """A deadline alert (contracts/alert.json)."""

    alert_id: str
    referral_id: str
    kind: Literal["referral", "transfer"]
    flag: Literal["overdue", "escalated", "cleared"]
    deadline: str
    policy: str
    state: str
    due_at: AwareDatetime
    escalate_at: AwareDatetime | None = None
    at: AwareDatetime
    role: Literal["sender", "receiver", "observer"]
    message: str


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str = Field(description="Pass as `cursor` next time to read only the alerts "
                                         "that came after these (given even when none came)")


@router.get("", response_model=AlertPage, response_model_exclude_none=True,
            summary="Deadline alerts addressed to you")
def get_alerts(
    session: SessionDep, partner: PartnerDep, settings: SettingsDep,
    since: Annotated[DateTime | None, Query(
        description="only alerts written at or after this instant (RFC 3339 with offset)")
    ] = None,
    cursor: Annotated[str | None, Query(
        pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page, unchanged")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> AlertPage:
    """Oldest first: overdue, escalated and cleared flags of the referrals you send or
    receive, and of those whose agreement names you as an observer."""
    after = min(int(cursor), _LAST_ID) if cursor else 0
    query = (select(OutboxMessage)
             .where(OutboxMessage.message_type == "alert",
                    OutboxMessage.routing_key == f"alert.{partner.id}",
                    OutboxMessage.id > after)
             .order_by(OutboxMessage.id).limit(min(limit, settings.page_size_max)))
    if since is not None:
        query = query.where(OutboxMessage.created_at >= since)
    messages = session.scalars(query).all()
    events = {e.id: e for e in session.scalars(select(DeadlineEvent).where(
        DeadlineEvent.id.in_({m.envelope["deadline_event_id"] for m in messages})))}
    items = [AlertOut.model_validate(alert_document(
        events[m.envelope["deadline_event_id"]], kind=m.envelope["kind"],
        role=m.envelope["role"])) for m in messages if m.envelope["deadline_event_id"] in events]
    return AlertPage(items=items, next_cursor=str(messages[-1].id if messages else after))

