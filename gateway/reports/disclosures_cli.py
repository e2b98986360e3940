"""`casebridge report disclosures`: the disclosure register for data-protection officers."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Annotated

import typer

from gateway.contracts import Contracts
from gateway.errors import MalformedRequest
from gateway.protection import audit, disclosures
from gateway.protection.keys_cli import cli_errors, open_store
from gateway.store.db import unit_of_work
from gateway.store.models import utcnow


def disclosures_report(
    since: Annotated[str | None, typer.Option(
        metavar="ISO", help="First day or instant (UTC unless a zone is given); default: "
        "365 days before --until")] = None,
    until: Annotated[str | None, typer.Option(
        metavar="ISO", help="End of the period, not included; default: now")] = None,
    format: Annotated[str, typer.Option(
        "--format", help="table (for people), csv (a spreadsheet) or json")] = "table",
    output: Annotated[Path | None, typer.Option(
        help="File to write (default: standard output)")] = None,
) -> None:
    """What was disclosed in a period, per agreement and partner pair (counts only, from
    the audit trail; the reading is audited)."""
    if format not in ("table", "csv", "json"):
        raise typer.BadParameter("table, csv or json", param_hint="--format")
    now = utcnow()
    try:
        start, end = disclosures.period(since, until, now=now)
    except MalformedRequest as error:
        hint = error.extensions["errors"][0]["pointer"].lstrip("/")
        raise typer.BadParameter(error.extensions["errors"][0]["detail"],
                                 param_hint=f"--{hint}") from None
    with cli_errors(), open_store(keys="if-configured") as (settings, sessions), \
            unit_of_work(sessions) as session:
        found = disclosures.register(
            session, since=start, until=end, now=now,
            categories=Contracts(settings.contracts_dir).codes("data-category"))
        audit.record(session, actor=f"user:{getpass.getuser()}@cli",
                     action="report.disclosures",
                     detail={"since": start.isoformat(), "until": end.isoformat(),
                             "format": format})
    text = (found.as_csv() if format == "csv" else
            json.dumps(found.as_dict(), indent=2) + "\n" if format == "json" else table(found))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"disclosure register {start:%Y-%m-%d} to {end:%Y-%m-%d} written to "
                   f"{output}", err=True)


def table(found: disclosures.Register) -> str:
    """The register as lines for a terminal."""
    lines = [f"disclosure register {found.since.isoformat()} to {found.until.isoformat()} "
             f"(audit trail up to entry {found.head_seq})"]
    for row in [*found.rows, *found.by_agreement()]:
        pair = (f"{row.sender} -> {row.receiver or '?'}" if row.sender
                else "all partner pairs")
        told = row.told.as_dict()
        lines += [
            "",
            f"{row.agreement or '(no agreement)'}  {pair}",
            f"  referrals {row.referrals}, transfers {row.transfers}",
            f"  categories sent: {_counts(row.categories_sent)}",
            f"  removed by the agreement: {_counts(row.removed_by_agreement)}",
            f"  removed, outside the consent: {_counts(row.removed_by_consent)}",
            f"  refused: {_counts(row.refusals)}",
            f"  withdrawn {row.withdrawals}, erased {row.erasures}, restricted "
            f"{row.restrictions}; receiver: "
            + ", ".join(f"{k} {told[k]}" for k in disclosures.REACH)
            + (f" (median {told['median_seconds']} s, longest {told['max_seconds']} s)"
               if told["median_seconds"] is not None else ""),
            f"  purged {row.purges}",
        ]
    if not found.rows:
        lines.append("nothing was referred, refused, withdrawn or purged in this period")
    return "\n".join(lines) + "\n"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "-"
