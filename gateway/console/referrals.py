"""Referrals in the console: envelopes and errors for operators, content for IM officers.

The list and the detail page read only the non-personal columns (the encrypted content
is never even decrypted for them). The content page is for IM officers alone, and each
opening is written to the audit trail before the page is sent.
"""

import base64
import binascii
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Row, Select, exists, select, tuple_
from sqlalchemy.orm import Session
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import page
from gateway.contracts import Contracts
from gateway.deadlines.timeline import FLAG_EVENTS, referral_timeline
from gateway.lifecycle import Kind, State
from gateway.protection import audit
from gateway.store.models import (
    DeadLetter,
    OutboxMessage,
    Partner,
    Referral,
    ReferralService,
    TrackedDeadline,
    overdue_open,
)

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50

ReferralsViewer = Annotated[Viewer, Depends(require(Page.REFERRALS))]
ContentViewer = Annotated[Viewer, Depends(require(Page.REFERRAL_CONTENT))]

# Every column a referral list or envelope page may show: never `content`.
ENVELOPE = (Referral.id, Referral.kind, Referral.subtype, Referral.sender_id,
            Referral.receiver_id, Referral.status, Referral.correlation_id,
            Referral.created_at, Referral.updated_at, Referral.due_at)
FILTERS = ("state", "kind", "sender", "receiver", "service", "overdue", "from", "to", "id")


class ListProblem(ValueError):
    """A filter or cursor of the list that cannot be read."""


def cursor_of(created_at: datetime, referral_id: str) -> str:
    """The paging key of a row as an opaque token: when it was submitted, and its id."""
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{referral_id}".encode()
                                    ).decode().rstrip("=")


def read_cursor(token: str) -> tuple[datetime, str]:
    """(created_at, id) of a token `cursor_of` made; ListProblem for anything else."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, referral_id = text.split("|", 1)
        created_at = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ListProblem("the page link is damaged: start again from the first page") from None
    if created_at.tzinfo is None:
        raise ListProblem("the page link is damaged: start again from the first page")
    return created_at, referral_id


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ListProblem(f"{name}: a day as YYYY-MM-DD") from None


def filtered(filters: dict[str, str]) -> Select[*tuple[Any, ...]]:
    """The envelope columns of the referrals the filters keep (each has its index)."""
    query: Select[*tuple[Any, ...]] = select(*ENVELOPE)
    if filters["state"]:
        query = query.where(Referral.status == filters["state"])
    if filters["kind"]:
        query = query.where(Referral.kind == filters["kind"])
    if filters["sender"]:
        query = query.where(Referral.sender_id == filters["sender"])
    if filters["receiver"]:
        query = query.where(Referral.receiver_id == filters["receiver"])
    if filters["service"]:
        query = query.where(exists().where(ReferralService.referral_id == Referral.id,
                                           ReferralService.service_type == filters["service"]))
    if filters["overdue"]:
        # Few referrals are overdue at once: start from them (the partial index of open
        # overdue deadlines), rather than walk every referral to test each.
        late = (select(TrackedDeadline.referral_id).where(overdue_open()).distinct()
                .subquery("late"))
        query = query.join(late, late.c.referral_id == Referral.id)
    if filters["from"]:
        start = datetime.combine(_day("from", filters["from"]), time(), UTC)
        query = query.where(Referral.created_at >= start)
    if filters["to"]:
        end = datetime.combine(_day("to", filters["to"]) + timedelta(days=1), time(), UTC)
        query = query.where(Referral.created_at < end)
    if filters["id"]:
        query = query.where(Referral.id == filters["id"].strip())
    return query


@router.get("/referrals")
def referral_list(
    request: Request, session: SessionDep, viewer: ReferralsViewer,
    state: str = "", kind: str = "", sender: str = "", receiver: str = "", service: str = "",
    overdue: str = "", first: Annotated[str, Query(alias="from", max_length=10)] = "",
    last: Annotated[str, Query(alias="to", max_length=10)] = "", id: str = "",
    after: Annotated[str, Query(max_length=200)] = "",
    before: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Referrals, latest submitted first, by state, kind, sender, receiver, service type,
    overdue now and day of submission; paged by cursor, so a page costs the same whichever
    it is, over millions of referrals."""
    filters = {"state": state, "kind": kind, "sender": sender, "receiver": receiver,
               "service": service, "overdue": "yes" if overdue else "", "from": first,
               "to": last, "id": id}
    partners = sorted(session.scalars(select(Partner.id)))
    contracts: Contracts = request.app.state.contracts
    choices: dict[str, Any] = {"states": list(State), "kinds": list(Kind),
                               "partners": partners, "services": contracts.codes("service-type")}
    try:
        query = filtered(filters)
        rows, links = list_page(session, query, filters, after=after, before=before)
    except ListProblem as problem:
        return page(request, "referrals.html", viewer=viewer, active=Page.REFERRALS,
                    status=400, rows=[], links={}, filters=filters, problem=str(problem),
                    **choices)
    return page(request, "referrals.html", viewer=viewer, active=Page.REFERRALS, rows=rows,
                links=links, filters=filters, problem=None, **choices)


def list_page(session: Session, query: Select[*tuple[Any, ...]], filters: dict[str, str], *,
              after: str = "", before: str = "") -> tuple[list[Row[Any]], dict[str, str]]:
    """One page of rows, newest first (after or before a cursor), and the links to the
    pages around it: one read of at most PAGE_SIZE + 1 rows on the filter's index."""
    key = tuple_(Referral.created_at, Referral.id)
    if before:
        rows = list(session.execute(query.where(key > tuple_(*read_cursor(before)))
                                    .order_by(Referral.created_at, Referral.id)
                                    .limit(PAGE_SIZE + 1)))
        more_before, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE][::-1]
        more_after = bool(rows)
    else:
        if after:
            query = query.where(key < tuple_(*read_cursor(after)))
        rows = list(session.execute(query.order_by(Referral.created_at.desc(),
                                                   Referral.id.desc()).limit(PAGE_SIZE + 1)))
        more_after, rows = len(rows) > PAGE_SIZE, rows[:PAGE_SIZE]
        more_before = bool(after) and bool(rows)
    kept = [(k, v) for k, v in filters.items() if v]
    links = {}
    if after or before:
        links["first"] = "?" + urlencode(kept)
    if more_before:
        links["previous"] = "?" + urlencode([*kept, ("before", cursor_of(
            rows[0].created_at, rows[0].id))])
    if more_after:
        links["next"] = "?" + urlencode([*kept, ("after", cursor_of(
            rows[-1].created_at, rows[-1].id))])
    return rows, links


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
