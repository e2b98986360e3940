"""`casebridge deadlines check | due`: IM officers' tools for deadline policies and calendars."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from gateway.contracts import Contracts
from gateway.deadlines.calendars import calendar_files, load_calendars
from gateway.deadlines.policies import load_policies, policy_files
from gateway.settings import get_settings
from gateway.yamlpos import Problem, display_path

deadlines_app = typer.Typer(help="Deadline policies and working-day calendars: check them.",
                            no_args_is_help=True)

PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Policy files or folders (default: the deadlines/ folder); calendars come from "
    "the calendars/ folder", show_default=False)]


@deadlines_app.command("check")
def check(paths: PathsArg = None) -> None:
    """Check deadline policies and the calendars they name; print every problem as
    file:line:column: rule: message (exit 1 if there is one)."""
    settings = get_settings()
    calendars, problems = load_calendars(settings.calendars_dir)
    files: list[Path] = []
    for path in paths or [settings.deadlines_dir]:
        if path.is_dir():
            files += policy_files(path)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(display_path(path), 1, 1, "unreadable", "no such file"))
    policies, found = load_policies(files, calendar_ids=set(calendars),
                                    contracts=Contracts(settings.contracts_dir))
    problems += found
    for problem in sorted(set(problems)):
        typer.echo(str(problem))
    checked = len(files) + len(calendar_files(settings.calendars_dir))
    if problems:
        typer.echo(f"{checked} files checked: {len(set(problems))} problems in "
                   f"{len({p.file for p in problems})} files")
        raise typer.Exit(1)
    rules = sum(len(p.rules) for p in policies)
    typer.echo(f"{checked} files checked ({len(policies)} policies, {rules} deadlines, "
               f"{len(calendars)} calendars): no problems")


@deadlines_app.command("due")
def due(
    calendar: Annotated[str, typer.Argument(help="Calendar id, e.g. gb-eng or et-gambella")],
    start: Annotated[str, typer.Argument(help="When the clock starts, ISO 8601 with offset")],
    working_days: Annotated[int, typer.Argument(help="Working days allowed")],
) -> None:
    """When a deadline of N working days from START falls due in CALENDAR (to try a
    calendar out before a policy uses it)."""
    from gateway.deadlines.calendars import add_working_days
    from gateway.deadlines.compute import due_day

    calendars, _ = load_calendars(get_settings().calendars_dir)
    if calendar not in calendars:
        typer.echo(f"no calendar '{calendar}'; known: {', '.join(sorted(calendars))}", err=True)
        raise typer.Exit(1)
    try:
        started = datetime.fromisoformat(start)
        at = add_working_days(started, working_days, calendars[calendar])
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="START") from None
    typer.echo(f"due by the end of {due_day(at, calendars[calendar]):%A %Y-%m-%d} "
               f"({calendars[calendar].zone.key}), {at.isoformat()} UTC")
