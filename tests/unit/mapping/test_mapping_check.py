"""`casebridge mappings check` catches each kind of mistake, at the file, line and rule broken.

Each test writes a broken mapping file into tmp_path and asserts the report names the
file, the line (and column where it matters) and the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from mapping_testkit import MINIMAL_REFERRAL, SEX_CODES, line_of, only

from gateway.mapping.check import Checked

Check = Callable[[Path], Checked]
Write = Callable[..., Path]


def replace(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_the_minimal_mapping_has_no_problems(write_mapping: Write, check: Check) -> None:
    checked = check(write_mapping(MINIMAL_REFERRAL))
    assert checked.problems == []
    assert checked.ok and checked.content_hash.startswith("sha256:")


def test_a_yaml_syntax_error_is_reported_where_the_parser_stopped(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "      value: verbal", "      value: [verbal")
    path = write_mapping(text)
    [problem] = check(path).problems
    assert problem.rule == "yaml-syntax"
    assert problem.file.endswith("demo/case-to-referral.in.yaml")
    assert problem.line in (line_of(text, "[verbal"), line_of(text, "[verbal") + 1)


def test_an_unknown_key_in_a_rule_is_reported_with_a_suggestion(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "      from: first_name", "      form: first_name")
    path = write_mapping(text)
    checked = check(path)
    [problem] = only(checked.problems, "unknown-key")
    assert (problem.line, problem.column) == (line_of(text, "form: first_name"), 7)
    assert "'form'" in problem.message and "did you mean 'from'" in problem.message


def test_an_unknown_top_level_key_is_reported(write_mapping: Write, check: Check) -> None:
    text = "contarct: referral\n" + MINIMAL_REFERRAL
    path = write_mapping(text)
    [problem] = check(path).problems
    assert (problem.rule, problem.line, problem.column) == ("unknown-key", 1, 1)
    assert problem.file.endswith("demo/case-to-referral.in.yaml") and "'contract'" in str(problem)


def test_an_unknown_canonical_field_behind_a_ref_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "- to: subject.given_name", "- to: subject.given_nam")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "unknown-field")
    assert problem.line == line_of(text, "subject.given_nam")
    assert "subject has no 'given_nam'" in problem.message
    assert "did you mean 'given_name'" in problem.message


def test_an_unknown_field_of_list_items_is_reported(write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "        - to: type", "        - to: typ")
    checked = check(write_mapping(text))
    assert [p.line for p in only(checked.problems, "unknown-field")] == [line_of(text, "to: typ")]


def test_a_list_selector_on_a_field_the_items_lack_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "identifiers[system=primero_case]",
                   "identifiers[sytem=primero_case]")
    checked = check(write_mapping(text))
    assert [p.line for p in only(checked.problems, "unknown-field")] == [
        line_of(text, "sytem=primero_case")]


def test_a_list_selector_with_a_code_the_contract_lacks_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "identifiers[system=primero_case]",
                   "identifiers[system=primero]")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "type-mismatch")
    assert problem.line == line_of(text, "system=primero]")
    assert "is not one of the codes" in problem.message


def test_an_outbound_rule_reading_an_unknown_canonical_field_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = """\
    contract: referral
    outbound:
      rules:
        - to: name_first
          from: subject.first_name
      examples:
        - {name: x, input: {}, output: {}}
    """
    checked = check(write_mapping(text, "referral-to-case.out.yaml"))
    assert [(p.line, p.rule) for p in checked.problems] == [(5, "unknown-field")]


def test_a_target_written_twice_is_reported_at_the_second_rule(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "    - to: consent.form\n      value: verbal\n",
                   "    - to: consent.form\n      value: verbal\n"
                   "    - to: consent.form\n      from: consent_form\n")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "written-twice")
    assert problem.line == line_of(text, "- to: consent.form", occurrence=2)
    assert f"also at line {line_of(text, '- to: consent.form')}" in problem.message


def test_a_field_inside_a_target_written_whole_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "    - to: consent.form\n",
                   "    - to: consent.scope\n      from: scope\n    - to: consent.form\n")
    checked = check(write_mapping(text))
    assert [p.line for p in only(checked.problems, "written-twice")] == [
        line_of(text, "- to: consent.scope.purposes"),
        line_of(text, "- to: consent.scope.receivers"),
        line_of(text, "- to: consent.scope.data_categories")]


def test_rules_whose_when_exclude_each_other_may_write_one_target(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "    - to: consent.form\n      value: verbal\n",
                   "    - to: consent.form\n      value: verbal\n"
                   "      when: {path: signed, not_equals: true}\n"
                   "    - to: consent.form\n      value: written\n"
                   "      when: {path: signed, equals: true}\n")
    assert check(write_mapping(text)).problems == []


def test_a_required_canonical_field_never_written_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "    - to: consent.form\n      value: verbal\n", "")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "required-missing")
    assert "'consent.form'" in problem.message
    assert problem.line == line_of(text, "- to: consent.given_by")


def test_a_required_top_level_field_never_written_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "    - to: kind\n      value: referral\n", "")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "required-missing")
    assert "'kind'" in problem.message and problem.line == line_of(text, "rules:")


def test_a_required_field_of_list_items_never_written_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "        - to: type\n          from: service\n",
                   "        - to: notes\n          from: service\n")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "required-missing")
    assert "'services[].type'" in problem.message
    assert problem.line == line_of(text, "- to: services")


def test_a_code_list_missing_codes_of_the_contract_is_reported_in_the_code_list(
        write_mapping: Write, check: Check) -> None:
    codes = SEX_CODES.replace("  - {native: u, canonical: unknown}\n", "")
    path = write_mapping(MINIMAL_REFERRAL, codes={"sex": codes})
    [problem] = only(check(path).problems, "code-list-incomplete")
    assert problem.file.endswith("demo/codes/sex.yaml")
    assert problem.line == line_of(codes, "contract: codes/sex")
    assert "misses codes of codes/sex: unknown" in problem.message


def test_a_code_list_with_a_code_the_contract_lacks_is_reported(
        write_mapping: Write, check: Check) -> None:
    codes = SEX_CODES.replace("canonical: other}", "canonical: diverse}")
    path = write_mapping(MINIMAL_REFERRAL, codes={"sex": codes})
    problems = check(path).problems
    assert [(p.line, p.rule) for p in only(problems, "unknown-code")] == [
        (line_of(codes, "diverse"), "unknown-code")]


def test_a_code_list_without_contract_is_checked_against_the_field_it_fills(
        write_mapping: Write, check: Check) -> None:
    codes = "codes:\n  - {native: f, canonical: female}\n  - {native: x, canonical: woman}\n"
    checked = check(write_mapping(MINIMAL_REFERRAL, codes={"sex": codes}))
    [problem] = only(checked.problems, "unknown-code")
    assert problem.line == line_of(MINIMAL_REFERRAL, "code: sex")
    assert "'woman' is not a code of codes/sex" in problem.message


STATUS = """\
contract: status-event
codes:
  status:
    contract: codes/referral-status
    codes:
      - {native: in_progress, canonical: delivered}
      - {native: pending, canonical: delivered}
      - {native: accepted, canonical: accepted}
    unmapped: [submitted, acknowledged, in_progress, challenged, completed, rejected,
               withdrawn, failed]
