"""`casebridge mappings check | test | preview` on the shipped mappings and on broken copies."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import app

ROOT = Path(__file__).resolve().parents[3]
PROBLEM_LINE = re.compile(
    r"^(?P<file>\S+\.yaml):(?P<line>\d+):(?P<column>\d+): (?P<rule>[a-z-]+): ")


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "mappings" / "primero", tmp_path / "primero")
    return tmp_path / "primero"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["mappings", *args])
    return result.exit_code, result.output


def test_check_passes_on_the_shipped_mappings() -> None:
    code, output = run("check", "mappings/")
    assert code == 0, output
    assert "mappings/primero/case-to-referral.in.yaml: ok sha256:" in output
    assert "mappings/primero/referral-to-case.out.yaml: ok sha256:" in output
    assert "mappings/primero/referral-status.yaml: ok sha256:" in output
    assert re.search(r" mapping files checked: no problems; \d+ warnings \(explicit fallbacks "
                     r"and defaults: review them\)$", output.rstrip()), output[-300:]


def test_check_lists_every_fallback_the_shipped_code_lists_declare_where_it_is_used() -> None:
    """No mapping defaults silently: each `unknown: fallback` is a warning naming its list."""
    code, output = run("check", "mappings/")
    warned = {(m["file"], int(m["line"])) for m in re.finditer(
        r"^(?P<file>mappings/\S+):(?P<line>\d+):\d+: warning: fallback: ", output, re.M)}
    used = {(str(path.relative_to(ROOT)), number)
            for path in sorted((ROOT / "mappings").glob("*/*.yaml"))
            for number, line in enumerate(path.read_text().splitlines(), 1)
            if line.split("#")[0].strip() == "unknown: fallback"}
    assert code == 0 and used and warned == used
    for path in (ROOT / "mappings").rglob("*.yaml"):
        text = path.read_text()
        assert "unknown: default" not in text and "unknown: drop" not in text, path


def test_check_without_paths_checks_the_configured_folder() -> None:
    code, output = run("check")
    assert code == 0 and "no problems" in output


def test_test_runs_every_shipped_example() -> None:
    code, output = run("test", "mappings/")
    assert code == 0, output
    ok_lines = [line for line in output.splitlines() if line.startswith("ok   ")]
    summary = output.rstrip().splitlines()[-1]
    assert summary == f"{len(ok_lines)} examples passed, 0 failed" and len(ok_lines) >= 10
    assert 'ok   mappings/primero/referral-status.yaml:' in output


def test_check_reports_each_problem_as_file_line_column_rule_and_exits_1(copy: Path) -> None:
    path = copy / "case-to-referral.in.yaml"
    text = path.read_text()
    text = text.replace("    - to: subject.given_name\n      from: case.name_first\n",
                        "    - to: subject.given_nam\n      form: case.name_first\n", 1)
    path.write_text(text)
    (copy / "codes" / "sex.yaml").write_text(
        (copy / "codes" / "sex.yaml").read_text().replace(
            "  - {native: unknown_4b34795, canonical: unknown}\n", ""))
    code, output = run("check", str(copy))
    assert code == 1
    problems = [m.groupdict() for m in map(PROBLEM_LINE.match, output.splitlines()) if m]
    found = {(Path(p["file"]).name, p["rule"]) for p in problems}
    assert ("case-to-referral.in.yaml", "unknown-field") in found
    assert ("case-to-referral.in.yaml", "unknown-key") in found
    assert ("case-to-referral.in.yaml", "missing-key") in found
    assert ("sex.yaml", "code-list-incomplete") in found
    line = text.splitlines().index("    - to: subject.given_nam") + 1
    assert {(int(p["line"]), p["rule"]) for p in problems
            if p["file"].endswith("in.yaml")} >= {(line, "unknown-field"),
                                                  (line + 1, "unknown-key")}
    assert re.search(r"\d+ problems in 2 files(; \d+ warnings \(.*\))?$", output.rstrip())


def test_test_shows_a_diff_for_an_example_whose_output_differs(copy: Path) -> None:
    path = copy / "referral-status.yaml"
    path.write_text(path.read_text().replace(
        "output: {status: delivered, source_status: in_progress,",
        "output: {status: acknowledged, source_status: in_progress,"))
    code, output = run("test", str(copy))
    assert code == 1
    assert re.search(r'^FAIL \S+status\.yaml:\d+: inbound "the receiver has not answered yet"$',
                     output, re.MULTILINE)
    assert '-  "status": "acknowledged"' in output and '+  "status": "delivered"' in output
    assert output.rstrip().endswith("1 failed")


def test_preview_prints_the_output_and_the_rule_of_each_field(tmp_path: Path) -> None:
    record = tmp_path / "transition.json"
    record.write_text(json.dumps({"referral": {"status": "rejected",
                                               "rejected_reason": "no_capacity",
                                               "responded_at": "2025-03-05T11:00:00Z"}}))
    code, output = run("preview", "mappings/primero/referral-status.yaml", str(record),
                       "--direction", "inbound")
    assert code == 0, output
    document = json.loads(output[:output.index("\n}\n") + 2])
    assert document["reason"] == {"code": "lack_of_capacity", "text": "no_capacity"}
    assert re.search(r"^/status\s+line \d+\s+from referral.status \| code list transition-status$",
                     output, re.MULTILINE)
    assert re.search(r"^/reason/code\s+line \d+\s+from referral.rejected_reason", output,
                     re.MULTILINE)


def test_preview_of_a_record_that_fails_names_the_rule_and_the_unlisted_code(
        tmp_path: Path) -> None:
    record = tmp_path / "transition.json"
    record.write_text(json.dumps({"referral": {"status": "on_hold_pending"}}))
    code, output = run("preview", "mappings/primero/referral-status.yaml", str(record),
                       "--direction", "inbound")
    assert code == 1
    assert "rule 'status' (inbound) failed at /status" in output
    assert "the code 'on_hold_pending' is not in code list 'transition-status'" in output
    record.write_text(json.dumps({"referral": {"status": "On hold for Amani"}}))
    code, output = run("preview", "mappings/primero/referral-status.yaml", str(record),
                       "--direction", "inbound")
    assert code == 1 and "Amani" not in output and "does not look like a code" in output
