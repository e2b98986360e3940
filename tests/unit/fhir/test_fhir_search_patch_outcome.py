"""The small parts of the FHIR face: search parameters and subscription criteria, JSON
Patch, and OperationOutcome with FHIRPath expressions from JSON Pointers."""

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.errors import ConsentProblem, FieldError, MalformedRequest, ValidationProblem
from gateway.fhir import patch, search
from gateway.fhir.outcome import POINTER_EXTENSION, fhirpath, outcome_of
from gateway.store.models import Referral

REFERRAL_ID = "7d0c6f2e-8b1a-4f5e-9c7d-2a1b0c9d8e7f"


def errors_of(raised: pytest.ExceptionInfo[Any]) -> list[tuple[str, str]]:
    return [(e["pointer"], e["rule"]) for e in raised.value.extensions["errors"]]


def test_search_parameters_read_references_statuses_ids_and_instants() -> None:
    query = search.parse([("owner", "Organization/primero-ssd,clinic-juba"),
                          ("status", "accepted"), ("_id", REFERRAL_ID),
                          ("_lastUpdated", "gt2026-11-20T08:00:00Z"),
                          ("_lastUpdated", "le2026-11-21")])
    assert query.owners == {"primero-ssd", "clinic-juba"}
    assert (query.statuses, query.ids) == ({"accepted"}, {REFERRAL_ID})
    assert query.updated == (("gt", datetime(2026, 11, 20, 8, tzinfo=UTC)),
                             ("le", datetime(2026, 11, 21, tzinfo=UTC)))
    assert len(query.conditions(lambda statuses: ["accepted"])) == 5


def test_every_bad_search_parameter_is_named() -> None:
    with pytest.raises(MalformedRequest) as raised:
        search.parse([("subject", "Patient/1"), ("status", "done"), ("owner", "Org/UPPER"),
                      ("_lastUpdated", "2026-11-20"), ("_id", "42")])
    assert errors_of(raised) == [("/subject", "unknown-parameter"), ("/status", "format"),
                                 ("/owner", "format"), ("/_lastUpdated", "format"),
                                 ("/_id", "format")]


@pytest.mark.parametrize(("criteria", "matched"), [
    ("Task", True), ("Task?owner=Organization/primero-ssd", True),
    ("Task?requester=primero-ssd", False), ("Task?status=completed,failed", True),
    ("Task?status=accepted", False), (f"Task?_id={REFERRAL_ID}", True),
])
def test_subscription_criteria_choose_the_tasks_notified(criteria: str, matched: bool) -> None:
    referral = Referral(id=REFERRAL_ID, sender_id="clinic-juba", receiver_id="primero-ssd")
    assert search.parse_criteria(criteria).matches(referral, "completed") is matched


@pytest.mark.parametrize("criteria", ["Patient", "Task?_lastUpdated=gt2026-01-01",
                                      "Task?owner", "Task?status=nope"])
def test_criteria_that_cannot_be_served_are_refused_at_criteria(criteria: str) -> None:
    with pytest.raises(MalformedRequest) as raised:
        search.parse_criteria(criteria)
    assert {pointer for pointer, _ in errors_of(raised)} == {"/criteria"}


TASK = {"resourceType": "Task", "status": "received", "note": [{"text": "a"}]}


def test_json_patch_applies_on_a_copy_and_tests_first() -> None:
    patched = patch.apply(TASK, [
        {"op": "test", "path": "/status", "value": "received"},
        {"op": "replace", "path": "/status", "value": "accepted"},
        {"op": "add", "path": "/note/-", "value": {"text": "b"}},
        {"op": "add", "path": "/statusReason", "value": {"text": "c"}},
        {"op": "remove", "path": "/statusReason"}])
    assert patched == {**TASK, "status": "accepted", "note": [{"text": "a"}, {"text": "b"}]}
    assert TASK["status"] == "received"


@pytest.mark.parametrize(("operations", "pointer", "rule"), [
    ({"op": "replace"}, "", "json-patch"),
    ([{"op": "move", "from": "/a", "path": "/b"}], "/0/op", "json-patch-op"),
    ([{"op": "replace", "path": "status", "value": "x"}], "/0/path", "json-pointer"),
    ([{"op": "replace", "path": "/nothing", "value": "x"}], "/0/path", "json-pointer"),
    ([{"op": "add", "path": "/note/5", "value": {}}], "/0/path", "json-pointer"),
    ([{"op": "replace", "path": "/status"}], "/0/value", "required"),
    ([{"op": "test", "path": "/status", "value": "requested"}], "/0/value", "json-patch-test"),
])
def test_a_patch_that_cannot_apply_names_the_operation(operations: Any, pointer: str,
                                                      rule: str) -> None:
    with pytest.raises((MalformedRequest, ValidationProblem)) as raised:
        patch.apply(TASK, operations)
    assert errors_of(raised) == [(pointer, rule)]


def test_a_json_pointer_reads_as_fhirpath() -> None:
    assert fhirpath("Bundle", "/entry/2/resource/name/0/given/1") == \
        "Bundle.entry[2].resource.name[0].given[1]"
    assert fhirpath("Task", "/a~1b/-") == "Task.a/b"


def test_an_outcome_names_each_field_by_fhirpath_and_pointer() -> None:
    refusal = ConsentProblem("The consent does not cover it.", [
        FieldError("/entry/3/resource/provision/actor", "consent-receiver", "not this one")],
        title="Consent does not cover this referral")
    outcome = outcome_of(refusal, root="Bundle")
    head, issue = outcome.issue
    assert (head.severity, head.code, head.diagnostics) == (
        "error", "business-rule", "The consent does not cover it.")
    assert issue.expression == ["Bundle.entry[3].resource.provision.actor"]
    assert issue.extension[0].url == POINTER_EXTENSION
    assert issue.extension[0].valueString == "/entry/3/resource/provision/actor"
    assert [c.code for c in issue.details.coding] == ["consent-required", "consent-receiver"]
    query = outcome_of(MalformedRequest("bad", errors=[FieldError("/_count", "x", "y")]))
    assert query.issue[1].expression is None
