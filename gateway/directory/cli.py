"""`casebridge directory check | search | export-hsds | import-hsds`: the IM officer's tools."""

from __future__ import annotations

import io
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from sqlalchemy.exc import SQLAlchemyError

from gateway.contracts import Contracts
from gateway.deadlines.calendars import load_calendars
from gateway.directory.availability import availability_updates
from gateway.directory.files import CODE_LISTS, check_directory_file, directory_files
from gateway.directory.hsds import (
    export_hsds,
    hsds_problems,
    import_hsds,
    operation_document,
    schema_problems,
)
from gateway.directory.model import Conflict, Directory, Operation
from gateway.directory.registry import code_lists
from gateway.directory.search import Need, search
from gateway.errors import FieldError
from gateway.settings import get_settings
from gateway.store.db import make_engine, make_sessionmaker
from gateway.yamlpos import Pos, Problem, Problems, display_path, read_yaml, value_pos

directory_app = typer.Typer(help="The service directory: check it, search it, HSDS in and out.",
                            no_args_is_help=True)

PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Directory files or folders (default: the directory/ folder)", show_default=False)]


def _load(paths: list[Path] | None) -> tuple[list[Operation], list[Problem], int]:
    """The good operations of these files, every problem (conflicts between files too),
    and how many files were read."""
    settings = get_settings()
    contracts = Contracts(settings.contracts_dir)
    calendars, problems = load_calendars(settings.calendars_dir)
    files: list[Path] = []
    for path in paths or [settings.directory_dir]:
        if path.is_dir():
            files += directory_files(path)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(display_path(path), 1, 1, "unreadable", "no such file"))
    operations = []
    for path in files:
        operation, found = check_directory_file(path, codes=code_lists(contracts),
                                                calendar_ids=set(calendars))
        problems += found
        if operation is not None:
            operations.append(operation)
    problems += [_conflict(c) for c in Directory.merge(operations).conflicts]
    return operations, problems, len(files)


def _conflict(conflict: Conflict) -> Problem:
    """A clash between two files, at the id in the file left out."""
    problems = Problems(conflict.file)
    _, tree = read_yaml(Path(conflict.file), problems)
    where = _id_pos(tree, conflict.id) or Pos(1, 1)
    return Problem(conflict.file, where.line, where.column, "duplicate-id",
                   f"the {conflict.kind} '{conflict.id}' is already in {conflict.other_file}: "
                   "this file is left out of the directory until one of them changes its id")


def _id_pos(tree: Any, wanted: str) -> Pos | None:
    if isinstance(tree, CommentedMap):
        if tree.get("id") == wanted:
            return value_pos(tree, "id")
        children = list(tree.values())
    elif isinstance(tree, list):
        children = tree
    else:
        return None
    return next((p for child in children if (p := _id_pos(child, wanted)) is not None), None)


@directory_app.command("check")
def check(paths: PathsArg = None) -> None:
    """Check directory files; print every problem as file:line:column: rule: message (exit 1
    if there is one). With no argument, the repository's own directory/ folder."""
    operations, problems, count = _load(paths)
    for problem in sorted(set(problems)):
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{count} files checked: {len(set(problems))} problems in "
                   f"{len({p.file for p in problems})} files")
        raise typer.Exit(1)
    directory = Directory.merge(operations)
    typer.echo(f"{count} files checked ({len(operations)} operations, "
               f"{len(directory.areas)} areas, {len(directory.organizations)} organisations, "
               f"{len(directory.services)} services): no problems")


