"""Running compiled mappings: values, code lists, lists, conditions, and MappingError."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mapping_testkit import MINIMAL_REFERRAL, SEX_CODES, line_of

from gateway.errors import CaseBridgeError, MappingError
from gateway.mapping.compile import CompiledMapping

Write = Callable[..., Path]
Compile = Callable[[Path], CompiledMapping]

RECORD = {"from_agency": "irc-a", "to_agency": "unhcr-b", "case_id": "C-1",
          "first_name": "Test", "sex": "f", "services": [{"service": "education"}],
          "consent_date": "2025-03-01"}


def outbound(rules: str, examples: str = "    - {name: x, input: {}, output: {}}\n") -> str:
    """An outbound mapping of the referral contract with these rules (indented 4)."""
    return ("contract: referral\noutbound:\n  rules:\n" + rules + "  examples:\n" + examples)


def test_the_minimal_mapping_translates_its_example(write_mapping: Write,
                                                    compiled: Compile) -> None:
    mapping = compiled(write_mapping(MINIMAL_REFERRAL))
    example = mapping.mapping.blocks["inbound"].examples[0]
    assert mapping.inbound(example.input) == example.output


def test_an_unmapped_code_raises_mapping_error_naming_file_line_rule_and_path(
        write_mapping: Write, compiled: Compile) -> None:
    path = write_mapping(MINIMAL_REFERRAL)
    mapping = compiled(path)
    record = {**RECORD, "sex": "Zawadi-secret-value"}
    with pytest.raises(MappingError) as caught:
        mapping.inbound(record)
    error = caught.value
    assert isinstance(error, CaseBridgeError) and error.status == 422
    line = line_of(MINIMAL_REFERRAL, "- to: subject.sex")
    assert error.extensions["file"] == mapping.file and mapping.file.endswith(
        "demo/case-to-referral.in.yaml")
    assert error.extensions["line"] == line
    assert error.extensions["rule"] == "subject.sex"
    assert error.extensions["path"] == "/subject/sex"
    assert error.extensions["source"] == "sex"
    assert error.extensions["content_hash"] == mapping.content_hash
    assert f"{mapping.file}:{line}: rule 'subject.sex'" in error.detail
    assert "/subject/sex" in error.detail and "code list 'sex'" in error.detail
    assert "Zawadi-secret-value" not in error.detail
    assert "Zawadi-secret-value" not in json.dumps(error.extensions)


def test_an_error_inside_a_list_names_the_item(write_mapping: Write, compiled: Compile) -> None:
    text = MINIMAL_REFERRAL.replace("          from: service\n",
                                    "          from: service\n          code: service\n"
                                    "          unknown: error\n")
    codes = {"sex": SEX_CODES,
             "service": "codes:\n  - {native: education, canonical: education}\n"}
    mapping = compiled(write_mapping(text, codes=codes))
    record = {**RECORD, "services": [{"service": "education"}, {"service": "secret-thing"}]}
    with pytest.raises(MappingError) as caught:
        mapping.inbound(record)
    assert caught.value.extensions["path"] == "/services/1/type"
    assert caught.value.extensions["rule"] == "services[].type"
    assert caught.value.extensions["source"] == "services[1].service"
    assert "secret-thing" not in caught.value.detail


def test_a_bad_date_names_the_rule_but_not_the_value(write_mapping: Write,
                                                     compiled: Compile) -> None:
    text = MINIMAL_REFERRAL.replace("      from: consent_date\n",
                                    "      from: consent_date\n"
                                    "      transform: {date: {from: DD/MM/YYYY}}\n")
    mapping = compiled(write_mapping(text))
    assert mapping.inbound({**RECORD, "consent_date": "01/03/2025"})["consent"]["date"] == (
        "2025-03-01")
    with pytest.raises(MappingError) as caught:
        mapping.inbound({**RECORD, "consent_date": "31/02/2019"})
    assert caught.value.extensions["path"] == "/consent/date"
    assert "not a date in DD/MM/YYYY format" in caught.value.detail
    assert "31/02/2019" not in caught.value.detail


def test_a_required_value_that_is_missing_raises(write_mapping: Write,
                                                 compiled: Compile) -> None:
    text = MINIMAL_REFERRAL.replace("      from: first_name\n",
                                    "      from: first_name\n      required: true\n")
    mapping = compiled(write_mapping(text))
    with pytest.raises(MappingError, match="a required value is missing"):
        mapping.inbound({**RECORD, "first_name": ""})


def test_translating_never_changes_the_input_nor_shares_constants(
        write_mapping: Write, compiled: Compile) -> None:
    mapping = compiled(write_mapping(MINIMAL_REFERRAL))
    record = copy.deepcopy(RECORD)
    first = mapping.inbound(record)
    first["consent"]["scope"]["purposes"].append("transfer")
    assert record == RECORD
    assert mapping.inbound(record)["consent"]["scope"]["purposes"] == ["referral"]


@pytest.mark.parametrize(("fallback", "expected"), [
    (None, None), ("  outbound: U\n", {"sex": "U"}), ("  outbound: drop\n", {}),
])
def test_an_unlisted_code_is_an_error_naming_it_unless_the_list_declares_a_fallback(
        write_mapping: Write, compiled: Compile, fallback: str | None,
        expected: dict[str, Any] | None) -> None:
    policy = "error" if fallback is None else "fallback"
    text = outbound(f"    - to: sex\n      from: subject.sex\n      code: native-sex\n"
                    f"      unknown: {policy}\n")
    declared = f"fallback:\n{fallback}  why: sandbox rules\n" if fallback else ""
    codes = {"native-sex": declared + "codes:\n  - {native: F, canonical: female}\n"
                                      "  - {native: M, canonical: male}\n"
                                      "unmapped: [other, unknown]\n"}
    mapping = compiled(write_mapping(text, "x.out.yaml", codes=codes))
    assert mapping.outbound({"subject": {"sex": "female"}}) == {"sex": "F"}
    if expected is not None:
        assert mapping.outbound({"subject": {"sex": "other"}}) == expected
        return
    with pytest.raises(MappingError) as raised:
        mapping.outbound({"subject": {"sex": "other"}})
    assert "the code 'other' is not in code list 'native-sex'" in raised.value.detail
    assert raised.value.extensions["path"] == "/sex"


def test_keep_passes_an_unlisted_code_on(write_mapping: Write, compiled: Compile) -> None:
    text = outbound("    - to: sex\n      from: subject.sex\n      code: native-sex\n"
                    "      unknown: keep\n")
    codes = {"native-sex": "codes:\n  - {native: F, canonical: female}\n"
                           "unmapped: [male, other, unknown]\n"}
    mapping = compiled(write_mapping(text, "x.out.yaml", codes=codes))
    assert mapping.outbound({"subject": {"sex": "x"}}) == {"sex": "x"}


@pytest.mark.parametrize("value", ["Amani", "Amani Testcase", "line\nbreak", "x" * 41, 1.5,
                                   "secret-thing"])
def test_an_unlisted_value_that_is_not_code_shaped_is_never_shown(
        write_mapping: Write, compiled: Compile, value: Any) -> None:
    text = outbound("    - to: sex\n      from: subject.sex\n      code: native-sex\n"
                    "      unknown: error\n")
    codes = {"native-sex": "codes:\n  - {native: F, canonical: female}\n"
                           "unmapped: [male, other, unknown]\n"}
    mapping = compiled(write_mapping(text, "x.out.yaml", codes=codes))
    with pytest.raises(MappingError) as raised:
        mapping.outbound({"subject": {"sex": value}})
    assert str(value) not in raised.value.detail and "not in code list" in raised.value.detail


def test_a_number_in_a_code_list_matches_the_same_digits_sent_as_text(
        write_mapping: Write, compiled: Compile) -> None:
    codes = {"sex": "contract: codes/sex\ncodes:\n  - {native: 125080000, canonical: female}\n"
                    "  - {native: 125080001, canonical: male}\n"
                    "  - {native: 125080002, canonical: other}\n"
                    "  - {native: 125080003, canonical: unknown}\n"}
    mapping = compiled(write_mapping(MINIMAL_REFERRAL, codes=codes))
    assert mapping.inbound({**RECORD, "sex": "125080001"})["subject"]["sex"] == "male"
    assert mapping.inbound({**RECORD, "sex": 125080000})["subject"]["sex"] == "female"


def test_lists_selectors_conditions_and_transforms(write_mapping: Write,
                                                  compiled: Compile) -> None:
    text = outbound("""\
    - to: ids.crn
      from: subject.identifiers[system=ndelius_crn].value
    - to: names.full
      from: [subject.given_name, subject.middle_name, subject.family_name]
      transform: {join: ' '}
    - to: names.upper_family
      from: subject.family_name
      transform: [trim, {case: upper}]
    - to: minor
      value: Y
      when: {path: subject.is_minor, equals: true}
    - to: minor
      value: N
      when: {path: subject.is_minor, not_equals: true}
    - to: first_service
      from: services[0].type
    - to: urgent
      each: services
      where: {path: urgency, in: [urgent, emergency]}
      rules:
        - {to: what, from: type}
        - {to: by, from: due_date, transform: {date: {to: DD/MM/YYYY}}}
        - to: crn
          from: $.subject.identifiers[system=ndelius_crn].value
    - to: wants_referral
      value: true
      when: {path: consent.scope.purposes, contains: referral}
