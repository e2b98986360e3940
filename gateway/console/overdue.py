"""The overdue page: every deadline overdue now, escalated or not, by the partner whose
answer is late (the receiver), oldest first. Ids, states, deadlines and instants only."""

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import Select, select
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import page
from gateway.store.models import Referral, TrackedDeadline, overdue_open, utcnow

router = APIRouter(prefix="/console", include_in_schema=False)
OverdueViewer = Annotated[Viewer, Depends(require(Page.OVERDUE))]
MAX_ROWS = 1000  # on one page; past that, one partner at a time says more


@dataclass(frozen=True)
class Late:
    referral_id: str
    kind: str
    sender: str
    receiver: str
    status: str
    deadline: str
    state: str
    policy: str
    due_at: datetime
    raised_at: datetime | None
    escalated_at: datetime | None


@router.get("/overdue")
def overdue_page(request: Request, session: SessionDep, viewer: OverdueViewer,
                 partner: str = "") -> Response:
    """What is overdue now and what escalated, by receiving partner, oldest first."""
    query: Select[*tuple[Any, ...]] = (
        select(Referral.id, Referral.kind, Referral.sender_id, Referral.receiver_id,
               Referral.status, TrackedDeadline.name, TrackedDeadline.state,
               TrackedDeadline.policy_id, TrackedDeadline.due_at, TrackedDeadline.raised_at,
               TrackedDeadline.escalated_at)
        .join(Referral, Referral.id == TrackedDeadline.referral_id)
        .where(overdue_open())
        .order_by(Referral.receiver_id, TrackedDeadline.due_at, TrackedDeadline.id))
    if partner:
        query = query.where(Referral.receiver_id == partner.strip())
    rows = [Late(*row) for row in session.execute(query.limit(MAX_ROWS + 1)).all()]
    shown = rows[:MAX_ROWS]
    by_partner = [(receiver, list(late))
                  for receiver, late in groupby(shown, key=lambda r: r.receiver)]
    return page(request, "overdue.html", viewer=viewer, active=Page.OVERDUE,
                by_partner=by_partner, more=len(rows) > MAX_ROWS, max_rows=MAX_ROWS,
                partner=partner,
                now=utcnow())