@directory_app.command("search")
def search_(
    service_type: Annotated[str | None, typer.Option(help="A service type code")] = None,
    area: Annotated[str | None, typer.Option(help="An area id, name or code")] = None,
    postcode: Annotated[str | None, typer.Option(help="A UK postcode (instead of area)")] = None,
    age: Annotated[int | None, typer.Option(help="The person's age in years")] = None,
    sex: Annotated[str | None, typer.Option(help="female or male")] = None,
    profile: Annotated[str | None, typer.Option(help="A profile code, e.g. gbv_survivor")] = None,
    language: Annotated[str | None, typer.Option(help="An ISO 639 code, e.g. ar")] = None,
    with_updates: Annotated[bool, typer.Option(
        help="Apply the availability organisations gave through the API (read from "
        "CASEBRIDGE_DATABASE_URL)")] = False,
) -> None:
    """The services matching a need, best first, as caseworkers' systems get them (with the
    availability the files say, unless --with-updates)."""
    operations, problems, _ = _load(None)
    directory = Directory.merge(operations)
    if with_updates:
        directory = _with_store_availability(directory)
    if problems:
        typer.echo(f"note: {len(problems)} problems in the directory files; files with one "
                   "are left out (see `casebridge directory check`)", err=True)
    where = None
    if postcode is not None:
        where = directory.by_postcode(postcode)
        if where is None:
            raise typer.BadParameter("no area of the directory covers this postcode",
                                     param_hint="--postcode")
    elif area is not None:
        found = directory.find_area(area)
        if len(found) != 1:
            raise typer.BadParameter("no area has this id, name or code" if not found else
                                     "several areas do: " + ", ".join(a.id for a in found),
                                     param_hint="--area")
        where = found[0]
    matches = search(directory, Need(service_type=service_type, area=where, age=age, sex=sex,
                                     profile=profile, language=language))
    if where is not None:
        typer.echo(f"area: {where.name} ({where.id})")
    for rank, match in enumerate(matches, 1):
        service, organization = match.service, match.organization
        reached = f"partner {organization.partner}" if organization.partner else "not a partner"
        typer.echo(f"{rank:>2}. [{service.availability.status.value}] {service.name} "
                   f"({service.type}) - {organization.name} ({reached})")
        details = [f"area: {match.area_match.value}" if match.area_match else "",
                   _contact_line(service.contact or organization.contact)]
        typer.echo("    " + "; ".join(d for d in details if d) + f"  [{service.id}]")
    typer.echo(f"{len(matches)} services")


def _contact_line(contact: Any) -> str:
    if contact is None:
        return "no contact listed"
    return "contact: " + ", ".join(v for v in (contact.team, contact.name, contact.email,
                                               contact.phone) if v)


def _with_store_availability(directory: Directory) -> Directory:
    """The organisations' own availability updates from the store, when it can be read."""
    settings = get_settings()
    try:
        with make_sessionmaker(make_engine(settings.database_url))() as session:
            return directory.with_availability(availability_updates(session))
    except SQLAlchemyError as error:
        typer.echo(f"the store cannot be read ({type(error).__name__}): check "
                   "CASEBRIDGE_DATABASE_URL, or search without --with-updates", err=True)
        raise typer.Exit(1) from None


@directory_app.command("export-hsds")
def export(
    paths: PathsArg = None,
    out: Annotated[Path | None, typer.Option(help="File to write (default: standard output)")
                   ] = None,
    schema: Annotated[Path | None, typer.Option(
        help="Also validate against the HSDS schema files of this folder (the "
        "specification's schema/ folder)")] = None,
) -> None:
    """Write the directory as Open Referral HSDS 3 JSON (an array of organizations),
    checked against the HSDS 3.0 field rules (exit 1 if it breaks one)."""
    operations, problems, _ = _load(paths)
    if problems:
        for problem in sorted(set(problems)):
            typer.echo(str(problem), err=True)
        typer.echo("export refused: fix the directory files first", err=True)
        raise typer.Exit(1)
    settings = get_settings()
    contracts = Contracts(settings.contracts_dir)
    document = export_hsds(Directory.merge(operations), labels=_labels(contracts),
                           calendars=load_calendars(settings.calendars_dir)[0])
    broken = hsds_problems(document) + (schema_problems(document, schema) if schema else [])
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{display_path(out)}: {len(document)} organisations", err=True)
    _report(broken, "export")


