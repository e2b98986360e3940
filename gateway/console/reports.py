"""The reports page: the turnaround report as a table, a plain bar chart of the median and
90th percentile per group (drawn on the server as inline SVG: no chart library, no script)
and its CSV download."""

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import page, redirect
from gateway.errors import InvalidParameter
from gateway.reports.turnaround import (
    GROUPS,
    MEASURES,
    GroupFigures,
    as_csv,
    group_columns,
    parse_query,
    turnaround,
)
from gateway.store.models import utcnow

router = APIRouter(prefix="/console", include_in_schema=False)
ReportsViewer = Annotated[Viewer, Depends(require(Page.REPORTS))]

MAX_BARS = 25  # the largest groups; the table below the charts has them all
BAR_AREA = 420  # px of the longest bar
ROW = 22  # px per group

GROUP_LABELS = {"partner_pair": "partner pair", "service_type": "service type",
                "area": "receiving area"}
MEASURE_LABELS = {"acknowledge": "Time to acknowledge", "accept": "Time to accept",
                  "complete": "Time to complete"}


@dataclass(frozen=True)
class Bar:
    label: str
    y: int
    median: float | None
    p90: float | None
    median_width: int
    p90_width: int


@dataclass(frozen=True)
class Chart:
    measure: str
    title: str
    scale_hours: float
    height: int
    bars: list[Bar]


def label_of(group: dict[str, str]) -> str:
    """How a group reads on one line: `sender → receiver · unit · service`."""
    parts = []
    if "sender" in group:
        parts.append(f"{group['sender']} → {group['receiver']}")
    elif "receiver" in group:
        parts.append(group["receiver"])
    parts += [group[c] for c in ("receiver_unit", "service_type") if c in group]
    return " · ".join(parts) or "all"


def chart(measure: str, groups: list[GroupFigures]) -> Chart:
    """Bars of one step's median and 90th percentile, on one scale, for the largest groups."""
    shown = groups[:MAX_BARS]
    steps = [getattr(g, measure) for g in shown]
    scale = max((s.p90_hours or 0.0 for s in steps), default=0.0) or 1.0

    def width(hours: float | None) -> int:
        return 0 if hours is None else max(1, round(BAR_AREA * hours / scale))

    bars = [Bar(label_of(g.group), i * ROW, s.median_hours, s.p90_hours,
                width(s.median_hours), width(s.p90_hours))
            for i, (g, s) in enumerate(zip(shown, steps, strict=True))]
    return Chart(measure, MEASURE_LABELS[measure], scale, len(bars) * ROW, bars)


First = Annotated[str, Query(alias="from", max_length=20)]
Last = Annotated[str, Query(alias="to", max_length=20)]
Groups = Annotated[list[str] | None, Query(max_length=20)]


@router.get("/turnaround")
def turnaround_moved(request: Request) -> Response:
    """The reports page's former address: links and bookmarks still lead there."""
    query = request.url.query
    return redirect("/console/reports" + (f"?{query}" if query else ""))


@router.get("/reports")
def reports_page(request: Request, session: SessionDep, viewer: ReportsViewer,
                 first: First = "", last: Last = "", group: Groups = None) -> Response:
    """Turnaround per group for a period: the charts, then the table, and its CSV."""
    now = utcnow()
    form = {"from": first, "to": last, "group": group or ["partner_pair"]}
    try:
        query = parse_query(first=first or None, last=last or None,
                            group=",".join(form["group"]), today=now.date())
    except InvalidParameter as error:
        return page(request, "reports.html", viewer=viewer, active=Page.REPORTS,
                    status=400, form=form, groups=GROUPS, group_labels=GROUP_LABELS,
                    problem=f"{error.name}: {error.reason}", report=None, csv="")
    report = turnaround(session=session, query=query, now=now)
    form |= {"from": str(report.first), "to": str(report.last)}
    csv = "/console/reports/turnaround.csv?" + urlencode(
        [("from", form["from"]), ("to", form["to"]), *(("group", g) for g in form["group"])])
    return page(request, "reports.html", viewer=viewer, active=Page.REPORTS,
                form=form, groups=GROUPS, group_labels=GROUP_LABELS, problem=None,
                report=report, columns=group_columns(report.group),
                charts=[chart(m, report.groups) for m in MEASURES], bar_area=BAR_AREA,
                max_bars=MAX_BARS, csv=csv)


@router.get("/reports/turnaround.csv")
def turnaround_csv(session: SessionDep, viewer: ReportsViewer, first: First = "",
                   last: Last = "", group: Groups = None) -> Response:
    """The same report as CSV (one row per group, then the total), as the API gives it."""
    now = utcnow()
    query = parse_query(first=first or None, last=last or None,
                        group=",".join(group or ["partner_pair"]), today=now.date())
    report = turnaround(session=session, query=query, now=now)
    name = f"turnaround-{report.first}-{report.last}.csv"
    return Response(as_csv(report), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"'})
