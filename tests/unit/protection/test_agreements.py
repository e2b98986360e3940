"""Data-sharing agreements: checking files, keeping them in force, choosing the one that applies."""

from __future__ import annotations

import os
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.errors import ConsentProblem, FieldError
from gateway.mapping.check import check_mapping_file
from gateway.mapping.compile import compile_mapping
from gateway.mapping.schema import SchemaView
from gateway.protection.agreements import AgreementRegistry, check_agreement_file
from gateway.protection.consent import admit
from gateway.protection.need_to_know import categories_of
from gateway.yamlpos import Problems, plain, read_yaml

CONTRACTS = Contracts(ROOT / "contracts")
SHIPPED = ROOT / "agreements"
TODAY = date(2026, 11, 23)

GOOD = """\
    # A fictional agreement for the tests.
    id: {id}
    title: Fictional protocol
    parties: [{parties}]
    purposes: [{purposes}]
    {services}
    data_categories:
      referral: [{referral}]
      transfer: [identity, demographics, contact, protection, risk, case-notes]
    retention_days: 365
    valid_from: {valid_from}
    valid_to: {valid_to}
    """


def agreement_text(agreement_id: str = "isp-a-b", *, parties: str = "agency-a, agency-b",
                   purposes: str = "referral, transfer", services: str | None = None,
                   referral: str = "identity, demographics", valid_from: str = "2026-01-01",
                   valid_to: str = "2027-12-31") -> str:
    return textwrap.dedent(GOOD.format(
        id=agreement_id, parties=parties, purposes=purposes, referral=referral,
        services=f"service_types: [{services}]" if services else "", valid_from=valid_from,
        valid_to=valid_to))


def write(folder: Path, agreement_id: str = "isp-a-b", text: str | None = None,
          **changes: Any) -> Path:
    """Write an agreement file and move its modification time on, as an editor saving it."""
    path = folder / f"{agreement_id}.yaml"
    bumped = path.exists()
    path.write_text(text if text is not None else agreement_text(agreement_id, **changes))
    if bumped:
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    return path


def refusal(registry: AgreementRegistry, *, sender: str = "agency-a",
            receiver: str = "agency-b", purpose: str = "referral",
            services: tuple[str, ...] = ("psychosocial_support",),
            on: date = TODAY) -> ConsentProblem:
    with pytest.raises(ConsentProblem) as caught:
        registry.covering(sender=sender, receiver=receiver, purpose=purpose,
                          service_types=services, on=on)
    problem = caught.value
    assert (problem.slug, problem.status, problem.title) == (
        "no-agreement", 422, "No data-sharing agreement covers this")
    return problem


def only(problem: ConsentProblem) -> FieldError:
    [error] = problem.errors
    return error


# ---------------------------------------------------------------------------- the file


def test_a_good_file_becomes_an_agreement(tmp_path: Path) -> None:
    path = write(tmp_path, services="psychosocial_support, legal_aid")
    agreement, problems = check_agreement_file(path, CONTRACTS)
    assert problems == [] and agreement is not None
    assert agreement.id == "isp-a-b" and agreement.title == "Fictional protocol"
    assert agreement.parties == {"agency-a", "agency-b"}
    assert agreement.purposes == {"referral", "transfer"}
    assert agreement.service_types == {"psychosocial_support", "legal_aid"}
    assert agreement.categories["referral"] == {"identity", "demographics"}
    assert len(agreement.categories["transfer"]) == 6
    assert (agreement.retention_days, agreement.outside_consent) == (365, "remove")
    assert not agreement.requires_bia_for_children and not agreement.requires_child_assent
    assert (agreement.valid_from, agreement.valid_to) == (date(2026, 1, 1), date(2027, 12, 31))
    assert agreement.file.endswith("isp-a-b.yaml")
    assert agreement.content_hash.startswith("sha256:")


def test_service_types_left_out_means_any_service(tmp_path: Path) -> None:
    agreement, _ = check_agreement_file(write(tmp_path), CONTRACTS)
    assert agreement is not None and agreement.service_types is None
    assert agreement.allows(["probation_supervision", "other"])


