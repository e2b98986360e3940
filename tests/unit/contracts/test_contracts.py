"""Checks of the canonical contracts (contracts/*.json, contracts/codes/*.json).

- every schema is a valid draft 2020-12 schema with a versioned ``$id``;
- every ``$ref`` resolves in a registry built from all schema files;
- every object is closed, every string bounded, every property described;
- personal and case-content fields carry an ``x-category`` from the data-category list;
- every code list labels each of its codes, and docs/contracts.md lists every code;
- each example under contracts/examples/<schema>/ is valid (``valid-*.json``) or fails
  for the rule its name says (``invalid-<rule>-<what>.json``, ``<rule>`` being the
  JSON Schema keyword that must fail) and for nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = ROOT / "contracts"
CODES = CONTRACTS / "codes"
EXAMPLES = CONTRACTS / "examples"
DOCS = ROOT / "docs" / "contracts.md"

BASE = "https://casebridge.org/contracts/v1/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

SCHEMA_FILES = sorted(CONTRACTS.glob("*.json")) + sorted(CODES.glob("*.json"))
CODE_FILES = sorted(CODES.glob("*.json"))
ENTITY_FILES = sorted(CONTRACTS.glob("*.json"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/*.json"))


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Property names that always hold personal or case content, wherever they appear.
PERSONAL_FIELDS = words(
    "identifiers given_name family_name middle_name other_names birth_date "
    "birth_date_precision sex nationality languages is_minor contact phone email address "
    "location giver_name bia_reference risk_level protection_concerns summary reason notes "
    "note text"
)
# Free text at least this long is case content, whatever its name.
LONG_TEXT = 1000

# The gateway is written against these names: renaming one is a breaking change (v2).
TOP_LEVEL_PROPERTIES = {
    "referral": words(
        "kind subtype sender receiver external_reference subject case source_record "
        "services reason consent transfer attachments requested_at"
    ),
    "status-event": words(
        "status occurred_at reason outcome note source_status due_date new_owner"),
    "person": words(
        "identifiers given_name family_name middle_name other_names birth_date "
        "birth_date_precision age sex nationality languages is_minor contact"
    ),
    "consent": words(
        "given_by giver_name form date scope child_assent bia_reference withdrawn "
        "withdrawn_date notes recorded_by_sender"
    ),
    "alert": words(
        "alert_id referral_id kind flag deadline policy state due_at escalate_at at role "
        "message"),
    "partner": words("id name system organisation country active contact_email"),
    "agreement": words(
        "id title parties purposes service_types data_categories retention_days "
        "requires_bia_for_children requires_child_assent outside_consent on_erasure_request "
        "observers valid_from valid_to consent_recorded_by"
    ),
}

# Codes the gateway, mappings and sandboxes rely on. Lists may grow, never shrink, in v1.
REQUIRED_CODES = {
    "service-type": words(
        "case_management psychosocial_support medical_care clinical_management_of_rape "
        "mental_health legal_aid safety_security safe_shelter alternative_care "
        "best_interests_assessment best_interests_determination "
        "family_tracing_reunification education livelihoods cash_assistance "
        "food_assistance non_food_items documentation resettlement "
        "refugee_status_determination probation_supervision accommodation "
        "substance_misuse other"
    ),
    "sex": words("female male other unknown"),
    "consent-giver": words(
        "self legal_representative guardian caregiver trusted_adult caseworker_best_interest"
    ),
    "consent-form": words("written verbal"),
    "rejection-reason": words(
        "individual_not_found individual_not_match_id not_applicable lack_of_capacity "
        "service_not_available not_eligible client_refused_services duplicate "
        "risk_concerns other"
    ),
    "data-category": words(
        "identity contact demographics protection incident health legal risk case-notes"
    ),
    "purpose": words("referral transfer"),
    "urgency": words("routine urgent emergency"),
    "case-module": words("child_protection gbv protection rsd probation"),
    "source-record-type": words(
        "sgbv_incident bia bid child_protection_assessment protection_assessment "
        "probation_assessment other"
    ),
    "related-record": words("child_protection rsd fraud"),
    "referral-status": words(
        "submitted delivered acknowledged accepted in_progress challenged completed "
        "rejected withdrawn failed"
    ),
    "outcome-result": words("successful not_successful"),
    "identifier-system": words(
        "progres_individual progres_group primero_case ndelius_crn national_id other"
    ),
    "partner-system": words("progres primero ndelius fhir other"),
}

# Keywords under which a subschema describes the same instance conditionally; walking the
# "shape" of a schema (its properties) skips them.
CONDITIONAL = {"if", "then", "else", "not", "allOf", "anyOf", "oneOf"}


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@cache
def schemas() -> dict[str, dict[str, Any]]:
    return {_rel(p): _load(p) for p in SCHEMA_FILES}


@cache
def registry() -> Registry:
    return Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in schemas().values()
    )


@cache
def data_categories() -> frozenset[str]:
    return frozenset(_load(CODES / "data-category.json")["enum"])


def validator_for(name: str) -> Draft202012Validator:
    schema = _load(CONTRACTS / f"{name}.json")
    return Draft202012Validator(
        schema, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every dict in a JSON document, with a readable path."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}/{i}")


def shape(schema: dict[str, Any], path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every subschema describing a field of the document (not the conditional rules)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from shape(sub, f"{path}/properties/{name}")
    if isinstance(schema.get("items"), dict):
        yield from shape(schema["items"], f"{path}/items")
    for name, sub in schema.get("$defs", {}).items():
        yield from shape(sub, f"{path}/$defs/{name}")


def properties(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, property name, subschema) of every property in the shape of a schema."""
    for path, node in shape(schema):
        for name, sub in node.get("properties", {}).items():
            yield f"{path}/properties/{name}", name, sub


def leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The error and, for anyOf/oneOf and the like, the errors underneath it."""
    yield error
    for sub in error.context or ():
        yield from leaves(sub)


# ---------------------------------------------------------------------------- schemas


def test_contract_files_exist() -> None:
    names = {p.stem for p in ENTITY_FILES}
    assert names == set(TOP_LEVEL_PROPERTIES), "unexpected or missing contract files"
    assert {p.stem for p in CODE_FILES} >= set(REQUIRED_CODES)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_rel)
def test_schema_is_valid_2020_12_with_versioned_id(path: Path) -> None:
    schema = _load(path)
    Draft202012Validator.check_schema(schema)
    assert schema.get("$schema") == DRAFT
    assert "/v1/" in schema["$id"]
    expected = BASE + path.relative_to(CONTRACTS).as_posix()
    assert schema["$id"] == expected, f"$id should be {expected}"
    assert schema.get("title") and schema.get("description")


def test_ids_are_unique() -> None:
    ids = [doc["$id"] for doc in schemas().values()]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_rel)
def test_every_ref_resolves(path: Path) -> None:
    schema = _load(path)
    resolver = registry().resolver(base_uri=schema["$id"])
    for where, node in walk(schema):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith((BASE, "#")), f"{where}: use the absolute $id in $ref"
            resolver.lookup(ref)  # raises if it does not resolve


@pytest.mark.parametrize("path", ENTITY_FILES, ids=_rel)
def test_top_level_property_names(path: Path) -> None:
    assert set(_load(path)["properties"]) == TOP_LEVEL_PROPERTIES[path.stem]


@pytest.mark.parametrize("path", ENTITY_FILES, ids=_rel)
def test_objects_are_closed(path: Path) -> None:
    for where, node in shape(_load(path)):
        if node.get("type") == "object" or "properties" in node:
            assert node.get("additionalProperties") is False, f"{where}: not closed"


@pytest.mark.parametrize("path", ENTITY_FILES, ids=_rel)
def test_strings_are_bounded(path: Path) -> None:
    for where, node in shape(_load(path)):
        if node.get("type") == "string" and "enum" not in node and "const" not in node:
            assert isinstance(node.get("maxLength"), int), f"{where}: string without maxLength"
        if node.get("type") == "array":
            assert isinstance(node.get("maxItems"), int), f"{where}: array without maxItems"


@pytest.mark.parametrize("path", ENTITY_FILES, ids=_rel)
def test_every_property_is_described(path: Path) -> None:
    for where, _name, sub in properties(_load(path)):
        description = sub.get("description")
        assert isinstance(description, str) and description.strip(), f"{where}: no description"


@pytest.mark.parametrize("path", ENTITY_FILES, ids=_rel)
def test_personal_fields_carry_a_category(path: Path) -> None:
    for where, name, sub in properties(_load(path)):
        is_container = sub.get("type") == "object" and "x-category" not in sub
        if name in PERSONAL_FIELDS and not is_container:
            assert sub.get("x-category") in data_categories(), f"{where}: no x-category"
        if sub.get("type") == "string" and sub.get("maxLength", 0) >= LONG_TEXT:
            assert "x-category" in sub, f"{where}: free text without x-category"


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=_rel)
def test_every_category_is_a_known_code(path: Path) -> None:
    for where, node in walk(_load(path)):
        if "x-category" in node:
            assert node["x-category"] in data_categories(), f"{where}: unknown category"


@pytest.mark.parametrize("path", ENTITY_FILES, ids=_rel)
def test_nested_categories_agree_with_their_parent(path: Path) -> None:
    """A field filter may drop a whole block or single leaves: both must agree."""
    for where, _name, sub in properties(_load(path)):
        if "x-category" not in sub:
            continue
        for inner_where, inner in walk(sub, where):
            category = inner.get("x-category", sub["x-category"])
            assert category == sub["x-category"], f"{inner_where}: category differs from parent"


# ---------------------------------------------------------------------------- code lists


@pytest.mark.parametrize("path", CODE_FILES, ids=_rel)
def test_code_list_is_labelled(path: Path) -> None:
    schema = _load(path)
    assert schema["type"] == "string"
    codes = schema["enum"]
    assert codes and len(codes) == len(set(codes)), "empty list or duplicate codes"
    for code in codes:
        assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", code), f"badly formed code {code!r}"
    labels = schema["x-labels"]
    assert set(labels) == set(codes), "x-labels must have exactly one entry per code"
    for code, label in labels.items():
        assert isinstance(label, str) and label.strip(), f"{code}: empty label"


@pytest.mark.parametrize("name", sorted(REQUIRED_CODES))
def test_code_list_keeps_the_codes_the_gateway_uses(name: str) -> None:
    codes = set(_load(CODES / f"{name}.json")["enum"])
    missing = REQUIRED_CODES[name] - codes
    assert not missing, f"codes removed from {name}: {sorted(missing)}"


def test_data_categories_are_exactly_the_nine() -> None:
    assert data_categories() == REQUIRED_CODES["data-category"]


@pytest.mark.parametrize("path", CODE_FILES, ids=_rel)
def test_docs_list_every_code(path: Path) -> None:
    lines = set(DOCS.read_text(encoding="utf-8").splitlines())
    labels = _load(path)["x-labels"]
    missing = [f"| `{code}` | {label} |" for code, label in labels.items()]
    missing = [row for row in missing if row not in lines]
    assert not missing, f"docs/contracts.md lacks these rows of {path.name}: {missing}"


# ---------------------------------------------------------------------------- examples

EXAMPLE_NAME = re.compile(r"(valid-[a-z0-9-]+|invalid-(?P<rule>[A-Za-z0-9]+)-[a-z0-9-]+)\.json")


def test_examples_cover_every_contract() -> None:
    for name in TOP_LEVEL_PROPERTIES:
        files = [p.name for p in (EXAMPLES / name).glob("*.json")]
        assert any(f.startswith("valid-") for f in files), f"{name}: no valid example"
        assert any(f.startswith("invalid-") for f in files), f"{name}: no invalid example"
    for folder in EXAMPLES.iterdir():
        assert folder.name in TOP_LEVEL_PROPERTIES, f"examples/{folder.name}: no such contract"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_rel)
def test_example(path: Path) -> None:
    match = EXAMPLE_NAME.fullmatch(path.name)
    assert match, f"{path.name}: name it valid-<what>.json or invalid-<rule>-<what>.json"
    errors = list(validator_for(path.parent.name).iter_errors(_load(path)))

    rule = match.group("rule")
    if rule is None:
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
        return

    assert errors, f"{path.name} should be invalid ({rule}) but validates"
    found = [leaf for e in errors for leaf in leaves(e) if leaf.validator == rule]
    assert found, f"no '{rule}' error; got " + "; ".join(
        f"{leaf.validator} at {list(leaf.absolute_path)}" for e in errors for leaf in leaves(e)
    )
    # An invalid example breaks one rule only, so that it proves that rule. (A second error
    # on the same field, e.g. format next to pattern, is fine.)
    rule_paths = {tuple(leaf.absolute_path) for leaf in found}
    for error in errors:
        about_rule = any(leaf.validator == rule for leaf in leaves(error))
        assert about_rule or tuple(error.absolute_path) in rule_paths, (
            f"{path.name} also breaks {error.validator} at {list(error.absolute_path)}: "
            f"{error.message}"
        )