inbound:
  rules:
    - to: status
      from: status
      code: status
      unknown: error
      reversible: true
  examples:
    - {name: x, input: {status: accepted}, output: {status: accepted}}
outbound:
  rules:
    - to: status
      from: status
      code: status
      unknown: error
  examples:
    - {name: x, input: {status: accepted}, output: {status: accepted}}
"""


def test_a_status_that_does_not_map_back_to_itself_is_reported(
        write_mapping: Write, check: Check) -> None:
    path = write_mapping(STATUS, "status.yaml")
    [problem] = check(path).problems
    assert (problem.rule, problem.line) == ("round-trip", line_of(STATUS, "native: pending"))
    assert "'pending' maps to 'delivered', which maps back to 'in_progress'" in problem.message


def test_a_status_marked_one_way_is_accepted(write_mapping: Write, check: Check) -> None:
    text = STATUS.replace("{native: pending, canonical: delivered}",
                          "{native: pending, canonical: delivered, only: inbound}")
    assert check(write_mapping(text, "status.yaml")).problems == []


def test_a_constant_of_the_wrong_type_is_reported(write_mapping: Write, check: Check) -> None:
    text = MINIMAL_REFERRAL.replace("    - to: kind\n", "    - to: subject.is_minor\n"
                                    "      value: 'yes'\n    - to: kind\n")
    checked = check(write_mapping(text))
    [problem] = only(checked.problems, "type-mismatch")
    assert problem.line == line_of(text, "value: 'yes'")
    assert "must be of type boolean" in problem.message


def test_a_constant_that_is_not_a_code_is_reported(write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "value: referral", "value: referal")
    [problem] = only(check(write_mapping(text)).problems, "type-mismatch")
    assert problem.line == line_of(text, "value: referal")
    assert "is not one of the codes referral, transfer" in problem.message


def test_a_transform_giving_the_wrong_type_is_reported(write_mapping: Write,
                                                       check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "      from: first_name\n",
                   "      from: first_name\n      transform: age\n")
    [problem] = only(check(write_mapping(text)).problems, "type-mismatch")
    assert problem.line == line_of(text, "- to: subject.given_name")
    assert "takes string but the rule gives integer" in problem.message


def test_a_transform_fed_the_wrong_type_is_reported(write_mapping: Write, check: Check) -> None:
    text = """\
    contract: referral
    outbound:
      rules:
        - to: age
          from: subject.is_minor
          transform: [trim]
      examples:
        - {name: x, input: {}, output: {}}
    """
    [problem] = check(write_mapping(text, "x.out.yaml")).problems
    assert (problem.rule, problem.line, problem.column) == ("type-mismatch", 6, 19)
    assert "trim takes string but gets boolean" in problem.message


@pytest.mark.parametrize(("transform", "message"), [
    ("{case: sentence}", "case: takes upper, lower or title"),
    ("{date: {from: hh:mm}}", "date: format 'hh:mm' has an unknown letter 'h'"),
    ("{date: {from: DD.MM.YY}}", "date: format 'DD.MM.YY' has an unknown letter 'Y'"),
    ("{date: {from: '.'}}", "date: format '.' has none of YYYY"),
    ("{date: {from: DD/MM/YYYY, into: iso}}", "date: has no argument 'into'"),
    ("{split: {separator: ' '}}", "split: needs 'part'"),
    ("{less_than: eighteen}", "less_than: takes a number"),
    ("trim_all", "'trim_all' is not a transform (did you mean 'trim'?)"),
    ("{age: {at: 'a..b'}}", "'at' must be 'today' or a field path"),
])
def test_bad_transform_arguments_are_reported(write_mapping: Write, check: Check,
                                              transform: str, message: str) -> None:
    text = replace(MINIMAL_REFERRAL, "      from: consent_date\n",
                   f"      from: consent_date\n      transform: [{transform}]\n")
    [problem] = only(check(write_mapping(text)).problems, "bad-transform")
    assert problem.line == line_of(text, "transform: [")
    assert message in problem.message


def test_a_code_lookup_must_say_what_to_do_with_an_unknown_code(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "      unknown: error\n", "")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("missing-key", line_of(text, "code: sex"))


@pytest.mark.parametrize("policy", ["default", "drop"])
def test_a_silent_unknown_code_policy_is_refused_with_the_way_out(
        write_mapping: Write, check: Check, policy: str) -> None:
    text = replace(MINIMAL_REFERRAL, "unknown: error", f"unknown: {policy}")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("silent-default", line_of(text, f"unknown: {policy}"))
    assert "declare a 'fallback' (with 'why') in code list 'sex'" in problem.message


def test_unknown_fallback_needs_the_code_list_to_declare_one(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "unknown: error", "unknown: fallback")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("missing-key", line_of(text, "unknown: fallback"))
    assert "declares no inbound fallback" in problem.message


def test_a_fallback_must_say_why_and_be_a_code_of_the_field(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "unknown: error", "unknown: fallback")
    codes = SEX_CODES.replace("codes:\n", "fallback:\n  inbound: nonbinary\ncodes:\n")
    problems = check(write_mapping(text, codes={"sex": codes})).problems
    assert {p.rule for p in problems} == {"missing-key", "unknown-code"}
    assert any("'why'" in p.message for p in problems if p.rule == "missing-key")


def test_every_fallback_and_default_is_listed_as_a_warning_not_a_problem(
        write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "unknown: error", "unknown: fallback\n      default: unknown")
    codes = SEX_CODES.replace(
        "codes:\n", "fallback:\n  inbound: unknown\n  why: >\n    the office records\n"
                    "    sex its own way\ncodes:\n")
    checked = check(write_mapping(text, codes={"sex": codes}))
    assert checked.ok
    fallback, default = sorted(checked.warnings, key=lambda w: w.rule)[::-1]
    assert (fallback.rule, fallback.line) == ("fallback", line_of(text, "unknown: fallback"))
    assert fallback.message == ("subject.sex: an inbound code not in code list 'sex' becomes "
                                "'unknown' (the office records sex its own way)")
    assert (default.rule, default.line) == ("default", line_of(text, "default: unknown"))
    assert "when sex is missing, 'unknown' is used" in default.message


def test_an_unknown_code_list_is_reported(write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "code: sex", "code: gender")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("unknown-code-list", line_of(text, "code: gender"))


def test_a_reversible_rule_must_not_lose_information(write_mapping: Write,
                                                     check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "      from: first_name\n",
                   "      from: first_name\n      transform: trim\n      reversible: true\n")
    rules = {p.rule: p.line for p in check(write_mapping(text)).problems}
    assert rules == {"reversible": line_of(text, "reversible: true")}


def test_a_reversible_rule_needs_the_way_back(write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "      from: first_name\n",
                   "      from: first_name\n      reversible: true\n")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("reversible", line_of(text, "reversible: true"))
    assert "no mapping going back" in problem.message


def test_a_reversible_rule_the_way_back_does_not_undo_is_reported(
        write_mapping: Write, check: Check) -> None:
    text = "reverse: back.out.yaml\n" + replace(
        MINIMAL_REFERRAL, "      from: first_name\n", "      from: first_name\n"
        "      reversible: true\n")
    back = """\
    contract: referral
    outbound:
      rules:
        - {to: first_name, from: subject.family_name}
      examples:
        - {name: x, input: {}, output: {}}
    """
    write_mapping(back, "back.out.yaml")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("reversible", line_of(text, "reversible: true"))
    assert "back.out.yaml has no rule between first_name and subject.given_name" in (
        problem.message)


def test_rules_without_examples_are_reported(write_mapping: Write, check: Check) -> None:
    text = MINIMAL_REFERRAL[:MINIMAL_REFERRAL.index("  examples:")]
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("no-examples", 3)


def test_an_unknown_contract_is_reported(write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "contract: referral", "contract: referal")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line, problem.column) == ("unknown-contract", 1, 11)


def test_a_path_that_is_not_a_path_is_reported(write_mapping: Write, check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "from: first_name", "from: first..name")
    [problem] = check(write_mapping(text)).problems
    assert (problem.rule, problem.line) == ("bad-path", line_of(text, "first..name"))


def test_every_problem_of_a_file_is_reported_at_once(write_mapping: Write,
                                                     check: Check) -> None:
    text = replace(MINIMAL_REFERRAL, "from: first_name", "form: first_name")
    text = replace(text, "value: verbal", "value: spoken")
    text = replace(text, "code: sex", "code: gender")
    rules = sorted(p.rule for p in check(write_mapping(text)).problems)
    assert rules == ["missing-key", "type-mismatch", "unknown-code-list", "unknown-key"]