def test_every_problem_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "isp-a-b.yaml"
    path.write_text(textwrap.dedent("""\
        # line 1
        id: isp-other
        parties: [agency-a, agency-a]
        purposes:
          - referral
          - referal
        data_categories:
          transfer: [identity]
        retention_days: 0
        outside_consent: withhold
        colour: blue
        valid_from: 2026-05-01
        valid_to: 2026-04-30
        """))
    agreement, problems = check_agreement_file(path, CONTRACTS)
    assert agreement is None
    file = problems[0].split(":")[0]
    assert file.endswith("isp-a-b.yaml")
    assert [p.removeprefix(file + ":") for p in problems] == [
        "2:5: file-name: the file of agreement 'isp-other' must be named isp-other.yaml",
        "3:21: uniqueItems: 'parties' lists 'agency-a' twice: parties must be distinct",
        "6:5: enum: 'purposes[1]' must be a code of Purpose: referral, transfer",
        "7:1: required: 'data_categories.referral' is required",
        "9:17: minimum: 'retention_days' must be at least 1",
        "10:18: enum: 'outside_consent' must be a code of the code list: remove, refuse",
        "11:1: additionalProperties: 'colour' is not a field of this contract",
        "13:11: validity: valid_to must not be before valid_from",
    ]


def test_observers_are_partners_told_of_deadlines_and_never_a_party(tmp_path: Path) -> None:
    path = write(tmp_path, text=agreement_text() + "observers: [cp-focal, agency-b]\n")
    agreement, problems = check_agreement_file(path, CONTRACTS)
    assert agreement is None
    assert [p.split(":", 1)[1] for p in problems] == [
        "13:23: observer-is-party: 'agency-b' is a party: parties hear of their own "
        "referrals' deadlines already"]
    write(tmp_path, text=agreement_text() + "observers: [cp-focal]\n")
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    assert registry.observers("isp-a-b") == {"cp-focal"}
    assert registry.observers("no-such-agreement") == frozenset()


def test_time_limits_are_not_written_in_an_agreement(tmp_path: Path) -> None:
    path = write(tmp_path, text=agreement_text() + "due:\n  acknowledge_within_working_days: 2\n")
    agreement, problems = check_agreement_file(path, CONTRACTS)
    assert agreement is None
    assert [p.split(":", 1)[1] for p in problems] == [
        "13:1: additionalProperties: 'due' is not a field of this contract"]


def test_a_yaml_syntax_error_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path, text="id: isp-a-b\nparties: [agency-a, agency-b\npurposes: [x]\n")
    agreement, problems = check_agreement_file(path, CONTRACTS)
    assert agreement is None
    [problem] = problems
    assert problem.endswith(":3:9: yaml-syntax: expected ',' or ']', but got ':'")


def test_an_empty_file_is_not_an_agreement(tmp_path: Path) -> None:
    agreement, problems = check_agreement_file(write(tmp_path, text=""), CONTRACTS)
    assert agreement is None
    assert [p.split(":", 1)[1] for p in problems] == [
        "1:1: type: the file must hold one agreement: keys and their values"]


def test_problems_never_repeat_the_values_written(tmp_path: Path) -> None:
    path = write(tmp_path, text=agreement_text().replace(
        "title: Fictional protocol", "title: Fictional protocol\nnotes: Amani Testcase 2013-06-01")
        .replace("retention_days: 365", "retention_days: Amani"))
    _, problems = check_agreement_file(path, CONTRACTS)
    assert len(problems) == 2
    assert not any("Amani" in p or "2013-06-01" in p for p in problems)


