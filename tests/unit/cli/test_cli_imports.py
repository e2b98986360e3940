"""Every gateway process starts with `import gateway.cli`: it stays cheap, and the command
groups it imports only when one of their commands runs look the same as if it had not."""

import json
import subprocess
import sys

import typer.main
from typer.testing import CliRunner

from gateway.cli import SUB_APPS, app

HEAVY = ("fastapi", "fhir.resources", "sqlalchemy", "alembic", "uvicorn", "pydantic",
         "httpx", "gateway.settings", "gateway.console", "gateway.mapping", "gateway.store")


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    probe = f"import sys\n{code}\nimport json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(modules: set[str]) -> set[str]:
    return {name for name in modules for heavy in HEAVY
            if name == heavy or name.startswith(heavy + ".")}


def test_importing_the_command_line_imports_no_web_framework_store_or_console() -> None:
    assert heavy_in(imported_after("import gateway.cli")) == set()


def test_the_help_of_the_command_line_imports_none_of_its_command_groups() -> None:
    code = ("from gateway.cli import app\n"
            "try:\n    app(['--help'], prog_name='casebridge')\nexcept SystemExit:\n    pass")
    modules = imported_after(code)
    assert not {sub.module for sub in SUB_APPS.values()} & modules
    assert heavy_in(modules) == set()


def test_a_command_group_is_imported_when_one_of_its_commands_runs_and_no_other() -> None:
    code = ("from gateway.cli import app\n"
            "try:\n    app(['agreements', 'list', '--help'], prog_name='casebridge')\n"
            "except SystemExit:\n    pass")
    modules = imported_after(code)
    assert "gateway.protection.agreements_cli" in modules
    assert not {sub.module for name, sub in SUB_APPS.items() if name != "agreements"} & modules


def test_the_root_help_gives_each_command_group_the_help_its_own_module_gives_it() -> None:
    for name, sub in SUB_APPS.items():
        assert typer.main.get_group(sub.load()).help == sub.help, name
    listed = " ".join(CliRunner().invoke(app, ["--help"]).output.replace("│", " ").split())
    for name, sub in SUB_APPS.items():
        assert f" {name} {' '.join(sub.help.split())} " in listed, name


def test_every_command_group_is_listed_in_the_order_it_was_and_runs_its_commands() -> None:
    group = typer.main.get_group(app)
    assert list(group.commands) == [
        "serve", "sandbox", "relay", "worker", "poll", "scheduler", "demo", "dead-letters",
        "redrive", "purge", "db", "partners", "mappings", "agreements", "deadlines",
        "directory", "keys", "audit", "users", "report", "subject"]
    for name in SUB_APPS:
        answer = CliRunner().invoke(app, [name, "--help"])
        assert answer.exit_code == 0 and f"Usage: root {name} [OPTIONS] COMMAND" in answer.output
    typo = CliRunner().invoke(app, ["mapings"])
    assert typo.exit_code == 2 and "Did you mean 'mappings'?" in typo.output


def test_the_store_is_opened_without_importing_the_migration_tool() -> None:
    modules = imported_after("import gateway.store.db, gateway.store.models")
    assert "gateway.store.db" in modules and "alembic" not in modules
