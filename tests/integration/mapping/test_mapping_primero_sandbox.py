"""The shipped Primero mappings against Primero sandboxes, through the real adapter.

The mappings are called the way the gateway calls them (`MappingTranslator`: the worker's
`outbound` and `status_out`, the poller's `inbound` and `status_in`), and what they give is
handed to, or read from, the real `PrimeroAdapter` over HTTP:

- one Primero (a Gambella deployment): a referral sent out reads back as itself, and
  statuses read back as the canonical statuses they stand for;
- two Primero instances, `cpims-ssd` (partner primero-ssd) and `cpims-uga` (primero-uga):
  a cross-border transfer raised in one to the gateway user arrives in the other as a case
  and its transfer, its answers travel back and close the sender's part; a referral a
  South Sudan caseworker raises to UNHCR Ethiopia (proGres) takes every status proGres
  can send back; a referral from proGres arrives at the module's intake user, whose
  rejection with a reason reads back with a canonical reason code.

No adapter here has an `intake_user`: the mappings must name the recipient themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import NativeChange
from adapters.primero import PrimeroAdapter
from gateway.contracts import Contracts
from gateway.mapping.translator import MappingTranslator
from sandboxes.primero.app import create_app
from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from servers import LiveServer

ROOT = Path(__file__).resolve().parents[3]
CONTRACTS = Contracts(ROOT / "contracts")


@pytest.fixture
def primero(tmp_path: Path) -> Iterator[LiveServer]:
    app = create_app(database=tmp_path / "primero.db", instance="cpims-gambella",
                     agency="agency-unicef-gambella")
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def adapter(primero: LiveServer) -> Iterator[PrimeroAdapter]:
    client = PrimeroAdapter(primero.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
    yield client
    client.close()


@pytest.fixture(scope="module")
def ssd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The South Sudan CPIMS+ (partner primero-ssd)."""
    app = create_app(database=tmp_path_factory.mktemp("ssd") / "primero.db",
                     instance="cpims-ssd")
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def uga(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The Uganda CPIMS+ (partner primero-uga)."""
    app = create_app(database=tmp_path_factory.mktemp("uga") / "primero.db",
                     instance="cpims-uga")
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def ssd_adapter(ssd: LiveServer) -> Iterator[PrimeroAdapter]:
    client = PrimeroAdapter(ssd.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
    yield client
    client.close()


@pytest.fixture(scope="module")
def uga_adapter(uga: LiveServer) -> Iterator[PrimeroAdapter]:
    client = PrimeroAdapter(uga.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
    yield client
    client.close()


@pytest.fixture(scope="module")
def translator() -> MappingTranslator:
    return MappingTranslator(ROOT / "mappings", contracts=CONTRACTS)


def log_in(server: LiveServer, user_name: str) -> httpx.Client:
    """A Primero user's own session, as the Primero UI would have it."""
    answer = httpx.post(f"{server.url}/api/v2/tokens",
                        json={"user": {"user_name": user_name, "password": SANDBOX_PASSWORD}})
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=f"{server.url}/api/v2", timeout=10,
                        headers={"Authorization": f"Bearer {answer.json()['token']}"})


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


def gateway_id() -> str:
    return f"cbr-{uuid.uuid4()}"


