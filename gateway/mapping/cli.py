"""`casebridge mappings check | test | preview`: the IM officer's tools for mapping files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping.check import Checked, check_mapping_file, unreadable
from gateway.mapping.codes import CodeListFolder
from gateway.mapping.compile import compile_mapping
from gateway.mapping.examples import run_examples
from gateway.mapping.model import DIRECTIONS, Direction
from gateway.mapping.preview import origins
from gateway.mapping.schema import SchemaView
from gateway.settings import get_settings
from gateway.yamlpos import Problem, display_path

mapping_app = typer.Typer(help="Mapping files: check them, run their examples, preview one record.",
                          no_args_is_help=True)

PathsArg = Annotated[list[Path] | None, typer.Argument(
    help="Mapping files or folders (default: the mappings/ folder)", show_default=False)]


def _view() -> SchemaView:
    return SchemaView(Contracts(get_settings().contracts_dir))


def discover(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(mapping files, code list files) under `paths`; files in a codes/ folder are code lists."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.yaml")) if path.is_dir() else [path])
    mappings = [f for f in files if f.parent.name != "codes"]
    codes = [f for f in files if f.parent.name == "codes"]
    return mappings, codes


def check_all(paths: list[Path], view: SchemaView) -> tuple[list[Checked], list[Problem]]:
    """Check every mapping and code list under `paths`; every problem, each reported once."""
    mappings, code_files = discover(paths)
    folders: dict[Path, CodeListFolder] = {}
    results = [check_mapping_file(p, view, folders=folders) if p.is_file()
               else unreadable(p, "no such file") for p in mappings]
    problems = {problem for result in results for problem in result.problems}
    for path in code_files:
        folder = folders.setdefault(path.parent, CodeListFolder(path.parent, display_path, view))
        problems.update(folder.load(path.stem)[1])
    return results, sorted(problems)


@mapping_app.command("check")
def check(paths: PathsArg = None) -> None:
    """Check mapping files and code lists; print every problem as file:line:column: rule."""
    results, problems = check_all(paths or [get_settings().mappings_dir], _view())
    for problem in problems:
        typer.echo(str(problem))
    warnings = sorted({w for result in results for w in result.warnings})
    for warning in warnings:
        typer.echo(f"{warning.file}:{warning.line}:{warning.column}: warning: {warning.rule}: "
                   f"{warning.message}")
    for result in results:
        if result.ok:
            typer.echo(f"{result.file}: ok {result.content_hash[:19]}")
        else:
            typer.echo(f"{result.file}: NOT OK ({_count(len(result.problems), 'problem')} "
                       "in it or in the code lists it uses)")
    files = len({p.file for p in problems})
    typer.echo(f"{_count(len(results), 'mapping file')} checked: " + (
        f"{_count(len(problems), 'problem')} in {_count(files, 'file')}" if problems
        else "no problems") + (
        f"; {_count(len(warnings), 'warning')} (explicit fallbacks and defaults: review them)"
        if warnings else ""))
    if problems:
        raise typer.Exit(1)


@mapping_app.command("test")
def test(paths: PathsArg = None) -> None:
    """Run the examples written in mapping files; show a diff for each one that fails."""
    view = _view()
    results, problems = check_all(paths or [get_settings().mappings_dir], view)
    passed = failed = 0
    for problem in problems:
        typer.echo(str(problem))
    for result in results:
        if not result.ok:
            typer.echo(f"FAIL {result.file}: not run, the file has problems (see above)")
            failed += 1
            continue
        for outcome in run_examples(compile_mapping(result), view.contracts):
            typer.echo(f"{'ok  ' if outcome.passed else 'FAIL'} {outcome.title}")
            for line in outcome.details:
                typer.echo(f"     {line}")
            passed, failed = passed + outcome.passed, failed + (not outcome.passed)
    typer.echo(f"{_count(passed, 'example')} passed, {failed} failed")
    if failed or problems:
        raise typer.Exit(1)


@mapping_app.command("preview")
def preview(
    file: Annotated[Path, typer.Argument(help="The mapping file", exists=True, dir_okay=False)],
    record: Annotated[Path, typer.Argument(help="A JSON file holding one record", exists=True,
                                           dir_okay=False)],
    direction: Annotated[str | None, typer.Option(
        help="inbound or outbound (needed when the file has both)")] = None,
) -> None:
    """Translate one record and show which rule (and line) produced each field."""
    view = _view()
    checked = check_mapping_file(file, view)
    if not checked.ok:
        for problem in checked.problems:
            typer.echo(str(problem))
        raise typer.Exit(1)
    compiled = compile_mapping(checked)
    chosen = _direction(direction, compiled.directions)
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        typer.echo(f"error: {record} is not JSON (line {error.lineno}, column {error.colno})")
        raise typer.Exit(1) from None
    try:
        output = compiled.run(chosen, data)
    except MappingError as error:
        typer.echo(f"error: {error.detail}")
        raise typer.Exit(1) from None
    typer.echo(json.dumps(output, indent=2, ensure_ascii=False))
    typer.echo("")
    found = origins(compiled.mapping.blocks[chosen].rules, data, output)
    width = max((len(o.pointer) for o in found), default=10) + 2
    typer.echo(f"{'field'.ljust(width)}rule ({compiled.file}, {chosen})")
    for origin in found:
        typer.echo(f"{origin.pointer.ljust(width)}{origin.describe()}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _direction(wanted: str | None, available: tuple[Direction, ...]) -> Direction:
    if wanted is None:
        if len(available) > 1:
            raise typer.BadParameter("the file has both directions: say --direction",
                                     param_hint="--direction")
        return available[0]
    for direction in DIRECTIONS:
        if direction == wanted and direction in available:
            return direction
    raise typer.BadParameter(f"the file has no {wanted} rules", param_hint="--direction")
