"""Referrals in the console: envelopes and errors for operators, content for IM officers.

The list and the detail page read only the non-personal columns (the encrypted content
is never even decrypted for them). The content page is for IM officers alone, and each
opening is written to the audit trail before the page is sent.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, or_, select
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import Pager, page
from gateway.deadlines.timeline import FLAG_EVENTS, referral_timeline
from gateway.lifecycle import Kind, State
from gateway.protection import audit
from gateway.store.models import DeadLetter, OutboxMessage, Referral

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50

ReferralsViewer = Annotated[Viewer, Depends(require(Page.REFERRALS))]
ContentViewer = Annotated[Viewer, Depends(require(Page.REFERRAL_CONTENT))]

# Every column a referral list or envelope page may show: never `content`.
ENVELOPE = (Referral.id, Referral.kind, Referral.subtype, Referral.sender_id,
            Referral.receiver_id, Referral.status, Referral.correlation_id,
            Referral.created_at, Referral.updated_at, Referral.due_at)


@router.get("/referrals")
def referral_list(
    request: Request, session: SessionDep, viewer: ReferralsViewer,
    state: str = "", kind: str = "", partner: str = "", id: str = "",
    number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    """Referrals, latest change first, by state, kind, partner (either side) or id."""
    query = select(*ENVELOPE)
    if state:
        query = query.where(Referral.status == state)
    if kind:
        query = query.where(Referral.kind == kind)
    if partner:
        query = query.where(or_(Referral.sender_id == partner, Referral.receiver_id == partner))
    if id:
        query = query.where(Referral.id == id.strip())
    filters = {"state": state, "kind": kind, "partner": partner, "id": id}
    pager = Pager(number, PAGE_SIZE, session.scalar(
        select(func.count()).select_from(query.subquery())) or 0, filters)
    rows = session.execute(query.order_by(Referral.updated_at.desc(), Referral.id)
                           .limit(pager.size).offset(pager.offset)).all()
    partners = sorted(set(session.scalars(select(Referral.sender_id).distinct()))
                      | set(session.scalars(select(Referral.receiver_id).distinct())))
    return page(request, "referrals.html", viewer=viewer, active=Page.REFERRALS, rows=rows,
                pager=pager, states=list(State), kinds=list(Kind), partners=partners,
                filters=filters)


@router.get("/referrals/{referral_id}")
def referral_envelope(request: Request, referral_id: str, session: SessionDep,
                      viewer: ReferralsViewer) -> Response:
    """One referral's envelope and timeline (states, deadlines and their overdue flags,
    deliveries), its outbox messages and dead letters."""
    referral = session.execute(select(*ENVELOPE, Referral.agreement_id, Referral.mapping_hash,
                                      Referral.consent_withdrawn_at, Referral.restricted_at,
                                      Referral.erased_at)
                               .where(Referral.id == referral_id)).one_or_none()
    if referral is None:
        return _not_found(request, viewer)
    timeline = referral_timeline(session=session, referral_id=referral_id)
    outbox = session.scalars(select(OutboxMessage).where(OutboxMessage.referral_id == referral_id)
                             .order_by(OutboxMessage.id)).all()
    letters = session.scalars(select(DeadLetter).where(DeadLetter.referral_id == referral_id)
                              .order_by(DeadLetter.id)).all()
    return page(request, "referral.html", viewer=viewer, active=Page.REFERRALS,
                referral=referral, timeline=timeline, flag_events=FLAG_EVENTS, outbox=outbox,
                letters=letters)


@router.get("/referrals/{referral_id}/content")
def referral_content(request: Request, referral_id: str, session: SessionDep,
                     viewer: ContentViewer) -> Response:
    """What the receiver was given (after the need-to-know filter); the view is audited."""
    referral = session.get(Referral, referral_id)
    if referral is None:
        return _not_found(request, viewer)
    if referral.restricted_at is not None:
        return page(request, "error.html", viewer=viewer, status=403, title="Restricted",
                    message="The person asked to restrict the use of their data: this "
                            "referral's content is shown to no one. The data-protection "
                            "officer can still export it for the person.")
    audit.record(session, actor=viewer.actor, action="console.view", referral_id=referral.id,
                 correlation_id=referral.correlation_id, detail={"page": "referral_content"})
    return page(request, "referral_content.html", viewer=viewer, active=Page.REFERRALS,
                referral=referral, events=referral.events)


def _not_found(request: Request, viewer: Viewer) -> Response:
    return page(request, "error.html", viewer=viewer, status=404, title="Not found",
                message="There is no referral with this id.")
