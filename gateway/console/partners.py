"""The partners page: each partner system, how the gateway reaches it and how that goes,
suspending and resuming delivery to it, and a new API key for it (shown once).

Every action is a form carrying the session's token, done in the user's name and audited
(`partner.suspend`, `partner.resume`, `partner.rotate_key`); no key is ever stored, logged
or audited, only its hash kept.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import structlog
from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import FormDep, check_csrf, page, redirect
from gateway.partners import resume_delivery, rotate_api_key, suspend_delivery
from gateway.store.models import Delivery, Partner, PartnerCursor, utcnow

log = structlog.get_logger()
router = APIRouter(prefix="/console", include_in_schema=False)
PartnersViewer = Annotated[Viewer, Depends(require(Page.PARTNERS))]

DONE = {"suspended": "Delivery suspended: its messages wait in its queues.",
        "resumed": "Delivery resumed: the messages that waited go first.",
        "unchanged": "Nothing to change: it was so already."}


@dataclass(frozen=True)
class PartnerRow:
    partner: Partner
    reached_at: str | None  # the host of the partner's own system, or None (API only)
    poll: PartnerCursor | None
    last_delivered: datetime | None


def _rows(session: Session) -> list[PartnerRow]:
    polls = {p.partner_id: p for p in session.scalars(select(PartnerCursor))}
    last: dict[str, datetime | None] = {
        partner: at for partner, at in session.execute(
            select(Delivery.partner_id, func.max(Delivery.finished_at))
            .where(Delivery.outcome == "delivered").group_by(Delivery.partner_id))}
    rows = []
    for partner in session.scalars(select(Partner).order_by(Partner.id)):
        base_url = (partner.connection or {}).get("base_url")
        rows.append(PartnerRow(partner, urlsplit(base_url).netloc if base_url else None,
                               polls.get(partner.id), last.get(partner.id)))
    return rows


@router.get("/partners")
def partner_list(request: Request, session: SessionDep, viewer: PartnersViewer,
                 done: str = "", partner: str = "") -> Response:
    """Every partner: connection, delivery, polling; suspend, resume, new API key."""
    return page(request, "partners.html", viewer=viewer, active=Page.PARTNERS,
                rows=_rows(session), now=utcnow(), notice=DONE.get(done), changed=partner,
                error=None)


def _partner(session: Session, partner_id: str) -> Partner | None:
    return session.get(Partner, partner_id, with_for_update=True)


@router.post("/partners/{partner_id}/suspend")
def suspend(request: Request, partner_id: str, form: FormDep, session: SessionDep,
            viewer: PartnersViewer) -> Response:
    """Stop delivering to the partner; its messages wait, nothing is lost."""
    return _switch(request, partner_id, form, session, viewer, suspend_delivery, "suspended")


@router.post("/partners/{partner_id}/resume")
def resume(request: Request, partner_id: str, form: FormDep, session: SessionDep,
           viewer: PartnersViewer) -> Response:
    """Deliver to the partner again."""
    return _switch(request, partner_id, form, session, viewer, resume_delivery, "resumed")


def _switch(request: Request, partner_id: str, form: Any, session: Session, viewer: Viewer,
            change: Callable[..., bool], done: str) -> Response:
    """Suspend or resume delivery to a partner, as the viewer asked."""
    check_csrf(form, viewer)
    partner = _partner(session, partner_id)
    if partner is None:
        return _missing(request, session, viewer)
    changed = change(session=session, partner=partner, actor=viewer.actor)
    log.info(f"console_partner_{done}", user=viewer.username, partner=partner_id,
             changed=changed)
    return _back(done if changed else "unchanged", partner_id)


@router.post("/partners/{partner_id}/rotate-key")
def rotate_key(request: Request, partner_id: str, form: FormDep, session: SessionDep,
               viewer: PartnersViewer) -> Response:
    """A new API key, shown on this answer only; the old key stops working at once."""
    check_csrf(form, viewer)
    partner = _partner(session, partner_id)
    if partner is None:
        return _missing(request, session, viewer)
    if form.get("confirm") != "yes":
        return page(request, "partners.html", viewer=viewer, active=Page.PARTNERS,
                    status=422, rows=_rows(session), now=utcnow(), notice=None,
                    changed=partner_id, error=f"Tick the box to confirm that {partner_id}'s "
                    "current API key is to stop working.")
    key = rotate_api_key(session=session, partner=partner, actor=viewer.actor)
    log.info("console_partner_key_rotated", user=viewer.username, partner=partner_id)
    return page(request, "partner_key.html", viewer=viewer, active=Page.PARTNERS,
                partner=partner, key=key)


def _back(done: str, partner_id: str) -> Response:
    query = urlencode({"done": done, "partner": partner_id})
    return redirect(f"/console/partners?{query}#partner-{partner_id}")


def _missing(request: Request, session: Session, viewer: Viewer) -> Response:
    return page(request, "partners.html", viewer=viewer, active=Page.PARTNERS, status=404,
                rows=_rows(session), now=utcnow(), notice=None, changed="",
                error="There is no partner with this id.")
