"""The need-to-know filter: the receiver's copy keeps only the data categories allowed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.mapping.schema import SchemaView
from gateway.protection.need_to_know import (
    UNKNOWN,
    Withheld,
    categories_of,
    need_to_know,
)

CONTRACTS = Contracts(ROOT / "contracts")
CATEGORIES = tuple(CONTRACTS.codes("data-category"))
EXAMPLES = sorted((ROOT / "contracts" / "examples" / "referral").glob("valid-*.json"))


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (ROOT / "contracts" / "examples" / "referral" / name).read_text(encoding="utf-8"))
    return loaded


def everything() -> dict[str, Any]:
    """A fictional transfer that fills a field of every category the contract has."""
    return {
        "kind": "transfer",
        "subtype": "cross_border",
        "sender": {"partner": "primero-ssd", "unit": "CP unit Juba", "user": "cw.fictional"},
        "receiver": {"partner": "primero-uga"},
        "external_reference": "TR-0001",
        "subject": {
            "identifiers": [{"system": "primero_case", "value": "CP-FICT-0001"},
                            {"system": "national_id", "value": "NAT-0000"}],
            "given_name": "Nyabol", "family_name": "Fictionalia", "other_names": "Bol",
            "birth_date": "2014-02-02", "birth_date_precision": "estimated",
            "sex": "female", "nationality": "SSD", "languages": ["din", "ar"],
            "is_minor": True,
            "contact": {"phone": "+211 900 000 000", "address": "Block 7 (fictional)",
                        "location": {"admin1": "Central Equatoria", "settlement": "Camp X"}},
        },
        "case": {"reference": "CP-0001", "module": "child_protection", "risk_level": "high",
                 "protection_concerns": ["separated"], "summary": "Fictional summary."},
        "source_record": {"type": "bia", "reference": "BIA-0001"},
        "services": [{"type": "psychosocial_support", "urgency": "urgent",
                      "notes": "Weekly sessions (fictional)."},
                     {"type": "education"}],
        "reason": "The family moved (fictional).",
        "consent": {
            "given_by": "caregiver", "giver_name": "Akech Fictionalia", "form": "written",
            "date": "2026-10-01",
            "scope": {"purposes": ["transfer"], "receivers": ["primero-uga"],
                      "data_categories": list(CATEGORIES)},
            "child_assent": True, "bia_reference": "BIA-0001", "notes": "Phone only.",
        },
        "transfer": {"include_related": ["child_protection"], "reason": "Family moved.",
                     "effective_date": "2026-12-01"},
        "attachments": [{"reference": "doc-1", "title": "BIA report",
                         "media_type": "application/pdf"}],
        "requested_at": "2026-11-20T09:00:00Z",
    }


def filtered(document: dict[str, Any], *allowed: str) -> tuple[dict[str, Any], list[Withheld]]:
    result = need_to_know(document, allowed=frozenset(allowed), contracts=CONTRACTS)
    return result.document, result.withheld


def leaves(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar (and every empty list or object) of a document, by JSON Pointer."""
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from leaves(child, f"{where}/{key}")
    elif isinstance(value, list) and value:
        for index, child in enumerate(value):
            yield from leaves(child, f"{where}/{index}")
    else:
        yield where, value


def category_of(where: str) -> str | None:
    """The category of a field from the index: its own, or its nearest categorised parent's."""
    paths = categories_of(CONTRACTS).paths
    parts = ["*" if p.isdigit() else p for p in where.split("/")[1:]]
    for end in range(1, len(parts) + 1):
        found = paths.get("/" + "/".join(parts[:end]))
        if found is not None:
            return found
    return None


def resolve(document: Any, where: str) -> Any:
    node = document
    for part in where.split("/")[1:]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def present(document: Any, where: str) -> bool:
    try:
        resolve(document, where)
    except (KeyError, IndexError):
        return False
    return True


def test_the_index_finds_categories_through_refs_lists_and_nested_objects() -> None:
    paths = categories_of(CONTRACTS).paths
    assert paths["/subject/birth_date"] == "identity"                 # person.json, by $ref
    assert paths["/subject/identifiers"] == "identity"                # a categorised list
    assert paths["/subject/contact/location/settlement"] == "contact"  # nested objects
    assert paths["/services/*/notes"] == "case-notes"                 # inside list items
    assert paths["/consent/bia_reference"] == "protection"            # consent.json, by $ref
    assert paths["/attachments/*/title"] == "case-notes"
    assert "/kind" not in paths and "/services/*/type" not in paths
    assert "/consent/scope" not in paths and "/receiver/partner" not in paths
    assert categories_of(CONTRACTS).categories() <= set(CATEGORIES)


def test_the_index_is_built_once_per_contracts(monkeypatch: pytest.MonkeyPatch) -> None:
    contracts = Contracts(ROOT / "contracts")
    first = categories_of(contracts)

    def no_more_walks(*_: Any) -> None:
        raise AssertionError("the contract was walked again")

    monkeypatch.setattr(SchemaView, "root", no_more_walks)
    assert categories_of(contracts) is first
    need_to_know(everything(), allowed=frozenset({"identity"}), contracts=contracts)


