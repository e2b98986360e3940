"""Auditors' pages: the audit trail (filtered, paged), its verification, and an export."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import Response, StreamingResponse

from gateway.api.deps import SessionDep
from gateway.console import throttle
from gateway.console.access import Page, Viewer, require
from gateway.console.render import Pager, page
from gateway.protection import audit
from gateway.store.db import unit_of_work
from gateway.store.models import AuditEntry

log = structlog.get_logger()
router = APIRouter(prefix="/console", include_in_schema=False)
PAGE_SIZE = 50
EXPORT_BATCH = 1000

AuditViewer = Annotated[Viewer, Depends(require(Page.AUDIT))]


def _filtered(action: str, referral: str, partner: str) -> Select[AuditEntry]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if referral:
        query = query.where(AuditEntry.referral_id == referral.strip())
    if partner:
        query = query.where(AuditEntry.partner_id == partner.strip())
    return query


@router.get("/audit")
def trail(
    request: Request, session: SessionDep, viewer: AuditViewer,
    action: str = "", referral: str = "", partner: str = "",
    number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    """The trail, latest entry first, by action, referral or partner."""
    query = _filtered(action, referral, partner)
    filters = {"action": action, "referral": referral, "partner": partner}
    pager = Pager(number, PAGE_SIZE, session.scalar(
        select(func.count()).select_from(query.subquery())) or 0, filters)
    entries = session.scalars(query.order_by(AuditEntry.seq.desc()).limit(pager.size)
                              .offset(pager.offset)).all()
    return page(request, "audit.html", viewer=viewer, active=Page.AUDIT,
                lockouts=throttle.in_force(session, now=datetime.now(UTC)),
                entries=[audit.as_record(e) for e in entries], pager=pager,
                actions=sorted(audit.ACTIONS), filters=filters,
                export=_with_query("/console/audit/export", filters))


def _with_query(path: str, filters: dict[str, str]) -> str:
    query = urlencode({k: v for k, v in filters.items() if v})
    return f"{path}?{query}" if query else path


@router.get("/audit/verify")
def verify(request: Request, session: SessionDep, viewer: AuditViewer) -> Response:
    """Walk the whole chain now: intact, or where it breaks."""
    result = audit.verify(session)
    log.info("console_audit_verified", user=viewer.username, entries=result.entries,
             breaks=len(result.breaks))
    return page(request, "audit_verify.html", viewer=viewer, active=Page.AUDIT, result=result,
                checked_at=datetime.now(UTC))


@router.get("/audit/export")
def export(request: Request, viewer: AuditViewer, action: str = "", referral: str = "",
           partner: str = "") -> Response:
    """The (filtered) trail as JSON lines, oldest first, each entry with its hash."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    query = _filtered(action, referral, partner)
    log.info("console_audit_exported", user=viewer.username, action=action or None,
             referral_id=referral or None, partner_id=partner or None)
    with unit_of_work(sessions) as session:
        audit.record(session, actor=f"user:{viewer.username}", action="audit.export",
                     detail={"action": action or None, "referral": referral or None,
                             "partner": partner or None})

    def lines() -> Iterator[bytes]:
        # Its own session: the stream outlives the request's.
        with sessions() as session:
            after = 0
            while True:
                batch = session.scalars(query.where(AuditEntry.seq > after)
                                        .order_by(AuditEntry.seq).limit(EXPORT_BATCH)).all()
                if not batch:
                    return
                for entry in batch:
                    yield (json.dumps(audit.as_record(entry), ensure_ascii=False,
                                      separators=(",", ":")) + "\n").encode()
                after = batch[-1].seq
                session.expunge_all()

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(lines(), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="casebridge-audit-{stamp}.jsonl"'})