def open_case(session: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A fictional child's case, opened by the logged-in caseworker, with consent."""
    return ok(session.post("/cases", json={"data": {
        "module_id": "primeromodule-cp", "name_first": "Kiden", "name_last": "Testwell",
        "sex": "female", "date_of_birth": "2012-04-03", "risk_level": "high",
        "protection_concerns": ["refugee"], "consent_source": "caregiver",
        "consent_for_services": True, "disclosure_other_orgs": True,
        "services_section": [{"service_type": "family_seunification_service",
                              "service_response_type": "service_provision",
                              "service_response_timeframe": "1_day"}],
        **fields}}))


def changes_of(adapter: PrimeroAdapter, cursor: str, case_id: str) -> list[NativeChange]:
    """What a poll after `cursor` finds on one case."""
    found = adapter.discover(cursor=cursor).changes
    return [c for c in found if c.native_id.startswith(f"{case_id}/")]


def native_status(adapter: PrimeroAdapter, native_id: str) -> str:
    record = adapter.read(native_id=native_id)
    transition = record.get("referral") or record["transfer"]
    return str(transition["status"])


# --- one Primero ---------------------------------------------------------------------------

def test_a_referral_sent_to_primero_reads_back_as_the_same_referral(
        adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    outbound = translator.registry.get("primero", "referral-to-case")
    sent = outbound.mapping.blocks["outbound"].examples[0].input
    native, content_hash = translator.outbound("primero", "referral", sent)
    assert content_hash == outbound.content_hash

    native_id = adapter.create(referral_id=gateway_id(), kind="referral", record=native)
    stored = adapter.read(native_id=native_id)
    assert stored["referral"]["transitioned_to"] == "cp_manager"  # named by the mapping
    back, _ = translator.inbound("primero", "referral", stored)

    subject = {k: v for k, v in sent["subject"].items() if k != "birth_date_precision"}
    assert {k: back["subject"][k] for k in subject if k != "identifiers"} == {
        k: v for k, v in subject.items() if k != "identifiers"}
    assert back["subject"]["birth_date_precision"] == "estimated"  # Primero: "year" is estimated
    progres = [i for i in back["subject"]["identifiers"] if i["system"].startswith("progres")]
    assert progres == sent["subject"]["identifiers"]
    assert back["receiver"]["partner"] == sent["receiver"]["partner"]
    assert "user" not in back["receiver"]  # the recipient account is not a receiver's user
    assert back["case"]["module"] == sent["case"]["module"]
    assert back["case"]["risk_level"] == "high"  # Primero has no very_high
    assert [s["type"] for s in back["services"]] == ["alternative_care", "medical_care"]
    assert [s["urgency"] for s in back["services"]] == ["emergency", "urgent"]
    assert back["consent"]["given_by"] == sent["consent"]["given_by"]
    assert back["consent"]["scope"]["purposes"] == ["referral"]


def test_a_child_known_by_age_reaches_primero_as_a_child_with_all_names_and_the_sender(
        adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    outbound = translator.registry.get("primero", "referral-to-case")
    [sent] = [e.input for e in outbound.mapping.blocks["outbound"].examples
              if e.name.startswith("a child known by age only")]
    native, _ = translator.outbound("primero", "referral", sent)
    stored = adapter.read(native_id=adapter.create(referral_id=gateway_id(), kind="referral",
                                                   record=native))
    case = stored["case"]
    assert (case["age"], case["name_middle"], case["name_other"]) == (
        10, "Deng", "Lulu, Deng Lual")
    assert (case["casebridge_sender_partner"], case["casebridge_sender_user"]) == (
        "progres-eth", "unhcr.cw")
    assert case["services_section"][0]["service_appointment_date"] == "2025-06-01"
    back, _ = translator.inbound("primero", "referral", stored)
    assert back["subject"]["other_names"] == "Lulu, Deng Lual"
    assert back["subject"]["age"]["years"] == 10
    assert back["services"][0]["due_date"] == "2025-06-01"


def test_statuses_set_in_primero_read_back_as_canonical_statuses(
        primero: LiveServer, adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    sent = translator.registry.get("primero", "referral-to-case").mapping.blocks[
        "outbound"].examples[0].input
    native, _ = translator.outbound("primero", "referral", sent)
    native_id = adapter.create(referral_id=gateway_id(), kind="referral", record=native)
    case_id, _, transition_id = native_id.split("/")
    assert translator.status_in("primero", "referral", adapter.read(native_id=native_id))[
        "status"] == "delivered"
    with log_in(primero, "cp_manager") as receiver:
        for primero_status, canonical in (("accepted", "accepted"), ("done", "completed")):
            ok(receiver.patch(f"/cases/{case_id}/referrals/{transition_id}",
                              json={"data": {"status": primero_status}}))
            event = translator.status_in("primero", "referral",
                                         adapter.read(native_id=native_id))
            assert (event["status"], event["source_status"]) == (canonical, primero_status)
            assert CONTRACTS.validate("status-event", event) == []


def test_canonical_statuses_sent_to_primero_read_back_as_themselves(
        primero: LiveServer, adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    with log_in(primero, "cp_worker") as sender:
        case_id = sender.get("/cases", params={"per": 1}).json()["data"][0]["id"]
        made = ok(sender.post(f"/cases/{case_id}/referrals", json={"data": {
            "transitioned_to": GATEWAY_USER, "consent_overridden": True,
            "notes": "Fictional referral to the gateway."}}))
    native_id = f"{case_id}/referrals/{made['id']}"
    for canonical in ("accepted", "completed"):
        body = translator.status_out("primero", "referral", {"status": canonical})
        adapter.update_status(native_id=native_id, referral_id="r-1", status=body)
        event = translator.status_in("primero", "referral", adapter.read(native_id=native_id))
        assert event["status"] == canonical


# --- flow 1: a South Sudan referral to proGres Ethiopia, and what proGres sends back --------

def raise_referral(ssd: LiveServer, ssd_adapter: PrimeroAdapter,
                   translator: MappingTranslator) -> tuple[NativeChange, dict[str, Any]]:
    """A caseworker refers a child to UNHCR Ethiopia through the gateway user; one poll."""
    cursor = ssd_adapter.discover(cursor=None).cursor
    assert cursor is not None
    with log_in(ssd, "cp_worker") as caseworker:
        case = open_case(caseworker)
        ok(caseworker.post(f"/cases/{case['id']}/referrals", json={"data": {
            "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
            "service": "family_seunification_service",
            "service_record_id": case["services_section"][0]["unique_id"],
            "notes": "Cross-border tracing; the mother may be in Gambella."}}))
    [change] = changes_of(ssd_adapter, cursor, case["id"])
    assert (change.kind, change.referral_id) == ("referral", None)
    canonical, _ = translator.inbound("primero", change.kind, change.record)
    return change, canonical


def test_a_referral_raised_to_the_gateway_user_becomes_a_referral_to_progres(
        ssd: LiveServer, ssd_adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    change, canonical = raise_referral(ssd, ssd_adapter, translator)
    assert CONTRACTS.validate("referral", canonical) == []
    assert canonical["kind"] == "referral"
    assert canonical["sender"] == {"partner": "primero-ssd", "user": "cp_worker",
                                   "unit": "usergroup-cpims-ssd"}
    assert canonical["receiver"] == {"partner": "progres-eth"}
    assert canonical["consent"]["scope"]["receivers"] == ["progres-eth"]
    assert canonical["consent"]["scope"]["purposes"] == ["referral"]
    assert canonical["services"] == [{"type": "family_tracing_reunification",
                                      "urgency": "urgent"}]
    assert canonical["external_reference"] == change.native_id.split("/")[2]


@pytest.mark.parametrize(("events", "in_primero"), [
    # proGres: Pending Acknowledgement, Pending Action, Accepted, In Progress, Completed.
    ([("delivered", {}), ("acknowledged", {}), ("accepted", {}), ("in_progress", {}),
      ("completed", {"outcome": {"result": "successful", "service_implemented": True},
                     "note": "Mother traced in a fictional camp."})],
     ["in_progress", "in_progress", "accepted", "accepted", "done"]),
    ([("delivered", {}), ("rejected", {"reason": {"code": "individual_not_match_id",
                                                  "text": "Another person"}})],
     ["in_progress", "rejected"]),
    ([("delivered", {}), ("acknowledged", {}), ("withdrawn", {})],
     ["in_progress", "in_progress", "revoked"]),
], ids=["completed", "rejected", "withdrawn"])
def test_progres_statuses_sent_back_to_the_sending_primero(
        ssd: LiveServer, ssd_adapter: PrimeroAdapter, translator: MappingTranslator,
        events: list[tuple[str, dict[str, Any]]], in_primero: list[str]) -> None:
    change, _ = raise_referral(ssd, ssd_adapter, translator)
    seen = []
    for state, details in events:
        body = translator.status_out("primero", "referral", {"status": state, **details})
        ssd_adapter.update_status(native_id=change.native_id, referral_id="cbr-flow-1",
                                  status=body)
        seen.append(native_status(ssd_adapter, change.native_id))
        # Polled back from the sender, each reads as the state it was set for (or an
        # earlier one Primero cannot tell apart, which the gateway takes as a repeat).
        event = translator.status_in("primero", "referral",
                                     ssd_adapter.read(native_id=change.native_id))
        assert CONTRACTS.validate("status-event", event) == []
    assert seen == in_primero
    stored = ssd_adapter.read(native_id=change.native_id)["referral"]
    if "rejected" in seen:
        assert stored["rejected_reason"] == "wrong_individual"
    if "done" in seen:
        assert stored["rejection_note"] == "Mother traced in a fictional camp."


# --- flow 2: a proGres referral of a child seen in a BIA arrives in Primero ------------------

def test_a_progres_referral_reaches_the_intake_user_whose_rejection_has_a_reason_code(
        ssd: LiveServer, ssd_adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    example = translator.registry.get("primero", "referral-to-case").mapping.blocks[
        "outbound"].examples[1]
    sent = example.input
    assert sent["sender"]["partner"] == "progres-eth" and sent["source_record"]["type"] == "bia"
    native, _ = translator.outbound("primero", "referral", sent)
    referral_id = gateway_id()
    native_id = ssd_adapter.create(referral_id=referral_id, kind="referral", record=native)
    assert ssd_adapter.create(referral_id=referral_id, kind="referral",
                              record=native) == native_id  # a retry makes nothing new
    stored = ssd_adapter.read(native_id=native_id)
    assert stored["referral"]["transitioned_to"] == "cp_manager"
    assert stored["referral"]["service"] == "child_protection_service"
    assert stored["case"]["module_id"] == "primeromodule-cp"
    assert translator.status_in("primero", "referral", stored)["status"] == "delivered"

    cursor = ssd_adapter.discover(cursor=None).cursor
    assert cursor is not None
    case_id, _, transition_id = native_id.split("/")
    with log_in(ssd, "cp_manager") as intake:
        ok(intake.patch(f"/cases/{case_id}/referrals/{transition_id}", json={"data": {
            "status": "rejected", "rejected_reason": "no_capacity"}}))
    [change] = changes_of(ssd_adapter, cursor, case_id)
    assert (change.kind, change.referral_id) == ("status", referral_id)
    event = translator.status_in("primero", "referral", change.record)
    assert CONTRACTS.validate("status-event", event) == []
    assert event["status"] == "rejected"
    assert event["reason"] == {"code": "lack_of_capacity", "text": "no_capacity"}


def test_a_progres_referral_withdrawn_is_revoked_at_the_receiving_primero(
        ssd: LiveServer, ssd_adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    sent = translator.registry.get("primero", "referral-to-case").mapping.blocks[
        "outbound"].examples[1].input
    native, _ = translator.outbound("primero", "referral", sent)
    native_id = ssd_adapter.create(referral_id=gateway_id(), kind="referral", record=native)
    body = translator.status_out("primero", "referral", {"status": "withdrawn"})
    ssd_adapter.update_status(native_id=native_id, referral_id="cbr-flow-2", status=body)
    assert native_status(ssd_adapter, native_id) == "revoked"
    event = translator.status_in("primero", "referral", ssd_adapter.read(native_id=native_id))
    assert event["status"] == "withdrawn"


# --- flow 3: a cross-border transfer from South Sudan to Uganda -----------------------------

def raise_transfer(ssd: LiveServer, ssd_adapter: PrimeroAdapter
                   ) -> tuple[str, NativeChange]:
    """A caseworker transfers a child's case to Uganda through the gateway user; one poll."""
    cursor = ssd_adapter.discover(cursor=None).cursor
    assert cursor is not None
    with log_in(ssd, "cp_worker") as caseworker:
        case = open_case(caseworker, name_first="Ayen", name_last="Sandboxdottir",
                         language=["dinka"])
        ok(caseworker.post(f"/cases/{case['id']}/transfers", json={"data": {
            "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-cpims-uga",
            "notes": "The family has settled in a fictional settlement in Uganda."}}))
    [change] = changes_of(ssd_adapter, cursor, case["id"])
    assert (change.kind, change.referral_id) == ("transfer", None)
    return case["id"], change


def deliver_transfer(uga_adapter: PrimeroAdapter, translator: MappingTranslator,
                     change: NativeChange) -> tuple[str, str, dict[str, Any]]:
    """The poller's inbound mapping, then the worker's outbound mapping and create."""
    canonical, _ = translator.inbound("primero", "transfer", change.record)
    canonical["sender"]["partner"] = "primero-ssd"  # the gateway sets the partner it polled
    referral_id = gateway_id()
    native, _ = translator.outbound("primero", "transfer", canonical)
    native_id = uga_adapter.create(referral_id=referral_id, kind="transfer", record=native)
    return referral_id, native_id, canonical


def test_a_cross_border_transfer_moves_the_case_and_closes_the_senders_part(
        ssd: LiveServer, uga: LiveServer, ssd_adapter: PrimeroAdapter,
        uga_adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    ssd_case, change = raise_transfer(ssd, ssd_adapter)
    referral_id, native_id, canonical = deliver_transfer(uga_adapter, translator, change)

    # What the poller submits: a valid canonical transfer that consent lets reach Uganda.
    assert CONTRACTS.validate("referral", canonical) == []
    assert (canonical["kind"], canonical["subtype"]) == ("transfer", "cross_border")
    assert canonical["receiver"] == {"partner": "primero-uga"}
    assert canonical["consent"]["scope"]["receivers"] == ["primero-uga"]
    assert canonical["consent"]["scope"]["purposes"] == ["transfer"]
    assert canonical["transfer"]["reason"].startswith("The family has settled")

    # Uganda holds a case and a transfer to its intake user; a retry makes nothing new.
    native, _ = translator.outbound("primero", "transfer", canonical)
    assert uga_adapter.create(referral_id=referral_id, kind="transfer",
                              record=native) == native_id
    held = uga_adapter.read(native_id=native_id)
    assert held["case"]["owned_by"] == GATEWAY_USER
    assert (held["case"]["name_first"], held["case"]["language"]) == ("Ayen", ["dinka"])
    assert held["transfer"]["transitioned_to"] == "cp_manager"
    assert held["transfer"]["transitioned_to_agency"] == "agency-cpims-uga"
    assert translator.status_in("primero", "transfer", held)["status"] == "delivered"

    # The Uganda manager accepts: ownership moves at once, so the poll reads the transfer as
    # completed (the gateway records the accepted it implies as a step passed between polls).
    cursor = uga_adapter.discover(cursor=None).cursor
    assert cursor is not None
    uga_case, _, transfer_id = native_id.split("/")
    with log_in(uga, "cp_manager") as manager:
        ok(manager.patch(f"/cases/{uga_case}/transfers/{transfer_id}",
                         json={"data": {"status": "accepted"}}))
    [answer] = changes_of(uga_adapter, cursor, uga_case)
    assert (answer.kind, answer.referral_id) == ("status", referral_id)
    event = translator.status_in("primero", "transfer", answer.record)
    assert CONTRACTS.validate("status-event", event) == []
    assert (event["status"], event["source_status"]) == ("completed", "accepted")
    assert answer.record["case"]["owned_by"] == "cp_manager"

    # South Sudan is told: its transfer is accepted, the case leaves the caseworker.
    for state in ("accepted", "completed"):  # telling it twice changes nothing
        body = translator.status_out("primero", "transfer", {"status": state})
        ssd_adapter.update_status(native_id=change.native_id, referral_id=referral_id,
                                  status=body)
    sender_side = ssd_adapter.read(native_id=change.native_id)
    assert sender_side["transfer"]["status"] == "accepted"
    assert sender_side["case"]["owned_by"] == GATEWAY_USER
    assert sender_side["case"]["previously_owned_by"] == "cp_worker"
    with log_in(ssd, "cp_worker") as caseworker:
        assert caseworker.get(f"/cases/{ssd_case}").status_code == 403
    # Polled back from the sender, its transfer reads as completed: a state the gateway has
    # already, so the report changes nothing.
    assert translator.status_in("primero", "transfer", sender_side)["status"] == "completed"


def test_a_rejected_transfer_is_told_to_the_sender_who_keeps_the_case(
        ssd: LiveServer, uga: LiveServer, ssd_adapter: PrimeroAdapter,
        uga_adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    ssd_case, change = raise_transfer(ssd, ssd_adapter)
    referral_id, native_id, _ = deliver_transfer(uga_adapter, translator, change)
    uga_case, _, transfer_id = native_id.split("/")
    with log_in(uga, "cp_manager") as manager:
        ok(manager.patch(f"/cases/{uga_case}/transfers/{transfer_id}", json={"data": {
            "status": "rejected", "rejected_reason": "risk_concerns"}}))
    event = translator.status_in("primero", "transfer", uga_adapter.read(native_id=native_id))
    assert CONTRACTS.validate("status-event", event) == []
    assert event["reason"]["code"] == "risk_concerns"

    body = translator.status_out("primero", "transfer", event)
    ssd_adapter.update_status(native_id=change.native_id, referral_id=referral_id, status=body)
    sender_side = ssd_adapter.read(native_id=change.native_id)
    assert sender_side["transfer"]["status"] == "rejected"
    assert sender_side["transfer"]["rejected_reason"] == "risk_concerns"
    assert sender_side["case"]["owned_by"] == "cp_worker"
    assert translator.status_in("primero", "transfer", sender_side)["status"] == "rejected"


def test_a_withdrawn_transfer_is_revoked_on_both_sides(
        ssd: LiveServer, ssd_adapter: PrimeroAdapter, uga_adapter: PrimeroAdapter,
        translator: MappingTranslator) -> None:
    ssd_case, change = raise_transfer(ssd, ssd_adapter)
    referral_id, native_id, _ = deliver_transfer(uga_adapter, translator, change)

    # The caseworker recalls the transfer in South Sudan: the poll reads "withdrawn" ...
    cursor = ssd_adapter.discover(cursor=None).cursor
    assert cursor is not None
    with log_in(ssd, "cp_worker") as caseworker:
        ok(caseworker.patch(f"/cases/{ssd_case}/transfers/{change.native_id.split('/')[2]}",
                            json={"data": {"status": "revoked"}}))
    [recall] = changes_of(ssd_adapter, cursor, ssd_case)
    assert translator.status_in("primero", "transfer", recall.record)["status"] == "withdrawn"

    # ... which the worker tells Uganda (and telling the sender again changes nothing).
    body = translator.status_out("primero", "transfer", {"status": "withdrawn"})
    uga_adapter.update_status(native_id=native_id, referral_id=referral_id, status=body)
    assert native_status(uga_adapter, native_id) == "revoked"
    ssd_adapter.update_status(native_id=change.native_id, referral_id=referral_id, status=body)
    assert native_status(ssd_adapter, change.native_id) == "revoked"


def test_an_accepted_transfer_carries_the_new_owner_back_to_the_sending_primero(
        ssd: LiveServer, uga: LiveServer, ssd_adapter: PrimeroAdapter,
        uga_adapter: PrimeroAdapter, translator: MappingTranslator) -> None:
    ssd_case, change = raise_transfer(ssd, ssd_adapter)
    referral_id, native_id, _ = deliver_transfer(uga_adapter, translator, change)
    uga_case, _, transfer_id = native_id.split("/")
    with log_in(uga, "cp_manager") as manager:
        ok(manager.patch(f"/cases/{uga_case}/transfers/{transfer_id}",
                         json={"data": {"status": "accepted"}}))
    held = uga_adapter.read(native_id=native_id)
    event = translator.status_in("primero", "transfer", held)
    assert CONTRACTS.validate("status-event", event) == []
    # Who holds the case in Uganda now: the manager, the agency and the manager's group.
    assert event["new_owner"] == {"user": "cp_manager",
                                  "provider": held["case"]["owned_by_agency_id"],
                                  "unit": held["case"]["owned_by_groups"][0]}
    assert event["new_owner"]["provider"] == "agency-cpims-uga"

    # South Sudan is told, and its case says where the child's case went.
    body = translator.status_out("primero", "transfer",
                                 {**event, "new_owner": {"partner": "primero-uga",
                                                         **event["new_owner"]}})
    ssd_adapter.update_status(native_id=change.native_id, referral_id=referral_id, status=body)
    sender_side = ssd_adapter.read(native_id=change.native_id)
    assert sender_side["transfer"]["status"] == "accepted"
    assert (sender_side["case"]["casebridge_new_owner_partner"],
            sender_side["case"]["casebridge_new_owner_user"]) == ("primero-uga", "cp_manager")
    # Read back from the sender, the gateway user holding the case is no new owner.
    assert "new_owner" not in translator.status_in("primero", "transfer", sender_side)