def test_only_identity_and_demographics_leave_uncategorised_fields_in_place() -> None:
    document, withheld = filtered(everything(), "identity", "demographics")
    assert document["subject"]["given_name"] == "Nyabol"
    assert document["subject"]["identifiers"][1] == {"system": "national_id", "value": "NAT-0000"}
    assert "contact" not in document["subject"]
    assert document["case"] == {"reference": "CP-0001", "module": "child_protection"}
    assert document["services"] == [{"type": "psychosocial_support", "urgency": "urgent"},
                                     {"type": "education"}]
    assert document["attachments"] == [{"reference": "doc-1", "media_type": "application/pdf"}]
    assert document["transfer"] == {"include_related": ["child_protection"],
                                    "effective_date": "2026-12-01"}
    assert document["consent"]["giver_name"] == "Akech Fictionalia"
    assert "bia_reference" not in document["consent"] and "notes" not in document["consent"]
    assert document["consent"]["scope"]["data_categories"] == list(CATEGORIES)
    for key in ("kind", "subtype", "sender", "receiver", "external_reference",
                "source_record", "requested_at"):
        assert document[key] == everything()[key]
    assert withheld == [
        Withheld("/subject/contact", "contact"),
        Withheld("/case/risk_level", "risk"),
        Withheld("/case/protection_concerns", "protection"),
        Withheld("/case/summary", "case-notes"),
        Withheld("/services/0/notes", "case-notes"),
        Withheld("/reason", "case-notes"),
        Withheld("/consent/bia_reference", "protection"),
        Withheld("/consent/notes", "case-notes"),
        Withheld("/transfer/reason", "case-notes"),
        Withheld("/attachments/0/title", "case-notes"),
    ]
    assert CONTRACTS.validate("referral", document) == []


def test_a_categorised_list_or_object_is_removed_whole() -> None:
    document, withheld = filtered(everything(), "demographics", "contact")
    assert "identifiers" not in document["subject"] and "given_name" not in document["subject"]
    assert document["subject"]["contact"] == everything()["subject"]["contact"]
    assert Withheld("/subject/identifiers", "identity") in withheld
    assert not any(w.pointer.startswith("/subject/identifiers/") for w in withheld)


def test_an_object_left_empty_is_removed_and_named() -> None:
    source = everything()
    source["case"] = {"risk_level": "high", "protection_concerns": ["separated"]}
    document, withheld = filtered(source, "identity", "demographics")
    assert "case" not in document
    assert withheld[1:4] == [Withheld("/case/risk_level", "risk"),
                             Withheld("/case/protection_concerns", "protection"),
                             Withheld("/case", "protection, risk")]


def test_an_object_empty_from_the_start_stays() -> None:
    source = everything()
    source["case"] = {}
    document, withheld = filtered(source, "identity")
    assert document["case"] == {}
    assert not any(w.pointer == "/case" for w in withheld)


def test_with_every_category_allowed_the_copy_equals_the_input() -> None:
    document, withheld = filtered(everything(), *CATEGORIES)
    assert document == everything() and withheld == []


def test_the_input_is_never_changed_and_the_copy_shares_nothing_with_it() -> None:
    source = everything()
    before = copy.deepcopy(source)
    document, _ = filtered(source, "identity", "demographics", "case-notes")
    assert source == before
    document["subject"]["identifiers"][0]["value"] = "changed"
    document["services"][0]["type"] = "other"
    document["consent"]["scope"]["receivers"].append("someone-else")
    assert source == before


def test_a_field_the_contract_does_not_know_is_removed() -> None:
    source = everything()
    source["subject"]["favourite_colour"] = "blue"
    document, withheld = filtered(source, *CATEGORIES)
    assert "favourite_colour" not in document["subject"]
    assert withheld == [Withheld("/subject/favourite_colour", UNKNOWN)]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_nothing_allowed_still_leaves_a_routable_skeleton(path: Path) -> None:
    document, withheld = filtered(example(path.name))
    assert document["kind"] and document["sender"] and document["receiver"]
    assert document["consent"]["scope"] == example(path.name)["consent"]["scope"]
    assert all(category_of(where) is None for where, _ in leaves(document))
    assert withheld


DOCUMENTS = [everything(), *(example(p.name) for p in EXAMPLES)]


@settings(max_examples=examples(200), deadline=None)
@given(document=st.sampled_from(DOCUMENTS),
       allowed=st.frozensets(st.sampled_from(CATEGORIES)))
def test_no_field_of_a_category_not_allowed_survives_and_every_allowed_one_does(
        document: dict[str, Any], allowed: frozenset[str]) -> None:
    before = copy.deepcopy(document)
    result = need_to_know(document, allowed=allowed, contracts=CONTRACTS)
    assert document == before
    for where, value in leaves(document):
        category = category_of(where)
        if category is None or category in allowed:
            assert present(result.document, where), f"{where} ({category}) was removed"
            assert resolve(result.document, where) == value
        else:
            assert not present(result.document, where), f"{where} ({category}) survived"
    for where, _ in leaves(result.document):
        assert category_of(where) in {None, *allowed}
    for item in result.withheld:
        assert present(document, item.pointer) and not present(result.document, item.pointer)
        assert all(c not in allowed for c in item.category.split(", "))


def test_the_worked_example_in_the_docs_is_what_the_filter_does() -> None:
    text = (ROOT / "docs" / "agreements.md").read_text(encoding="utf-8")
    section = text.split("### A worked example", 1)[1]
    before, after = (json.loads(block.split("```", 1)[0])
                     for block in section.split("```json\n")[1:3])
    consented = frozenset(before["consent"]["scope"]["data_categories"])
    result = need_to_know(before, allowed=consented, contracts=CONTRACTS)
    assert result.document == after
    assert [(w.pointer, w.category) for w in result.withheld] == [
        ("/case/risk_level", "risk"), ("/case/protection_concerns", "protection"),
        ("/services/0/notes", "case-notes"), ("/reason", "case-notes")]
