"""HSDS 3 export and import: the round trip, the HSDS field rules, foreign HSDS data."""

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway import ROOT
from gateway.deadlines.calendars import load_calendars
from gateway.directory.files import CODE_LISTS, check_directory_file, directory_files
from gateway.directory.hsds import (
    export_hsds,
    hsds_id,
    hsds_problems,
    import_hsds,
    schema_problems,
)
from gateway.directory.model import Availability, Directory, Operation
from gateway.directory.registry import code_lists
from testland import CONTRACTS, directory

LABELS = {name: CONTRACTS.labels(name) for name in CODE_LISTS}
CALENDARS = load_calendars(ROOT / "calendars")[0]
NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def shipped() -> Directory:
    operations = []
    for path in directory_files(ROOT / "directory"):
        operation, problems = check_directory_file(path, codes=code_lists(CONTRACTS))
        assert problems == []
        operations.append(operation)
    return Directory.merge(operations)


def exported(land: Directory) -> list[dict[str, Any]]:
    return export_hsds(land, labels=LABELS, calendars=CALENDARS)


def of_operation(document: list[dict[str, Any]], operation: Operation) -> list[dict[str, Any]]:
    ours = {hsds_id("organization", o.id) for o in operation.organizations}
    return [o for o in document if o["id"] in ours]


def test_the_shipped_directory_exports_within_the_hsds_rules_and_imports_back_whole() -> None:
    land = shipped()
    document = exported(land)
    assert hsds_problems(document) == []
    assert len(document) == len(land.organizations)
    for operation in land.operations:
        emptied = replace(operation, organizations=())
        back = import_hsds(of_operation(document, operation), into=emptied,
                           service_types=CONTRACTS.codes("service-type"), now=NOW)
        assert back.notes == []
        assert back.operation == replace(operation, file="", content_hash="")


def test_the_export_speaks_hsds(tmp_path: Path) -> None:
    land = directory(tmp_path)
    document = exported(land)
    two = next(o for o in document if o["name"] == "Agency Two")
    cmr = next(s for s in two["services"] if s["name"] == "Clinical care for survivors")
    assert cmr["id"] == hsds_id("service", "two-cmr") and cmr["status"] == "active"
    terms = {(a["link_type"], a["taxonomy_term"]["code"]) for a in cmr["attributes"]}
    assert {("service_type", "clinical_management_of_rape"), ("eligibility", "female"),
            ("eligibility", "gbv_survivor"), ("availability", "accepting")} <= terms
    assert [a["name"] for a in cmr["service_areas"]] == ["Testland"]
    one = next(o for o in document if o["name"] == "Agency One")
    shelter = next(s for s in one["services"] if s["name"] == "Shelter by the lake")
    assert shelter["status"] == "temporarily closed"
    clinic = next(o for o in document if o["name"] == "Clinic Three")
    medical = clinic["services"][0]
    assert medical["minimum_age"] == 18
    assert medical["schedules"][0].items() >= {"byday": "MO,TU,WE,TH,FR", "opens_at": "08:00",
                                               "closes_at": "16:00", "freq": "WEEKLY"}.items()
    assert medical["service_at_locations"][0]["location_id"] == clinic["locations"][0]["id"]
    assert clinic["locations"][0]["addresses"][0]["address_1"] == "Row 4, Camp A"
    # an export is the same every time: ids come from our ids, not from chance
    assert exported(land) == document


@pytest.mark.parametrize("change, pointer, rule", [
    (lambda d: d[0].pop("description"), "/0/description", "required"),
    (lambda d: d[0].update(id="not-a-uuid"), "/0/id", "format"),
    (lambda d: d[0]["services"][0].update(status="open"), "/0/services/0/status", "enum"),
    (lambda d: d[0]["services"][0].update(minimum_age="12"), "/0/services/0/minimum_age",
     "type"),
    (lambda d: d[0]["services"][0].update(last_modified="2026-12-01"),
     "/0/services/0/last_modified", "format"),
    (lambda d: d[0]["services"][0]["attributes"][0]["taxonomy_term"].pop("name"),
     "/0/services/0/attributes/0/taxonomy_term/name", "required"),
    (lambda d: d[0]["locations"][0].update(location_type="office"),
     "/0/locations/0/location_type", "enum"),
])
def test_a_document_breaking_an_hsds_rule_is_reported_by_pointer(
        tmp_path: Path, change: Any, pointer: str, rule: str) -> None:
    document = exported(directory(tmp_path))
    document = [o for o in document if o["name"] == "Clinic Three"]
    change(document)
    assert [(p.pointer, p.rule) for p in hsds_problems(document)] == [(pointer, rule)]


