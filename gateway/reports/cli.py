"""`casebridge report turnaround`: the turnaround report on the terminal, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.errors import InvalidParameter
from gateway.reports.disclosures_cli import disclosures_report
from gateway.reports.turnaround import as_csv, check_format, parse_query, turnaround
from gateway.settings import get_settings
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.models import utcnow

report_app = typer.Typer(help="Reports over the referrals: aggregates, never a person.",
                         no_args_is_help=True)
report_app.command("disclosures")(disclosures_report)

OPTION_OF = {"from": "--from", "to": "--to", "group": "--group", "format": "--format"}


@report_app.command("turnaround")
def turnaround_command(
    first: Annotated[str | None, typer.Option(
        "--from", help="First day of submission, YYYY-MM-DD (UTC); default: 89 days "
        "before --to", show_default=False)] = None,
    last: Annotated[str | None, typer.Option(
        "--to", help="Last day of submission, YYYY-MM-DD (UTC), included; default: today",
        show_default=False)] = None,
    group: Annotated[str, typer.Option(
        help="partner_pair, service_type and/or area, comma-separated")] = "partner_pair",
    format: Annotated[str, typer.Option(help="json or csv")] = "json",
) -> None:
    """Per group: referrals and transfers, median and 90th percentile hours from delivery to
    acknowledgement, acceptance and completion, % of deadlines met in time, overdue now
    (see docs/reports.md)."""
    now = utcnow()
    try:
        shape = check_format(format)
        query = parse_query(first=first, last=last, group=group, today=now.date())
    except InvalidParameter as error:
        raise typer.BadParameter(error.reason, param_hint=OPTION_OF[error.name]) from None
    engine = make_engine(get_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            report = turnaround(session=session, query=query, now=now)
    finally:
        engine.dispose()
    if shape == "csv":
        typer.echo(as_csv(report), nl=False)
    else:
        typer.echo(report.model_dump_json(by_alias=True, indent=2))
