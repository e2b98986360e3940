"""`casebridge subject find | export | restrict | erase`: data-subject requests at the
server, for a data-protection officer with access to it (the console's auditor pages do
the same). Each command is audited with its reason and reference, as
`user:<login>@cli`.

Identifiers come from `--identifier`, or one a line on standard input when none is
given, which keeps them out of the shell's history.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from gateway.contracts import Contracts
from gateway.errors import ValidationProblem
from gateway.protection import subject_requests as requests
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.keys_cli import cli_errors, open_store
from gateway.settings import Settings
from gateway.store.db import unit_of_work
from gateway.store.models import Referral, utcnow

T = TypeVar("T")
subject_app = typer.Typer(
    help="Data-subject requests: find a person's referrals, export them for the person, "
         "restrict or erase them.", no_args_is_help=True)

Identifiers = Annotated[list[str] | None, typer.Option(
    "--identifier", metavar="SYSTEM:VALUE",
    help="An identifier of the person, e.g. primero_case:CP-123 (repeat for more); none: "
         "read them from standard input, one a line")]
Reason = Annotated[str, typer.Option(help="Why: " + ", ".join(requests.REASONS))]
Reference = Annotated[str, typer.Option(help="The request's ticket or letter number")]
Referrals = Annotated[list[str] | None, typer.Option(
    "--referral", help="Only this referral of those found (repeat for more)")]


@contextmanager
def _request(identifiers: list[str] | None, reason: str, reference: str
             ) -> Iterator[tuple[Settings, Session, list[Referral], requests.Request]]:
    """The person's referrals, in a transaction that commits the audit entries with it."""
    why = _checked(lambda: requests.request(actor=f"user:{getpass.getuser()}@cli",
                                            reason=reason, reference=reference))
    if not identifiers and sys.stdin.isatty():
        typer.echo("identifiers, one a line, then Ctrl-D:", err=True)
    lines = identifiers or sys.stdin.read().splitlines()
    with cli_errors(), open_store() as (settings, sessions), unit_of_work(sessions) as session:
        found = _checked(lambda: requests.find(session, identifiers=lines, why=why))
        yield settings, session, found, why


def _checked(call: Callable[[], T]) -> T:
    try:
        return call()
    except ValidationProblem as problem:
        for error in problem.errors:
            typer.echo(f"error: {error.pointer.lstrip('/').split('/')[0]}: {error.detail}",
                       err=True)
        raise typer.Exit(2) from None


@subject_app.command("find")
def find(reason: Reason, reference: Reference, identifier: Identifiers = None) -> None:
    """List the person's referrals: id, kind, sender -> receiver, agreement, sent, state."""
    with _request(identifier, reason, reference) as (_, _session, found, _why):
        for r in found:
            typer.echo(f"{r.id}\t{r.kind}\t{r.sender_id} -> {r.receiver_id}\t"
                       f"{r.agreement_id or '-'}\t{r.created_at:%Y-%m-%d}\t{r.status}"
                       + (f"\t{r.stopped}" if r.stopped else ""))
    typer.echo(f"{len(found)} referral(s)", err=True)


@subject_app.command("export")
def export(
    reason: Reason, reference: Reference, identifier: Identifiers = None,
    referral: Referrals = None,
    format: Annotated[str, typer.Option(
        "--format", help="html (printable, for the person) or json")] = "html",
    output: Annotated[Path | None, typer.Option(
        help="File to write (default: standard output)")] = None,
) -> None:
    """Everything the person's referrals disclosed, for the person or their representative."""
    if format not in ("html", "json"):
        raise typer.BadParameter("html or json", param_hint="--format")
    with _request(identifier, reason, reference) as (settings, session, found, why):
        contracts = Contracts(settings.contracts_dir)
        disclosures = requests.export(
            session, referrals=requests.chosen(found, referral or []), contracts=contracts,
            agreements=AgreementRegistry(settings.agreements_dir, contracts), why=why,
            form=format)
    at = utcnow()
    text = (json.dumps(requests.as_json(disclosures, why=why, at=at), indent=2,
                       ensure_ascii=False, default=str) + "\n" if format == "json"
            else _printable("subject_export.html", disclosures=disclosures, why=why, at=at,
                           reason_text=requests.REASONS[why.reason]))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"{len(disclosures)} referral(s) exported to {output}", err=True)


@subject_app.command("restrict")
def restrict(reason: Reason, reference: Reference, identifier: Identifiers = None,
             referral: Referrals = None,
             yes: Annotated[bool, typer.Option(
                 "--yes", help="Do not ask for confirmation")] = False) -> None:
    """Freeze the person's referrals: kept, but nothing more leaves and no partner sees
    them; each open one is withdrawn, which tells its receiver."""
    _stop("restrict", identifier, reason, reference, referral, yes)


@subject_app.command("erase")
def erase(reason: Reason, reference: Reference, identifier: Identifiers = None,
          referral: Referrals = None,
          yes: Annotated[bool, typer.Option(
              "--yes", help="Do not ask for confirmation")] = False) -> None:
    """Erase every personal value of the person's referrals (restricted instead where the
    agreement keeps such records); each open one is withdrawn, which tells its receiver."""
    _stop("erase", identifier, reason, reference, referral, yes)


def _stop(action: str, identifiers: list[str] | None, reason: str, reference: str,
          referrals: list[str] | None, yes: bool) -> None:
    if not yes and not identifiers:
        raise typer.BadParameter("with identifiers on standard input, confirm with --yes",
                                 param_hint="--yes")
    with _request(identifiers, reason, reference) as (settings, session, found, why):
        chosen = requests.chosen(found, referrals or [])
        if not yes and not typer.confirm(
                f"{action} {len(chosen)} referral(s)? Check that the agreement and the law "
                "allow it"):
            raise typer.Exit(1)
        contracts = Contracts(settings.contracts_dir)
        agreements = AgreementRegistry(settings.agreements_dir, contracts)
        results = [requests.erase(session, contracts=contracts, agreements=agreements,
                                  referral=r, why=why) if action == "erase"
                   else requests.restrict(session, contracts=contracts, referral=r, why=why)
                   for r in chosen]
    for result in results:
        told = ("receiver told through the gateway" if result.receiver_told
                else "-" if result.outcome.startswith("already")
                else f"tell {result.receiver} directly")
        why_text = f" ({result.why})" if result.why else ""
        typer.echo(f"{result.referral_id}\t{result.outcome}{why_text}\t{told}")
    typer.echo(f"{len(results)} referral(s)", err=True)


def _printable(template: str, **values: object) -> str:
    """The console's printable page (loaded here only: the rest of the command needs none)."""
    from gateway.console.render import printable

    return printable(template, **values)
