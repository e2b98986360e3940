"""No child missed: a child's record through every inbound mapping ends with is_minor true,
and the child safeguards of the agreement apply to it."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.errors import ConsentProblem
from gateway.mapping.translator import MappingTranslator
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.consent import admit
from gateway.protection.minors import establish_minor
from gateway.yamlpos import Problems, plain, read_yaml
from sharing import write_agreement

CONTRACTS = Contracts(ROOT / "contracts")
TODAY = date(2026, 12, 7)
SENDER, RECEIVER = "sender-test", "receiver-test"
BIRTH_KEYS = ("date_of_birth", "progres_dateofbirth", "dateOfBirth")
# (system, mapping file, kind): every inbound mapping of a referral or transfer.
INBOUND = [("primero", "case-to-referral.in.yaml", "referral"),
           ("primero", "case-to-transfer.in.yaml", "transfer"),
           ("progres", "interop-referral-to-referral.in.yaml", "referral"),
           ("progres", "dtr-to-transfer.in.yaml", "transfer"),
           ("ndelius", "nsi-to-transfer.in.yaml", "transfer")]


def example_input(system: str, file: str) -> dict[str, Any]:
    """The first example of the mapping that maps without an error."""
    _, mapping = read_yaml(ROOT / "mappings" / system / file, Problems(file))
    return copy.deepcopy(plain(next(e["input"] for e in mapping["inbound"]["examples"]
                                    if "output" in e)))


def rewrite(record: Any, change: dict[str, Any]) -> Any:
    """The record with every field named in `change` set (None: removed), at any depth."""
    if isinstance(record, dict):
        out = {k: rewrite(v, change) for k, v in record.items() if change.get(k, 0) is not None}
        return {**out, **{k: v for k, v in change.items() if k in record and v is not None}}
    if isinstance(record, list):
        return [rewrite(v, change) for v in record]
    return record


def variants(system: str) -> list[tuple[str, dict[str, Any]]]:
    born = dict.fromkeys(BIRTH_KEYS, "2015-06-01")
    found = [("birth date", born)]
    if system == "primero":
        # Primero records an age without a date of birth, or nothing on a CP case.
        nothing = {**dict.fromkeys(BIRTH_KEYS), "estimated": None, "age": None,
                   "module_id": "primeromodule-cp"}
        found += [("age only", {**nothing, "age": 11}), ("child-protection case", nothing)]
    return found


def to_test_parties(canonical: dict[str, Any]) -> dict[str, Any]:
    canonical["sender"]["partner"], canonical["receiver"]["partner"] = SENDER, RECEIVER
    canonical["consent"]["scope"]["receivers"] = [RECEIVER]
    canonical["consent"].pop("bia_reference", None)
    canonical["consent"].pop("child_assent", None)
    return canonical


@pytest.fixture(scope="module")
def translator() -> MappingTranslator:
    return MappingTranslator(ROOT / "mappings", contracts=CONTRACTS)


@pytest.fixture(scope="module")
def agreements(tmp_path_factory: pytest.TempPathFactory) -> AgreementRegistry:
    folder = tmp_path_factory.mktemp("agreements")
    write_agreement(folder, "isp-children", [SENDER, RECEIVER], requires_bia_for_children=True,
                    requires_child_assent=True)
    return AgreementRegistry(folder, CONTRACTS)


@pytest.mark.parametrize(("system", "file", "kind"), INBOUND,
                         ids=[f"{s}/{f}" for s, f, _ in INBOUND])
def test_a_child_through_every_inbound_mapping_is_a_minor_and_gets_the_safeguards(
        translator: MappingTranslator, agreements: AgreementRegistry, system: str, file: str,
        kind: str) -> None:
    for what, change in variants(system):
        native = rewrite(example_input(system, file), change)
        canonical, _ = translator.inbound(system, kind, native)
        canonical = to_test_parties(canonical)
        marked, _ = establish_minor(canonical, today=TODAY)
        assert marked["subject"]["is_minor"] is True, (file, what)
        with pytest.raises(ConsentProblem) as refused:
            admit(canonical, agreements=agreements, contracts=CONTRACTS, today=TODAY)
        assert refused.value.slug == "child-safeguard-required", (file, what)
        assert {e.pointer for e in refused.value.errors} == {
            "/consent/bia_reference", "/consent/child_assent"}, (file, what)
        canonical["consent"].update(bia_reference="BIA-TEST-1", child_assent=True)
        admit(canonical, agreements=agreements, contracts=CONTRACTS, today=TODAY)


@pytest.mark.parametrize(("subject", "case", "minor"), [
    ({"birth_date": "2008-12-08"}, {}, True),                    # 18 tomorrow
    ({"birth_date": "2008-12-07"}, {}, False),                   # 18 today
    ({"birth_date": "2008-01-01", "birth_date_precision": "year"}, {}, True),  # maybe Dec
    ({"age": {"years": 16, "as_of": "2025-12-08"}}, {}, True),   # 17 at most now
    ({"age": {"years": 16, "as_of": "2024-12-07"}}, {}, False),  # 18 at least now
    ({"age": {"years": 3, "as_of": "2024-02-29"}}, {}, True),
    ({}, {"module": "child_protection"}, True),
    ({}, {"module": "gbv"}, None),
    ({"is_minor": False}, {"module": "child_protection"}, False),
    ({"is_minor": True, "birth_date": "1990-01-01"}, {}, True),  # never lowered
    ({"is_minor": False, "age": {"years": 9, "as_of": "2026-01-01"}}, {}, True),
    ({"birth_date": "not a date"}, {}, None),                    # the contract's business
], ids=lambda v: str(v))
def test_is_minor_follows_the_youngest_the_person_can_be(
        subject: dict[str, Any], case: dict[str, Any], minor: bool | None) -> None:
    document = {"requested_at": "2026-12-07T10:00:00Z", "subject": subject, "case": case}
    marked, _ = establish_minor(document, today=TODAY)
    assert marked["subject"].get("is_minor") is minor


def test_a_contradicted_is_minor_false_names_both_pointers() -> None:
    document = {"subject": {"is_minor": False, "birth_date": "2015-01-01"}}
    marked, contradicted = establish_minor(document, today=TODAY)
    assert marked["subject"]["is_minor"] is True
    assert contradicted == ["/subject/is_minor", "/subject/birth_date"]
