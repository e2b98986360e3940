"""`casebridge agreements list | check`: the IM officer's and DPO's view of the agreement files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.contracts import Contracts
from gateway.protection.agreements import Agreement, check_agreement_file
from gateway.settings import get_settings
from gateway.yamlpos import display_path

agreements_app = typer.Typer(help="Data-sharing agreements: list them, check them.",
                             no_args_is_help=True)

DirArg = Annotated[Path | None, typer.Argument(
    help="Folder of agreement files, or one file (default: the agreements/ folder)",
    show_default=False)]


def discover(where: Path) -> list[Path]:
    """The agreement files at `where`: the file itself, or every *.yaml directly in the folder."""
    return sorted(p for p in where.glob("*.yaml") if p.is_file()) if where.is_dir() else [where]


def check_all(where: Path, contracts: Contracts
              ) -> list[tuple[Path, Agreement | None, list[str]]]:
    """Every agreement file at `where`, checked: (path, agreement or None, problems)."""
    checked: list[tuple[Path, Agreement | None, list[str]]] = []
    for path in discover(where):
        if not path.is_file():
            checked.append((path, None, [f"{display_path(path)}:1:1: unreadable: no such file"]))
            continue
        agreement, problems = check_agreement_file(path, contracts)
        checked.append((path, agreement, problems))
    return checked


def _contracts() -> Contracts:
    return Contracts(get_settings().contracts_dir)


@agreements_app.command("list")
def list_(where: DirArg = None) -> None:
    """List the agreements: parties, purposes, categories per purpose, retention, validity."""
    folder = where or get_settings().agreements_dir
    results = check_all(folder, _contracts())
    for path, agreement, problems in results:
        if agreement is None:
            typer.echo(f"{display_path(path)}: NOT IN FORCE ({_count(len(problems), 'problem')}"
                       "; see `casebridge agreements check`)\n")
            continue
        for line in describe(agreement):
            typer.echo(line)
        typer.echo("")
    good = sum(1 for _, agreement, _ in results if agreement is not None)
    typer.echo(f"{_count(good, 'agreement')} in {_count(len(results), 'file')}")


def describe(agreement: Agreement) -> list[str]:
    """An agreement as a few lines of text, for people."""
    services = ", ".join(sorted(agreement.service_types)) if agreement.service_types else "any"
    lines = [
        f"{agreement.id}  ({agreement.file})",
        f"  title:       {agreement.title or '-'}",
        f"  parties:     {', '.join(sorted(agreement.parties))}",
        f"  purposes:    {', '.join(sorted(agreement.purposes))}",
        f"  services:    {services}",
    ]
    for purpose in sorted(agreement.categories):
        categories = ", ".join(sorted(agreement.categories[purpose])) or "none"
        lines.append(f"  {purpose + ':':<12} {categories}")
    since = agreement.valid_from.isoformat() if agreement.valid_from else "always"
    until = agreement.valid_to.isoformat() if agreement.valid_to else "open-ended"
    lines += [
        f"  retention:   {agreement.retention_days} days after closure",
        f"  valid:       {since} to {until}",
        f"  children:    BIA reference {_yes(agreement.requires_bia_for_children)}, "
        f"child's assent {_yes(agreement.requires_child_assent)}",
        f"  outside consent: {agreement.outside_consent}",
        f"  on erasure request: {agreement.on_erasure_request}",
    ]
    if agreement.observers:
        lines.append(f"  observers:   {', '.join(sorted(agreement.observers))} "
                     "(told of overdue deadlines, ids and times only)")
    return lines


@agreements_app.command("check")
def check(where: DirArg = None) -> None:
    """Check agreement files; print every problem as file:line:column: rule: detail."""
    folder = where or get_settings().agreements_dir
    results = check_all(folder, _contracts())
    problems = [problem for _, _, found in results for problem in found]
    for problem in problems:
        typer.echo(problem)
    bad = sum(1 for _, _, found in results if found)
    if problems:
        typer.echo(f"{_count(len(results), 'file')}: {_count(len(problems), 'problem')} in "
                   f"{_count(bad, 'file')}")
        raise typer.Exit(1)
    typer.echo(f"{_count(len(results), 'file')}, no problems")


@agreements_app.command("health")
def health() -> None:
    """Agreements ending within 60 days or ended, partners sending under them in the last
    30 days, and data categories senders send that the agreement never allows."""
    from gateway.protection import agreement_health
    from gateway.protection.agreements import AgreementRegistry
    from gateway.protection.keys_cli import cli_errors, open_store
    from gateway.store.models import utcnow

    with cli_errors(), open_store(keys="if-configured") as (settings, sessions), \
            sessions() as session:
        registry = AgreementRegistry(settings.agreements_dir, Contracts(settings.contracts_dir))
        found = agreement_health.health(session, agreements=registry.in_force(), now=utcnow())
    typer.echo(f"on {found.today}: {_count(len(found.terms), 'agreement')} in force")
    for term in found.attention:
        left = f", {term.days_left} days left" if term.days_left is not None \
            and term.days_left >= 0 else ""
        typer.echo(f"  {term.agreement.id}: {term.standing.replace('_', ' ')} "
                   f"(last day {term.ends or '-'}{left})")
    if not found.attention:
        typer.echo(f"  none ends within {agreement_health.HORIZON_DAYS} days")
    typer.echo(f"sending under an agreement ending or ended, last "
               f"{agreement_health.WINDOW_DAYS} days:")
    for sending in found.sending:
        typer.echo(f"  {sending.agreement or '-'}: {sending.sender} -> {sending.receiver or '?'}"
                   f": {sending.sent} sent, {sending.refused} refused (agreement not valid)")
    if not found.sending:
        typer.echo("  none")
    typer.echo("categories sent that the agreement never allows (removed):")
    for agreement_id, category, count in found.removed_rows:
        typer.echo(f"  {agreement_id}: {category} in {_count(count, 'referral')}")
    if not found.removed:
        typer.echo("  none")


def _yes(flag: bool) -> str:
    return "required" if flag else "not required"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
