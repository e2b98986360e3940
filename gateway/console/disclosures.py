"""Data-protection officers' pages: the disclosure register, its printable summary per
agreement, and agreement health. Aggregates only: ids, codes and counts, no person.
Each reading of the register is audited."""

import json
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import PRINT_HEADERS, page, printable
from gateway.contracts import Contracts
from gateway.errors import MalformedRequest
from gateway.protection import agreement_health, audit, disclosures
from gateway.protection.agreements import AgreementRegistry
from gateway.store.models import utcnow

router = APIRouter(prefix="/console", include_in_schema=False)
DisclosuresViewer = Annotated[Viewer, Depends(require(Page.DISCLOSURES))]
AgreementsViewer = Annotated[Viewer, Depends(require(Page.AGREEMENTS))]


def _labels(contracts: Contracts) -> dict[str, str]:
    labels: dict[str, str] = contracts.schemas["codes/data-category"].get("x-labels", {})
    return labels


def _register(request: Request, session: Session, viewer: Viewer, since: str, until: str,
              form: str, agreement: str | None = None
              ) -> tuple[disclosures.Register | None, str | None]:
    """The register of the period asked for (audited), or None and why the period is wrong."""
    now = utcnow()
    try:
        start, end = disclosures.period(since or None, until or None, now=now)
    except MalformedRequest as error:
        return None, error.detail
    contracts: Contracts = request.app.state.contracts
    found = disclosures.register(session, since=start, until=end, now=now,
                                 categories=contracts.codes("data-category"))
    audit.record(session, actor=viewer.actor, action="report.disclosures",
                 detail={"since": start.isoformat(), "until": end.isoformat(), "format": form,
                         **({"agreement": agreement} if agreement else {})})
    return found, None


@router.get("/disclosures")
def register_page(request: Request, session: SessionDep, viewer: DisclosuresViewer,
                  since: str = "", until: str = "") -> Response:
    """The register of a period: per agreement, per partner pair."""
    found, error = _register(request, session, viewer, since, until, "page")
    contracts: Contracts = request.app.state.contracts
    return page(request, "disclosures.html", viewer=viewer, active=Page.DISCLOSURES,
                status=400 if error else 200, error=error, register=found,
                since=found.since.date().isoformat() if found else since,
                until=found.until.date().isoformat() if found else until,
                labels=_labels(contracts), reasons=disclosures.REFUSAL_LABELS,
                reach=disclosures.REACH_LABELS)


@router.get("/disclosures/export")
def register_export(request: Request, session: SessionDep, viewer: DisclosuresViewer,
                    since: str = "", until: str = "",
                    format: Literal["csv", "json"] = "csv") -> Response:
    """The register as a CSV or JSON file."""
    found, error = _register(request, session, viewer, since, until, format)
    if found is None:
        return page(request, "error.html", viewer=viewer, status=400,
                    title="Period not understood", message=error or "")
    name = f"casebridge-disclosures-{_stamp(found.since)}-{_stamp(found.until)}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return Response(found.as_csv(), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(json.dumps(found.as_dict(), indent=2), media_type="application/json",
                    headers=headers)


@router.get("/disclosures/agreements/{agreement_id}")
def agreement_summary(request: Request, agreement_id: str, session: SessionDep,
                      viewer: DisclosuresViewer, since: str = "", until: str = "") -> Response:
    """One agreement's register for the period, to print or save and attach to a DPIA or
    an information-sharing protocol review."""
    found, error = _register(request, session, viewer, since, until, "summary", agreement_id)
    if found is None:
        return page(request, "error.html", viewer=viewer, status=400,
                    title="Period not understood", message=error or "")
    registry: AgreementRegistry = request.app.state.agreements
    agreement = next((a for a in registry.in_force() if a.id == agreement_id), None)
    rows = found.for_agreement(agreement_id)
    if agreement is None and not rows:
        return page(request, "error.html", viewer=viewer, status=404, title="Not found",
                    message="No agreement in force has this id, and the register holds "
                            "nothing under it for the period.")
    total = disclosures.Row(agreement_id, None, None)
    for row in rows:
        total.add(row)
    contracts: Contracts = request.app.state.contracts
    html = printable("agreement_summary.html", register=found, agreement_id=agreement_id,
                     agreement=agreement, rows=rows, total=total, labels=_labels(contracts),
                     reasons=disclosures.REFUSAL_LABELS, reach=disclosures.REACH_LABELS,
                     term=agreement_health.term(agreement, found.generated_at.date())
                     if agreement else None, viewer=viewer)
    return Response(html, media_type="text/html; charset=utf-8", headers=PRINT_HEADERS)


@router.get("/agreements")
def health_page(request: Request, session: SessionDep, viewer: AgreementsViewer) -> Response:
    """Agreements ending or ended, partners sending under them, categories not allowed."""
    registry: AgreementRegistry = request.app.state.agreements
    found = agreement_health.health(session, agreements=registry.in_force(), now=utcnow())
    return page(request, "agreements.html", viewer=viewer, active=Page.AGREEMENTS,
                health=found, refused_files=registry.refusals,
                horizon=agreement_health.HORIZON_DAYS, window=agreement_health.WINDOW_DAYS)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y%m%d")
