"""`casebridge agreements list | check`, run in-process through typer's CliRunner."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateway import ROOT
from gateway.protection.agreements_cli import agreements_app
from gateway.settings import get_settings

SHIPPED = ROOT / "agreements"
runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped agreements that a test may change."""
    shutil.copytree(SHIPPED, tmp_path / "agreements")
    return tmp_path / "agreements"


@pytest.fixture
def settings_cache() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str, **env: str) -> Result:
    return runner.invoke(agreements_app, list(args), env=env)


def test_check_of_the_shipped_agreements_finds_no_problems() -> None:
    result = run("check", str(SHIPPED))
    shipped = len(list(SHIPPED.glob("*.yaml")))
    assert result.exit_code == 0, result.output
    assert result.output == f"{shipped} files, no problems\n"


def test_check_prints_every_problem_of_every_file_and_fails(folder: Path) -> None:
    transfers = folder / "cbcp-ssd-uga-transfers-2026.yaml"
    transfers.write_text(transfers.read_text().replace("purposes: [transfer]",
                                                       "purposes: [transfers]"))
    line = transfers.read_text().splitlines().index("purposes: [transfers]") + 1
    (folder / "broken.yaml").write_text("id: broken\nparties: [agency-a\n")
    result = run("check", str(folder))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].endswith("broken.yaml:3:1: yaml-syntax: expected ',' or ']', but got "
                             "'<stream end>'")
    assert lines[1].endswith(f"cbcp-ssd-uga-transfers-2026.yaml:{line}:12: enum: 'purposes[0]' "
                             "must be a code of Purpose: referral, transfer")
    assert lines[-1] == "5 files: 2 problems in 2 files"


def test_check_of_one_file(folder: Path) -> None:
    result = run("check", str(folder / "hmpps-n07-n03-case-transfer.yaml"))
    assert (result.exit_code, result.output) == (0, "1 file, no problems\n")


def test_list_shows_each_agreement_and_the_files_not_in_force(folder: Path) -> None:
    (folder / "isp-x.yaml").write_text("id: isp-x\n")
    result = run("list", str(folder))
    assert result.exit_code == 0, result.output
    assert "hmpps-n07-n03-case-transfer  (" in result.output
    assert "  parties:     ndelius-n03, ndelius-n07\n" in result.output
    assert "  purposes:    transfer\n" in result.output
    assert ("  transfer:    case-notes, contact, demographics, identity, legal, protection, "
            "risk\n") in result.output
    assert "  retention:   2555 days after closure\n" in result.output
    assert "  valid:       2025-04-01 to open-ended\n" in result.output
    assert "  referral:    case-notes, contact, demographics, identity, protection, risk\n" in (
        result.output)
    assert "isp-x.yaml: NOT IN FORCE (4 problems; see `casebridge agreements check`)" in (
        result.output)
    assert result.output.endswith("4 agreements in 5 files\n")


def test_both_commands_default_to_the_configured_folder(folder: Path,
                                                        settings_cache: None) -> None:
    for extra in folder.glob("*.yaml"):
        if extra.name != "hmpps-n07-n03-case-transfer.yaml":
            extra.unlink()
    checked = run("check", CASEBRIDGE_AGREEMENTS_DIR=str(folder))
    assert (checked.exit_code, checked.output) == (0, "1 file, no problems\n")
    get_settings.cache_clear()
    listed = run("list", CASEBRIDGE_AGREEMENTS_DIR=str(folder))
    assert listed.output.startswith("hmpps-n07-n03-case-transfer  (")