""")
    mapping = compiled(write_mapping(text, "x.out.yaml"))
    document = {
        "subject": {"identifiers": [{"system": "primero_case", "value": "P-1"},
                                    {"system": "ndelius_crn", "value": "X123456"}],
                    "given_name": "Sam", "family_name": " Testcase ", "is_minor": False},
        "services": [{"type": "education", "urgency": "routine"},
                     {"type": "accommodation", "urgency": "urgent", "due_date": "2025-03-17"}],
        "consent": {"scope": {"purposes": ["referral"]}},
    }
    assert mapping.outbound(document) == {
        "ids": {"crn": "X123456"},
        "names": {"full": "Sam Testcase", "upper_family": "TESTCASE"},
        "minor": "N",
        "first_service": "education",
        "urgent": [{"what": "accommodation", "by": "17/03/2025", "crn": "X123456"}],
        "wants_referral": True,
    }


def test_field_names_and_values_that_look_like_code_are_only_data(
        write_mapping: Write, compiled: Compile) -> None:
    text = outbound("""\
    - to: '["x'' + __import__(''os'').getcwd() + ''\\n"]'
      from: subject.given_name
    - to: '["a.b"]'
      value: "'); import os; ('"
""")
    mapping = compiled(write_mapping(text, "x.out.yaml"))
    out = mapping.outbound({"subject": {"given_name": "Sam"}})
    assert out == {"x' + __import__('os').getcwd() + '\\n": "Sam", "a.b": "'); import os; ('"}


def test_a_record_that_is_not_an_object_is_refused(write_mapping: Write,
                                                   compiled: Compile) -> None:
    mapping = compiled(write_mapping(MINIMAL_REFERRAL))
    with pytest.raises(MappingError, match="not a JSON object"):
        mapping.inbound([RECORD])  # type: ignore[arg-type]
    with pytest.raises(MappingError, match="has no outbound rules"):
        mapping.outbound({})