@directory_app.command("import-hsds")
def import_(
    source: Annotated[Path, typer.Argument(help="An HSDS 3 JSON file: an array of "
                                           "organizations with their services")],
    into: Annotated[Path | None, typer.Option(
        help="The directory file to add the organisations to (its areas are kept)")] = None,
    out: Annotated[Path | None, typer.Option(
        help="The directory file to write (default: standard output)")] = None,
    operation_id: Annotated[str | None, typer.Option("--id", help="Id of a new file")] = None,
    country: Annotated[str | None, typer.Option(help="Country of a new file (e.g. ETH)")
                       ] = None,
    title: Annotated[str | None, typer.Option(help="Title of a new file")] = None,
) -> None:
    """Turn HSDS 3 JSON into a directory file: organisations of the same id are replaced,
    the others kept; what needs a person's eye is listed, then the result is checked."""
    settings = get_settings()
    contracts = Contracts(settings.contracts_dir)
    data = json.loads(source.read_text(encoding="utf-8"))
    data = data if isinstance(data, list) else [data]
    _report(hsds_problems(data), "import")
    base = _base(into, operation_id, country, title, contracts)
    imported = import_hsds(data, into=base, service_types=contracts.codes("service-type"),
                           now=datetime.now(UTC))
    for note in imported.notes:
        typer.echo(f"note: {note}", err=True)
    text = _yaml(operation_document(imported.operation), source)
    with tempfile.TemporaryDirectory() as folder:
        written = out or Path(folder) / f"{imported.operation.id}.yaml"
        written.write_text(text, encoding="utf-8")
        _, problems = check_directory_file(written, codes=code_lists(contracts),
                                           calendar_ids=set(load_calendars(
                                               settings.calendars_dir)[0]))
    if out is None:
        sys.stdout.write(text)
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        typer.echo("the file written does not pass `casebridge directory check`: fix the "
                   "lines above", err=True)
        raise typer.Exit(1)


def _base(into: Path | None, operation_id: str | None, country: str | None,
          title: str | None, contracts: Contracts) -> Operation:
    if into is not None:
        operation, problems = check_directory_file(into, codes=code_lists(contracts))
        if operation is None:
            for problem in problems:
                typer.echo(str(problem), err=True)
            raise typer.Exit(1)
        return operation
    if not (operation_id and country):
        raise typer.BadParameter("give --into FILE, or --id and --country for a new file")
    return Operation(id=operation_id, title=title or operation_id, country=country.upper(),
                     country_name=country.upper(), areas=(), organizations=())


def _yaml(document: dict[str, Any], source: Path) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 100
    text = io.StringIO()
    yaml.dump(_flow_scalar_lists(document), text)
    header = (f"# Imported from {source.name} (HSDS 3) by `casebridge directory import-hsds` on "
              f"{datetime.now(UTC).date().isoformat()}.\n# Review it, then run "
              "`casebridge directory check`. Guide: docs/directory.md.\n")
    return header + text.getvalue()


def _flow_scalar_lists(value: Any) -> Any:
    """The document with lists of plain values written on one line, as people write them."""
    if isinstance(value, dict):
        return {k: _flow_scalar_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            flow = CommentedSeq(value)
            flow.fa.set_flow_style()
            return flow
        return [_flow_scalar_lists(v) for v in value]
    return value


def _labels(contracts: Contracts) -> dict[str, dict[str, str]]:
    return {name: contracts.labels(name) for name in CODE_LISTS}


def _report(problems: list[FieldError], what: str) -> None:
    for problem in problems:
        typer.echo(f"{problem.pointer or '/'}: {problem.rule}: {problem.detail}", err=True)
    if problems:
        typer.echo(f"{what}: {len(problems)} HSDS rules broken", err=True)
        raise typer.Exit(1)
