"""Reports for data-protection officers in the operations API: the disclosure register
and agreement health. Aggregates only (partner and agreement ids, codes, counts), so the
operator key may read them; each reading of the register is audited.

A person's own data (data-subject requests) is not served here: the operator key is a
shared machine credential that never sees personal data. Data-subject requests go through
the console (auditor role, a named person) or `casebridge subject` at the server.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from gateway.api.deps import AgreementsDep, ContractsDep, SessionDep
from gateway.api.operations import OperatorDep
from gateway.protection import agreement_health, audit, disclosures
from gateway.store.models import utcnow

router = APIRouter(prefix="/v1/reports", tags=["reports"])

Format = Literal["json", "csv"]


@router.get("/disclosures", summary="The disclosure register of a period",
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def disclosure_register(
    request: Request, session: SessionDep, actor: OperatorDep, contracts: ContractsDep,
    since: Annotated[str | None, Query(
        max_length=40, description="First instant, ISO 8601 (a date is midnight UTC); "
        "default: 365 days before `until`")] = None,
    until: Annotated[str | None, Query(
        max_length=40, description="End of the period, not included; default: now")] = None,
    format: Annotated[Format | None, Query(
        description="json or csv; default: by the Accept header, else json")] = None,
) -> Response:
    """What was disclosed, per agreement and partner pair: referrals and transfers, data
    categories sent and removed, refusals by reason, withdrawals and how fast they reached
    the receiver, erasures, restrictions, purges. Computed from the audit trail."""
    now = utcnow()
    start, end = disclosures.period(since, until, now=now)
    chosen = format or ("csv" if "text/csv" in request.headers.get("accept", "") else "json")
    found = disclosures.register(session, since=start, until=end, now=now,
                                 categories=contracts.codes("data-category"))
    audit.record(session, actor=actor, action="report.disclosures",
                 detail={"since": start.isoformat(), "until": end.isoformat(),
                         "format": chosen})
    if chosen == "csv":
        name = f"casebridge-disclosures-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        return Response(found.as_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return JSONResponse(found.as_dict())


@router.get("/agreement-health", summary="Agreements ending, and partners sending under them")
def agreement_health_report(session: SessionDep, _: OperatorDep,
                            agreements: AgreementsDep) -> JSONResponse:
    """Agreements ending within 60 days (or ended), partners sending under them or refused
    because they ended, and data categories senders send that no agreement allows."""
    found = agreement_health.health(session, agreements=agreements.in_force(), now=utcnow())
    return JSONResponse(found.as_dict())
