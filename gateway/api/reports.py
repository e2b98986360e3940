"""Reports for operations: aggregates over the referrals, never a person."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from gateway.api.deps import SessionDep
from gateway.api.operations import OperatorDep
from gateway.reports.turnaround import (
    TurnaroundReport,
    as_csv,
    check_format,
    parse_query,
    turnaround,
)
from gateway.store.models import utcnow

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/turnaround", response_model=TurnaroundReport, response_model_by_alias=True,
            summary="Turnaround per partner pair, service type or receiving area",
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "JSON, or CSV with format=csv"}})
def get_turnaround(
    session: SessionDep, _: OperatorDep,
    first: Annotated[str | None, Query(alias="from", max_length=10, description=(
        "First day of submission, YYYY-MM-DD (UTC); default: 89 days before `to`"))] = None,
    last: Annotated[str | None, Query(alias="to", max_length=10, description=(
        "Last day of submission, YYYY-MM-DD (UTC), included; default: today"))] = None,
    group: Annotated[str | None, Query(max_length=100, description=(
        "partner_pair, service_type and/or area, comma-separated; default: partner_pair"))
    ] = None,
    format: Annotated[str | None, Query(max_length=10, description="json (default) or csv")
                      ] = None,
) -> TurnaroundReport | Response:
    """For the referrals and transfers submitted in the period: counts, median and 90th
    percentile hours from delivery to acknowledgement, acceptance and completion, deadlines
    met in time and late, and those overdue now. A referral asking for several services
    counts in each of their groups; `total` counts it once. See docs/reports.md."""
    now = utcnow()
    shape = check_format(format)
    report = turnaround(session=session, query=parse_query(
        first=first, last=last, group=group, today=now.date()), now=now)
    if shape == "csv":
        name = f"turnaround-{report.first}-{report.last}.csv"
        return Response(as_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return report