def test_hsds_from_elsewhere_imports_with_notes_for_what_needs_a_person(
        tmp_path: Path) -> None:
    foreign = [{
        "id": "3f7b145d-84af-42d7-8fae-eaca714b02b2", "name": "Riverside Legal Aid",
        "description": "Free legal advice.",
        "services": [
            {"id": "ac148810-d857-441c-9679-408f346de14b", "name": "Legal advice clinic",
             "status": "active", "minimum_age": 16, "last_modified": "2026-11-01T10:00:00Z",
             "service_areas": [{"id": "1f2df32c-bf08-4b8e-bd6f-e834014b19bc",
                                "name": "Lake district"}],
             "contacts": [{"id": "d9d5e0f5-d3ce-4f73-9a2f-4dd0ecc6c610",
                           "department": "Front desk", "email": "desk@riverside.example"}]},
            {"id": "24682fa0-3eda-4afc-a026-84a21c7a882e", "name": "Mobile clinic",
             "status": "temporarily closed"},
            {"id": "0bc248fa-dc27-4650-9ba4-8f1a24ef16a2", "name": "Old clinic",
             "status": "defunct"}]}]
    assert hsds_problems(foreign) == []
    land = directory(tmp_path)
    into = land.operations[0]
    imported = import_hsds(foreign, into=into, service_types=CONTRACTS.codes("service-type"),
                           now=NOW)
    riverside = imported.operation.organizations[-1]
    assert riverside.id == "riverside-legal-aid"
    advice, mobile = riverside.services
    assert (advice.id, advice.type, advice.areas, advice.eligibility.min_age) == (
        "legal-advice-clinic", "other", ("lake",), 16)
    assert advice.availability.status is Availability.ACCEPTING
    assert advice.availability.updated_at == datetime(2026, 11, 1, 10, tzinfo=UTC)
    assert advice.contact.team == "Front desk"
    assert (mobile.availability.status, mobile.availability.updated_at,
            mobile.areas) == (Availability.SUSPENDED, NOW, ("zza",))
    assert imported.notes == [
        "service 'legal-advice-clinic' has no CaseBridge service type: written as 'other', "
        "set its type by hand",
        "service 'mobile-clinic' has no CaseBridge service type: written as 'other', set its "
        "type by hand",
        "service 'mobile-clinic' names no service area: written as offered in the whole of "
        "Testland",
        "service 'Old clinic' is defunct in the data: left out"]
    # the organisations already in the file stay
    assert [o.id for o in imported.operation.organizations[:3]] == [
        "agency-one", "agency-two", "clinic-three"]


def test_the_export_can_be_checked_against_hsds_schema_files(tmp_path: Path) -> None:
    """The plumbing of --schema: the specification's files are not in this repository, so
    two small schema files of the same shape (relative $ref) stand in for them."""
    (tmp_path / "organization.json").write_text(json.dumps({
        "type": "object", "required": ["id", "name"],
        "properties": {"id": {"type": "string", "format": "uuid"},
                       "phones": {"type": "array", "items": {"$ref": "phone.json"}}}}))
    (tmp_path / "phone.json").write_text(json.dumps({
        "type": "object", "required": ["number"]}))
    (tmp_path / "service.json").write_text(json.dumps({
        "type": "object", "properties": {"status": {"enum": ["active"]}}}))
    document = [{"id": "not-a-uuid", "name": "x", "phones": [{"id": "1"}],
                 "services": [{"status": "temporarily closed"}]}]
    found = [(p.pointer, p.rule) for p in schema_problems(document, tmp_path)]
    assert sorted(found) == [("/0/id", "format"), ("/0/phones/0", "required"),
                             ("/0/services/0/status", "enum")]
