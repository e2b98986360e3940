"""Operators' pages: how delivery goes, the dead letters, and re-driving them.

Nothing here reads a referral's content: only states, partners, outcomes, each
partner's poll health, and the dead-letter reasons and details, which never hold personal
values — and what the partner's system answered to a failed attempt (its status, error
code and message), which operators need to act and which may quote the record: it is
stored encrypted, shown here, and never logged.
"""

from collections import defaultdict
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import FormDep, check_csrf, page, redirect
from gateway.contracts import Contracts
from gateway.delivery import dead_letters
from gateway.errors import CaseBridgeError
from gateway.lifecycle import State
from gateway.store.models import DeadLetter, Delivery, PartnerCursor, Referral

router = APIRouter(prefix="/console", include_in_schema=False)
RECENT = 50
MAX_LETTERS = 500  # on one page; beyond that, filters say more than a longer table

DeliveriesViewer = Annotated[Viewer, Depends(require(Page.DELIVERIES))]
DeadLettersViewer = Annotated[Viewer, Depends(require(Page.DEAD_LETTERS))]


@router.get("/deliveries")
def overview(request: Request, session: SessionDep, viewer: DeliveriesViewer) -> Response:
    """Referrals by receiver and state, deliveries by partner and outcome, the latest ones."""
    by_state: dict[str, dict[str, int]] = defaultdict(dict)
    for receiver, state, count in session.execute(
            select(Referral.receiver_id, Referral.status, func.count())
            .group_by(Referral.receiver_id, Referral.status)):
        by_state[receiver][state] = count
    totals = {state: sum(row.get(state, 0) for row in by_state.values()) for state in State}
    by_outcome: dict[str, dict[str, int]] = defaultdict(dict)
    for partner, outcome, count in session.execute(
            select(Delivery.partner_id, Delivery.outcome, func.count())
            .group_by(Delivery.partner_id, Delivery.outcome)):
        by_outcome[partner][outcome] = count
    outcomes = sorted({o for row in by_outcome.values() for o in row})
    recent = list(session.scalars(select(Delivery).order_by(Delivery.id.desc()).limit(RECENT)))
    open_letters = session.scalar(
        select(func.count()).select_from(DeadLetter).where(DeadLetter.redriven_at.is_(None)))
    polls = list(session.scalars(select(PartnerCursor).order_by(PartnerCursor.partner_id)))
    return page(request, "deliveries.html", viewer=viewer, active=Page.DELIVERIES,
                states=list(State), by_state=dict(sorted(by_state.items())), totals=totals,
                outcomes=outcomes, by_outcome=dict(sorted(by_outcome.items())),
                recent=recent, said={d.id: dead_letters.partner_said(d) for d in recent},
                polls=polls, open_letters=open_letters or 0)


@router.get("/dead-letters")
def dead_letter_list(
    request: Request, session: SessionDep, viewer: DeadLettersViewer,
    reason: str = "", partner: str = "",
    show_redriven: Annotated[bool, Query(alias="all")] = False,
    redriven: str = "", skipped: int = 0,
) -> Response:
    """Dead letters by reason and partner, each with a box to tick for re-drive."""
    return _dead_letters_page(request, session, viewer, reason=reason, partner=partner,
                              show_redriven=show_redriven,
                              redriven=[int(i) for i in redriven.split(",") if i.isdigit()],
                              skipped=skipped)


@router.post("/dead-letters/redrive")
def redrive(request: Request, form: FormDep, session: SessionDep,
            viewer: DeadLettersViewer) -> Response:
    """Re-drive the ticked dead letters in the user's name (the re-drive is audited)."""
    check_csrf(form, viewer)
    ids = sorted({int(i) for i in form.all("ids") if i.isdigit()})
    reason, partner = form.get("reason"), form.get("partner")
    if not ids:
        return _dead_letters_page(request, session, viewer, reason=reason, partner=partner,
                                  status=422, error="Tick the dead letters to re-drive.")
    contracts: Contracts = request.app.state.contracts
    try:
        done = dead_letters.redrive(
            session=session, contracts=contracts,
            letters=dead_letters.find(session=session, ids=ids), actor=viewer.actor)
    except CaseBridgeError as error:
        session.rollback()
        return _dead_letters_page(request, session, viewer, reason=reason, partner=partner,
                                  status=409, error=f"Nothing was re-driven: {error.detail}")
    query = {"redriven": ",".join(map(str, done)) or "none", "skipped": len(ids) - len(done),
             **{k: v for k, v in (("reason", reason), ("partner", partner)) if v}}
    return redirect(f"/console/dead-letters?{urlencode(query)}")


def _dead_letters_page(
    request: Request, session: Session, viewer: Viewer, *, reason: str, partner: str,
    show_redriven: bool = False, redriven: list[int] | None = None, skipped: int = 0,
    error: str | None = None, status: int = 200,
) -> Response:
    letters = dead_letters.find(session=session, reason=reason or None,
                                partner=partner or None, include_redriven=show_redriven)
    reasons = sorted(session.scalars(select(DeadLetter.reason).distinct()))
    partners = sorted(p for p in session.scalars(select(DeadLetter.partner_id).distinct()) if p)
    return page(request, "dead_letters.html", viewer=viewer, active=Page.DEAD_LETTERS,
                status=status, letters=letters[:MAX_LETTERS], total=len(letters),
                said={lt.id: dead_letters.partner_said(lt) for lt in letters[:MAX_LETTERS]},
                redrivable={lt.id for lt in letters[:MAX_LETTERS]
                            if dead_letters.can_redrive(lt)},
                reasons=reasons, partners=partners,
                reason=reason, partner=partner, show_redriven=show_redriven,
                redriven=redriven or [], skipped=skipped, error=error)