@pytest.mark.parametrize("path", sorted(SHIPPED.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_agreement_passes_its_check(path: Path) -> None:
    agreement, problems = check_agreement_file(path, CONTRACTS)
    assert problems == [] and agreement is not None
    assert agreement.valid_on(TODAY)
    assert path.read_text(encoding="utf-8").startswith("# "), "start with a comment for IM officers"


# ---------------------------------------------------------------------------- which one covers


def test_no_agreement_between_the_partners(tmp_path: Path) -> None:
    write(tmp_path)
    error = only(refusal(AgreementRegistry(tmp_path, CONTRACTS), receiver="agency-c"))
    assert (error.pointer, error.rule) == ("/receiver/partner", "agreement-parties")
    assert "'agency-a'" in error.detail and "'agency-c'" in error.detail


def test_an_agreement_without_the_purpose(tmp_path: Path) -> None:
    write(tmp_path, purposes="referral")
    error = only(refusal(AgreementRegistry(tmp_path, CONTRACTS), purpose="transfer"))
    assert (error.pointer, error.rule) == ("/kind", "agreement-purpose")
    assert "'isp-a-b'" in error.detail


def test_a_service_outside_the_agreement_is_named_by_its_index(tmp_path: Path) -> None:
    write(tmp_path, services="psychosocial_support, legal_aid")
    problem = refusal(AgreementRegistry(tmp_path, CONTRACTS),
                      services=("legal_aid", "medical_care", "psychosocial_support"))
    error = only(problem)
    assert (error.pointer, error.rule) == ("/services/1/type", "agreement-service-type")
    assert "'isp-a-b'" in error.detail and "'medical_care'" in error.detail


def test_services_no_single_agreement_covers_together(tmp_path: Path) -> None:
    write(tmp_path, "isp-a-b-health", services="medical_care")
    write(tmp_path, "isp-a-b-legal", services="legal_aid")
    problem = refusal(AgreementRegistry(tmp_path, CONTRACTS),
                      services=("medical_care", "legal_aid"))
    assert [(e.pointer, e.rule) for e in problem.errors] == [
        ("/services/0/type", "agreement-service-type"),
        ("/services/1/type", "agreement-service-type")]
    assert all("'isp-a-b-health', 'isp-a-b-legal'" in e.detail for e in problem.errors)


@pytest.mark.parametrize(("on", "says"), [
    (date(2028, 1, 1), "agreement 'isp-a-b' ended on 2027-12-31"),
    (date(2025, 12, 31), "agreement 'isp-a-b' applies only from 2026-01-01"),
])
def test_an_agreement_out_of_its_dates(tmp_path: Path, on: date, says: str) -> None:
    write(tmp_path)
    error = only(refusal(AgreementRegistry(tmp_path, CONTRACTS), on=on))
    assert (error.pointer, error.rule, error.detail) == (
        "/receiver/partner", "agreement-validity", says)


@pytest.mark.parametrize("on", [date(2026, 1, 1), date(2027, 12, 31)])
def test_the_first_and_last_day_are_inside(tmp_path: Path, on: date) -> None:
    write(tmp_path)
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    assert registry.covering(sender="agency-b", receiver="agency-a", purpose="referral",
                             service_types=[], on=on).id == "isp-a-b"


def test_an_open_ended_agreement_never_ends(tmp_path: Path) -> None:
    write(tmp_path, text=agreement_text().replace("valid_to: 2027-12-31\n", ""))
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    assert registry.covering(sender="agency-a", receiver="agency-b", purpose="transfer",
                             service_types=[], on=date(2090, 1, 1)).valid_to is None


def test_of_several_agreements_the_most_protective_applies(tmp_path: Path) -> None:
    write(tmp_path, "isp-a-b-wide", referral="identity, demographics, contact, case-notes")
    write(tmp_path, "isp-a-b-narrow", referral="identity, demographics")
    write(tmp_path, "isp-a-b-expired", referral="identity", valid_to="2026-06-30")
    write(tmp_path, "isp-a-b-c", parties="agency-a, agency-b, agency-c",
          referral="identity, demographics, contact")
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    chosen = registry.covering(sender="agency-a", receiver="agency-b", purpose="referral",
                               service_types=["psychosocial_support"], on=TODAY)
    assert chosen.id == "isp-a-b-narrow"
    assert registry.covering(sender="agency-c", receiver="agency-a", purpose="referral",
                             service_types=[], on=TODAY).id == "isp-a-b-c"


def test_equally_protective_agreements_are_chosen_by_id(tmp_path: Path) -> None:
    write(tmp_path, "isp-zulu")
    write(tmp_path, "isp-alpha")
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    assert registry.covering(sender="agency-a", receiver="agency-b", purpose="referral",
                             service_types=[], on=TODAY).id == "isp-alpha"


def test_the_precise_reason_wins_over_a_general_one(tmp_path: Path) -> None:
    # Between a and b: a valid transfer agreement, and a referral agreement that ended.
    write(tmp_path, "isp-a-b-transfers", purposes="transfer")
    write(tmp_path, "isp-a-b-referrals", purposes="referral", valid_to="2026-06-30")
    error = only(refusal(AgreementRegistry(tmp_path, CONTRACTS)))
    assert (error.rule, error.detail) == (
        "agreement-validity", "agreement 'isp-a-b-referrals' ended on 2026-06-30")


# ---------------------------------------------------------------------------- in force


def test_a_changed_file_is_picked_up_on_the_next_call(tmp_path: Path) -> None:
    write(tmp_path)
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    [before] = registry.in_force()
    write(tmp_path, referral="identity, demographics, contact")
    [after] = registry.in_force()
    assert after.categories["referral"] == {"identity", "demographics", "contact"}
    assert after.content_hash != before.content_hash
    assert registry.refresh() == []


def test_new_and_removed_files_come_into_and_leave_force(tmp_path: Path) -> None:
    write(tmp_path)
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    assert [a.id for a in registry.in_force()] == ["isp-a-b"]
    write(tmp_path, "isp-c-d", parties="agency-c, agency-d")
    assert [a.id for a in registry.in_force()] == ["isp-a-b", "isp-c-d"]
    (tmp_path / "isp-a-b.yaml").unlink()
    assert [a.id for a in registry.in_force()] == ["isp-c-d"]
    refusal(registry)


def test_a_broken_change_is_refused_logged_and_the_last_good_stays(tmp_path: Path) -> None:
    write(tmp_path)
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    [good] = registry.in_force()
    with capture_logs() as logs:
        write(tmp_path, text=agreement_text().replace("retention_days: 365",
                                                      "retention_days: forever"))
        assert registry.in_force() == [good]
        registry.in_force()  # the same broken version is refused once, not on every call
    [refused] = [e for e in logs if e["event"] == "agreement_refused"]
    assert refused["log_level"] == "warning"
    assert refused["file"].endswith("isp-a-b.yaml") and refused["in_force"] == good.content_hash
    [problem] = refused["problems"]
    assert problem.endswith(":10:17: type: 'retention_days' must be of type integer")
    assert "forever" not in str(refused)
    [kept] = registry.refusals
    assert kept.file.endswith("isp-a-b.yaml") and kept.problems == (problem,)
    assert registry.covering(sender="agency-a", receiver="agency-b", purpose="referral",
                             service_types=[], on=TODAY) == good

    write(tmp_path, referral="identity")
    [fixed] = registry.in_force()
    assert fixed.categories["referral"] == {"identity"}


def test_a_file_refused_at_first_load_is_not_in_force(tmp_path: Path) -> None:
    write(tmp_path)
    write(tmp_path, "isp-c-d", text=agreement_text("isp-c-d").replace("parties:", "partys:"))
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    assert [a.id for a in registry.in_force()] == ["isp-a-b"]
    assert [r.file.rsplit("/", 1)[-1] for r in registry.refusals] == ["isp-c-d.yaml"]
    refusal(registry, sender="agency-c", receiver="agency-d")


def test_a_missing_folder_means_no_agreement(tmp_path: Path) -> None:
    error = only(refusal(AgreementRegistry(tmp_path / "nowhere", CONTRACTS)))
    assert error.rule == "agreement-parties"


# ---------------------------------------------------------------------------- the shipped ones

# (mapping file, example, sender, receiver): the flows the demo and the end-to-end tests run.
FLOWS = [
    ("primero/case-to-referral.in.yaml", "South Sudan refers", "primero-ssd", "progres-eth"),
    ("progres/interop-referral-to-referral.in.yaml", "child referred to UNICEF",
     "progres-eth", "primero-ssd"),
    ("primero/case-to-transfer.in.yaml", "South Sudan transfers", "primero-ssd", "primero-uga"),
    ("ndelius/nsi-to-transfer.in.yaml", "a licence case moves", "ndelius-n07", "ndelius-n03"),
    ("ndelius/nsi-to-transfer.in.yaml", "a temporary move", "ndelius-n07", "ndelius-n03"),
]
OUTBOUND = {("progres", "referral"): "progres/referral-to-interop-referral.out.yaml",
            ("primero", "referral"): "primero/referral-to-case.out.yaml",
            ("primero", "transfer"): "primero/transfer-to-case.out.yaml",
            ("ndelius", "transfer"): "ndelius/transfer-to-nsi.out.yaml"}


def mapping_example(file: str, name: str) -> dict[str, Any]:
    _, tree = read_yaml(ROOT / "mappings" / file, Problems(file))
    [found] = [e for e in plain(tree)["inbound"]["examples"] if e["name"].startswith(name)]
    output: dict[str, Any] = found["output"]
    return output


def carried(document: Any) -> set[str]:
    """The categories of the fields a canonical document fills."""
    paths = categories_of(CONTRACTS).paths
    found = set()

    def walk(value: Any, where: tuple[str, ...]) -> None:
        category = paths.get("/" + "/".join(where))
        if category is not None:
            found.add(category)
        elif isinstance(value, dict):
            for key, child in value.items():
                walk(child, (*where, key))
        elif isinstance(value, list):
            for child in value:
                walk(child, (*where, "*"))

    walk(document, ())
    return found


@pytest.mark.parametrize(("file", "name", "sender", "receiver"), FLOWS,
                         ids=[f"{s}->{r}:{n}" for _, n, s, r in FLOWS])
def test_the_shipped_agreements_let_the_demo_and_e2e_flows_through(
        file: str, name: str, sender: str, receiver: str) -> None:
    document = mapping_example(file, name)
    document["sender"]["partner"], document["receiver"]["partner"] = sender, receiver
    document["consent"]["scope"]["receivers"] = [receiver]
    registry = AgreementRegistry(SHIPPED, CONTRACTS)
    agreement = registry.covering(
        sender=sender, receiver=receiver, purpose=document["kind"],
        service_types=[s["type"] for s in document.get("services", [])], on=TODAY)
    # Everything the partner's mapping fills is a category the agreement allows ...
    assert carried(document) <= agreement.categories[document["kind"]]
    # ... the consent gate lets it out, and the receiver's mapping can still write it.
    admitted = admit(document, agreements=registry, contracts=CONTRACTS, today=TODAY)
    assert admitted.agreement == agreement
    checked = check_mapping_file(ROOT / "mappings" / OUTBOUND[receiver.split("-")[0],
                                                              document["kind"]],
                                 SchemaView(CONTRACTS))
    assert checked.ok, checked.problems
    assert compile_mapping(checked).outbound(admitted.document)


def test_the_demo_referral_is_let_through_to_progres() -> None:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from demo_walkthrough import REFERRAL
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    registry = AgreementRegistry(SHIPPED, CONTRACTS)
    admitted = admit(REFERRAL, agreements=registry, contracts=CONTRACTS, today=TODAY)
    assert admitted.agreement.id == "demo-caseworker-app-progres-eth"
    assert "risk_level" not in admitted.document["case"]


def test_referrals_carry_fewer_categories_than_transfers() -> None:
    in_force = AgreementRegistry(SHIPPED, CONTRACTS).in_force()
    referral = max(len(a.categories["referral"]) for a in in_force if "referral" in a.purposes)
    transfer = min(len(a.categories["transfer"]) for a in in_force if "transfer" in a.purposes)
    assert referral < transfer


def test_the_example_in_the_docs_passes_its_check(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "agreements.md").read_text(encoding="utf-8")
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    agreement, problems = check_agreement_file(
        write(tmp_path, "isp-ssd-juba-gbv-2026", text=example), CONTRACTS)
    assert problems == [] and agreement is not None
    assert agreement.outside_consent == "refuse"


def test_a_file_replaced_whole_is_seen_even_with_the_same_size_and_time(tmp_path: Path) -> None:
    path = write(tmp_path)
    registry = AgreementRegistry(tmp_path, CONTRACTS)
    registry.refresh()
    stat = path.stat()
    draft = tmp_path / "isp-a-b.draft"
    draft.write_text(agreement_text().replace("retention_days: 365", "retention_days: 730"))
    os.utime(draft, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert draft.stat().st_size == stat.st_size
    draft.replace(path)  # as an editor or a deployment script saving atomically does
    [agreement] = registry.in_force()
    assert agreement.retention_days == 730
