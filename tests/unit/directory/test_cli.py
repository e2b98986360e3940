"""`casebridge directory check | search | export-hsds | import-hsds`, run in-process."""

import json
import shutil
from pathlib import Path
from typing import Any

from gateway import ROOT
from testland import TESTLAND, write


def test_check_with_no_argument_checks_the_repositorys_own_directory(cli: Any) -> None:
    result = cli("directory", "check")
    assert result.exit_code == 0, result.output
    count = len(list((ROOT / "directory").glob("*.yaml")))
    assert result.output.startswith(f"{count} files checked ({count} operations, ")
    assert result.output.rstrip().endswith("services): no problems")


def test_check_prints_each_problem_as_file_line_column_and_fails(cli: Any,
                                                                 tmp_path: Path) -> None:
    write(tmp_path, TESTLAND.replace("status: suspended", "status: closed"))
    result = cli("directory", "check", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{tmp_path / 'testland.yaml'}:35:32: unknown-code: 'closed' is not a status: "
        "accepting, waitlist, suspended",
        "1 files checked: 1 problems in 1 files"]


def test_check_finds_two_files_holding_the_same_id(cli: Any, tmp_path: Path) -> None:
    write(tmp_path, TESTLAND)
    write(tmp_path, TESTLAND.replace("id: testland", "id: zcopy"), "zcopy.yaml")
    result = cli("directory", "check", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        f"{tmp_path / 'zcopy.yaml'}:7:10: duplicate-id: the area 'north' is already in "
        f"{tmp_path / 'testland.yaml'}: this file is left out of the directory until one of "
        "them changes its id")


def test_search_by_postcode_finds_the_pdu_and_its_spoc_team(cli: Any) -> None:
    result = cli("directory", "search", "--service-type", "probation_supervision",
                 "--postcode", "CF10 1AA")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        "area: Cardiff and Vale PDU (pdu-cardiff-vale)",
        " 1. [accepting] Cardiff and Vale PDU (probation_supervision) - Probation Service, "
        "Wales region (partner ndelius-n03)",
        "    area: same; contact: Cardiff and Vale PDU - case transfer SPOC, "
        "spoc.cardiff-vale@example.org, +44 0000 000501  [pdu-cardiff-vale-supervision]"]


def test_export_then_import_into_the_same_file_gives_the_same_directory(
        cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "directory"
    shutil.copytree(ROOT / "directory", folder)
    exported = tmp_path / "hsds.json"
    result = cli("directory", "export-hsds", str(folder), "--out", str(exported))
    assert result.exit_code == 0, result.output
    document = json.loads(exported.read_text())
    ours = {"probation-london", "probation-wales", "wales-approved-premises"}
    wales = [o for o in document if any(i["identifier"] in ours
                                        for i in o["organization_identifiers"])]
    (tmp_path / "wales.json").write_text(json.dumps(wales))
    written = tmp_path / "gbr-probation.yaml"
    result = cli("directory", "import-hsds", str(tmp_path / "wales.json"),
                 "--into", str(folder / "gbr-probation.yaml"), "--out", str(written))
    assert result.exit_code == 0, result.output
    assert cli("directory", "check", str(written)).exit_code == 0
    again = tmp_path / "again.json"
    shutil.copy(written, folder / "gbr-probation.yaml")
    assert cli("directory", "export-hsds", str(folder), "--out", str(again)).exit_code == 0
    assert json.loads(again.read_text()) == document


def test_import_refuses_a_document_breaking_the_hsds_rules(cli: Any, tmp_path: Path) -> None:
    source = tmp_path / "broken.json"
    source.write_text(json.dumps([{"id": "x", "name": "No description"}]))
    result = cli("directory", "import-hsds", str(source), "--id", "new-place", "--country",
                 "ZZA")
    assert result.exit_code == 1
    assert "/0/description: required: is required" in result.output
    assert "/0/id: format: must be a UUID" in result.output
