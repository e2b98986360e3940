"""The shipped proGres mappings against the proGres sandbox, through the real adapter.

Canonical referrals and transfers go out (referral-to-interop-referral.out.yaml,
transfer-to-dtr.out.yaml), the adapter creates them in the sandbox over HTTP and reads
them back, and the columns must have landed. Statuses proGres staff set through the
sandbox's own API come back through discovery and the status mappings as valid status
events; referrals and Data Transfer Requests raised in proGres come in as valid canonical
documents; and canonical statuses sent to proGres set the right status reason there.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.progres.adapter import REFERRALS, TRANSFERS, ProgresAdapter
from gateway.contracts import Contracts
from gateway.mapping.translator import MappingTranslator
from sandboxes.progres.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app
from sandboxes.progres.schema import ReferralStatus as R
from sandboxes.progres.schema import TransferStatus as T
from sandboxes.progres.seed import individual_id, intervention_type_id, sid
from servers import LiveServer

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "contracts" / "examples" / "referral"
API = "/api/data/v9.2"
UNICEF = sid("progres_partner:unicef")          # primero-ssd in mappings/progres/codes/partner
CP_UNIT = sid("businessunit:cp")
TESTA = individual_id("testa")
TESTA_BIA = sid("progres_bestinterestsassessment:testa")
SECTIONS = {"referral": REFERRALS, "transfer": TRANSFERS}


# -- fixtures and helpers -------------------------------------------------------------------

@pytest.fixture
def progres(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "progres.db")) as server:
        yield server


@pytest.fixture
def adapter(progres: LiveServer) -> Iterator[ProgresAdapter]:
    client = ProgresAdapter(progres.url, client_id=DEFAULT_CLIENT_ID,
                            client_secret=DEFAULT_CLIENT_SECRET, timeout=10, cursor_overlap=2)
    yield client
    client.close()


@pytest.fixture(scope="module")
def contracts() -> Contracts:
    return Contracts(ROOT / "contracts")


@pytest.fixture(scope="module")
def translator(contracts: Contracts) -> MappingTranslator:
    return MappingTranslator(ROOT / "mappings", contracts=contracts)


def log_in(server: LiveServer, client_id: str, secret: str) -> httpx.Client:
    """A proGres user's own session, the way a proGres form calls the Dataverse API."""
    answer = httpx.post(f"{server.url}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": f"{server.url}/.default"})
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=f"{server.url}{API}", timeout=10, headers={
        "Authorization": f"Bearer {answer.json()['access_token']}", "OData-Version": "4.0",
        "Accept": "application/json"})


@pytest.fixture
def caseworker(progres: LiveServer) -> Iterator[httpx.Client]:
    with log_in(progres, "progres-caseworker", "caseworker-secret") as client:
        yield client


@pytest.fixture
def reviewer(progres: LiveServer) -> Iterator[httpx.Client]:
    with log_in(progres, "progres-reviewer", "reviewer-secret") as client:
        yield client


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / name).read_text()))


def targets_progres() -> list[str]:
    """The valid canonical examples written for proGres (as receiver or as the DTR kind)."""
    return sorted(p.name for p in EXAMPLES.glob("valid-*progres*.json"))


def gateway_id() -> str:
    return f"cbr-{uuid.uuid4()}"


def move(staff: httpx.Client, native_id: str, **columns: Any) -> None:
    """A proGres user changes the row (as the proGres form would)."""
    answer = staff.patch(f"/{native_id}", json=columns, headers={"If-Match": "*"})
    assert answer.status_code == 204, answer.text


def row_of(staff: httpx.Client, native_id: str) -> dict[str, Any]:
    answer = staff.get(f"/{native_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def progres_id(staff: httpx.Client, guid: str) -> str:
    return str(row_of(staff, f"progres_individuals({guid})")["progres_id"])


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def assert_landed(sent: dict[str, Any], row: dict[str, Any]) -> None:
    """Every column the mapping produced is on the row proGres stored, as sent."""
    for column, value in sent.items():
        if column.endswith("@odata.bind"):
            navprop = column.removesuffix("@odata.bind")
            assert row[f"_{navprop}_value"] == value.rsplit("(", 1)[1].rstrip(")"), column
        elif column.endswith("date") and isinstance(value, str) and "T" in value:
            assert utc(row[column]) == utc(value), column
        else:
            assert row[column] == value, column


class Watcher:
    """Discovery as the gateway's poller runs it: one cursor, changes of one row at a time."""

    def __init__(self, adapter: ProgresAdapter, translator: MappingTranslator,
                 contracts: Contracts) -> None:
        self.adapter, self.translator, self.contracts = adapter, translator, contracts
        self.cursor = adapter.discover(cursor=None).cursor

    def changes(self) -> list[Any]:
        found = self.adapter.discover(cursor=self.cursor)
        self.cursor = found.cursor
        return list(found.changes)

    def status(self, kind: str, native_id: str, referral_id: str | None) -> dict[str, Any]:
        """The one status change proGres reports for the row, as a checked status event."""
        changes = [c for c in self.changes() if c.native_id == native_id]
        assert [(c.kind, c.referral_id) for c in changes] == [("status", referral_id)]
        event = self.translator.status_in("progres", kind, changes[0].record)
        assert self.contracts.validate("status-event", event) == [], event
        return event


def deliver(adapter: ProgresAdapter, translator: MappingTranslator, kind: str,
            document: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """What the worker does: outbound mapping, then create; (referral id, native id, native)."""
    native, _ = translator.outbound("progres", kind, document)
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind=kind, record=native)
    assert native_id.startswith(f"{SECTIONS[kind]}(")
    return referral_id, native_id, native


def raise_referral(staff: httpx.Client) -> str:
    """A proGres caseworker refers Testa (a fictional child) to UNICEF from her BIA."""
    made = staff.post(f"/{REFERRALS}", json={
        "progres_interoperabilityreferralrouteto": 125080000,  # Partner
        "progres_partnerid@odata.bind": f"/progres_partners({UNICEF})",
        "progres_individualid@odata.bind": f"/progres_individuals({TESTA})",
        "progres_caseid@odata.bind": f"/progres_cases({sid('progres_case:testa')})",
        "regardingobjectid_progres_bestinterestsassessment@odata.bind":
            f"/progres_bestinterestsassessments({TESTA_BIA})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({intervention_type_id('ALTC')})",
        "progres_urgency": 125080001, "progres_duedate": "2026-12-01",
        "progres_reasonforreferral": "<p>Fictional: needs interim care while tracing runs.</p>",
        "progres_consentobtained": True, "progres_consentdate": "2026-09-15",
        "progres_consentgivenby": 125080003, "progres_consentform": 125080000,
        "progres_childassent": True, "statuscode": R.PENDING_REVIEW})
    assert made.status_code == 204, made.text
    native_id = made.headers["OData-EntityId"].rsplit("/", 1)[1]
    move(staff, native_id, statuscode=R.PENDING_ACKNOWLEDGEMENT)  # the review let it out
    return native_id


def raise_dtr(staff: httpx.Client) -> str:
    """A proGres caseworker asks UNICEF to take over Testa's case with its CP file."""
    made = staff.post(f"/{TRANSFERS}", json={
        "progres_partnerid@odata.bind": f"/progres_partners({UNICEF})",
        "progres_individualid@odata.bind": f"/progres_individuals({TESTA})",
        "progres_caseid@odata.bind": f"/progres_cases({sid('progres_case:testa')})",
        "progres_transferreason": "<p>Fictional: the family moved to the UNICEF area.</p>",
        "progres_transferrelatedchildprotectioncases": True,
        "progres_consentobtained": True, "progres_consentdate": "2026-09-15",
        "progres_consentgivenby": 125080003, "progres_consentform": 125080000,
        "statuscode": T.PENDING_DECISION})
    assert made.status_code == 204, made.text
    return made.headers["OData-EntityId"].rsplit("/", 1)[1]


# -- canonical → proGres ---------------------------------------------------------------------

def test_the_contract_examples_for_progres_are_there() -> None:
    assert targets_progres() == ["valid-primero-to-progres-referral.json",
                                 "valid-progres-data-transfer-request.json"]


@pytest.mark.parametrize("name", targets_progres())
def test_a_canonical_example_lands_in_progres_as_sent(
        name: str, adapter: ProgresAdapter, translator: MappingTranslator,
        caseworker: httpx.Client) -> None:
    document = example(name)
    kind = document["kind"]
    referral_id, native_id, native = deliver(adapter, translator, kind, document)
    record = adapter.read(native_id=native_id)
    row = record[kind]
    assert_landed(native[kind], row)
    assert row["progres_orgreferralid"] == referral_id
    assert row["progres_direction"] == 125080001  # Incoming
    assert (row["progres_givenname"], row["progres_familyname"], row["progres_dateofbirth"],
            row["progres_sex"]) == ("Amani", "Testcase", "2013-06-01", 125080000)
    assert row["progres_individualreference"] == "ETH-25-000123"
    assert row["_progres_individualid_value"] is None  # not registered here: for a reviewer
    assert (row["progres_consentgivenby"], row["progres_consentform"],
            row["progres_consentdate"], row["progres_childassent"]) == (
        125080003, 125080000, "2025-03-01", True)
    event = translator.status_in("progres", kind, {kind: row})
    if kind == "referral":
        assert row["statuscode"] == R.PENDING_ACKNOWLEDGEMENT
        assert row["_progres_interventiontype_value"] == intervention_type_id("FTR")
        assert row["_progres_assignedunitid_value"] == CP_UNIT
        assert row["progres_interoperabilityreferralrouteto"] == 125080001  # Unit
        assert (row["progres_urgency"], row["progres_duedate"]) == (125080001, "2025-03-17")
        assert utc(row["progres_referraldate"]) == utc(document["requested_at"])
        assert row["progres_reasonforreferral"] == document["reason"]
        assert row["progres_sendingorganization"] == "irc-gambella"  # not listed: kept
        assert row["progres_sendername"] == "cw.testuser"
        assert row["progres_referralnotes"] == document["case"]["summary"]
    else:
        assert row["statuscode"] == T.PENDING_DECISION
        assert (row["progres_transferrelatedchildprotectioncases"],
                row["progres_transferrelatedrsdcases"],
                row["progres_transferrelatedfraudcases"]) == (True, True, None)
    assert event == {"status": "delivered", "source_status": row[
        "statuscode@OData.Community.Display.V1.FormattedValue"], "occurred_at": row["modifiedon"]}


def test_a_referral_for_a_registered_child_is_linked_to_her_individual(
        adapter: ProgresAdapter, translator: MappingTranslator,
        caseworker: httpx.Client) -> None:
    document = copy.deepcopy(example("valid-primero-to-progres-referral.json"))
    document["subject"]["identifiers"][1]["value"] = progres_id(caseworker, TESTA)
    document["services"] = [{"type": "best_interests_assessment", "urgency": "emergency"}]
    _, native_id, _ = deliver(adapter, translator, "referral", document)
    record = adapter.read(native_id=native_id)
    assert record["referral"]["_progres_individualid_value"] == TESTA
    assert record["individual"]["progres_givenname"] == "Testa"
    assert record["referral"]["_progres_interventiontype_value"] == intervention_type_id("BIA")
    assert record["referral"]["progres_urgency"] == 125080002


# -- proGres staff statuses → canonical status events --------------------------------------

def test_every_referral_status_proGres_staff_set_reads_back_as_its_canonical_state(
        adapter: ProgresAdapter, translator: MappingTranslator, contracts: Contracts,
        caseworker: httpx.Client, reviewer: httpx.Client) -> None:
    document = example("valid-primero-to-progres-referral.json")
    watch = Watcher(adapter, translator, contracts)

    # Flow 1: acknowledged, accepted, started and completed by proGres staff.
    referral_id, native_id, _ = deliver(adapter, translator, "referral", document)
    assert watch.changes() == []  # the gateway's own create is no news
    steps: list[tuple[httpx.Client, dict[str, Any], str, str]] = [
        (caseworker, {"statuscode": R.PENDING_ACTION}, "acknowledged", "Pending Action"),
        (reviewer, {"statuscode": R.ACCEPTED}, "accepted", "Accepted"),
        (caseworker, {"statuscode": R.IN_PROGRESS}, "in_progress", "In Progress"),
        (caseworker, {"statuscode": R.COMPLETED, "progres_outcome": 125080000,
                      "progres_outcomenotes": "Fictional: mother traced in Kule."},
         "completed", "Completed"),
    ]
    for staff, columns, state, label in steps:
        move(staff, native_id, **columns)
        event = watch.status("referral", native_id, referral_id)
        assert (event["status"], event["source_status"]) == (state, label)
    assert event["outcome"] == {"result": "successful"}
    assert event["note"] == "Fictional: mother traced in Kule."

    # Rejected by the reviewer, with proGres's reason.
    referral_id, native_id, _ = deliver(adapter, translator, "referral", document)
    move(reviewer, native_id, statuscode=R.REJECTED,
         progres_interoperabiltyreferralrejectionreason=125080000,
         progres_interoperabilityreferralrejectionomment="Fictional: no such person here.")
    event = watch.status("referral", native_id, referral_id)
    assert (event["status"], event["reason"]) == ("rejected", {
        "code": "individual_not_found", "text": "Fictional: no such person here."})

    # Delivery failed in proGres, then cancelled there.
    referral_id, native_id, _ = deliver(adapter, translator, "referral", document)
    for code, state in ((R.DELIVERY_FAILED, "failed"), (R.CANCELLED, "withdrawn")):
        move(caseworker, native_id, statuscode=code)
        assert watch.status("referral", native_id, referral_id)["status"] == state


def test_every_dtr_status_proGres_staff_set_reads_back_as_its_canonical_state(
        adapter: ProgresAdapter, translator: MappingTranslator, contracts: Contracts,
        caseworker: httpx.Client, reviewer: httpx.Client) -> None:
    document = example("valid-progres-data-transfer-request.json")
    watch = Watcher(adapter, translator, contracts)

    referral_id, native_id, _ = deliver(adapter, translator, "transfer", document)
    steps = [(T.PENDING_TRANSFER, "accepted", "Pending Transfer"),
             (T.TRANSFER_FAILED, "failed", "Transfer failed"),
             (T.PENDING_TRANSFER, "accepted", "Pending Transfer"),
             (T.TRANSFERRED, "completed", "Transferred")]
    for code, state, label in steps:
        move(reviewer, native_id, statuscode=code)
        event = watch.status("transfer", native_id, referral_id)
        assert (event["status"], event["source_status"]) == (state, label)
    assert event["outcome"] == {"result": "successful"}

    referral_id, native_id, _ = deliver(adapter, translator, "transfer", document)
    move(reviewer, native_id, statuscode=T.REQUEST_REJECTED, progres_rejectionreason=125080002,
         progres_decisioncomment="Fictional: already transferred last month.")
    event = watch.status("transfer", native_id, referral_id)
    assert (event["status"], event["reason"]) == ("rejected", {
        "code": "duplicate", "text": "Fictional: already transferred last month."})

    referral_id, native_id, _ = deliver(adapter, translator, "transfer", document)
    move(caseworker, native_id, statuscode=T.CANCELLED)
    assert watch.status("transfer", native_id, referral_id)["status"] == "withdrawn"


# -- proGres → canonical, and the answers going back to proGres ------------------------------

def test_a_referral_and_a_dtr_raised_in_progres_come_in_as_valid_documents(
        adapter: ProgresAdapter, translator: MappingTranslator, contracts: Contracts,
        caseworker: httpx.Client) -> None:
    watch = Watcher(adapter, translator, contracts)
    referral = raise_referral(caseworker)
    transfer = raise_dtr(caseworker)
    found = {c.kind: c for c in watch.changes()}
    assert sorted(found) == ["referral", "transfer"]
    assert (found["referral"].native_id, found["transfer"].native_id) == (referral, transfer)
    bia_number = row_of(caseworker, f"progres_bestinterestsassessments({TESTA_BIA})")[
        "progres_bianumber"]
    testa_id = progres_id(caseworker, TESTA)

    for kind, change in found.items():
        document, _ = translator.inbound("progres", kind, change.record)
        document["sender"]["partner"] = "progres-eth"  # what the poller does
        assert contracts.validate("referral", document) == [], document
        assert document["kind"] == kind
        assert document["receiver"] == {"partner": "primero-ssd"}
        assert document["consent"]["scope"]["receivers"] == ["primero-ssd"]
        assert document["consent"]["scope"]["purposes"] == [kind]
        assert document["consent"]["given_by"] == "caregiver"
        subject = document["subject"]
        assert (subject["given_name"], subject["family_name"], subject["sex"],
                subject["is_minor"]) == ("Testa", "Fictionalia", "female", True)
        assert {"system": "progres_individual", "value": testa_id} in subject["identifiers"]
        assert document["case"]["module"] == "child_protection"
    referral_doc, _ = translator.inbound("progres", "referral", found["referral"].record)
    assert referral_doc["source_record"] == {"type": "bia", "reference": bia_number}
    assert referral_doc["consent"]["bia_reference"] == bia_number
    assert referral_doc["services"] == [
        {"type": "alternative_care", "urgency": "urgent", "due_date": "2026-12-01"}]
    assert referral_doc["external_reference"].startswith("REF-IOP-DAD-")
    transfer_doc, _ = translator.inbound("progres", "transfer", found["transfer"].record)
    assert transfer_doc["transfer"]["include_related"] == ["child_protection"]
    assert transfer_doc["external_reference"].startswith("DTR-DAD-")


@pytest.mark.parametrize(("kind", "events", "statuscode"), [
    ("referral", [{"status": "accepted"}], R.ACCEPTED),
    ("referral", [{"status": "accepted"}, {"status": "completed", "outcome": {
        "result": "not_successful", "reason": "Fictional: child moved on."}}], R.COMPLETED),
    ("referral", [{"status": "rejected", "reason": {
        "code": "lack_of_capacity", "text": "Fictional: no caseworker free."}}], R.REJECTED),
    ("referral", [{"status": "withdrawn"}], R.CANCELLED),
    ("transfer", [{"status": "accepted", "note": "Fictional: allocated."}], T.PENDING_TRANSFER),
    ("transfer", [{"status": "accepted"}, {"status": "completed"}], T.TRANSFERRED),
    ("transfer", [{"status": "rejected", "reason": {"code": "risk_concerns"}}],
     T.REQUEST_REJECTED),
    ("transfer", [{"status": "withdrawn"}], T.CANCELLED),
])
def test_a_canonical_status_sent_to_progres_sets_its_status_reason(
        kind: str, events: list[dict[str, Any]], statuscode: int, adapter: ProgresAdapter,
        translator: MappingTranslator, contracts: Contracts,
        caseworker: httpx.Client) -> None:
    native_id = raise_referral(caseworker) if kind == "referral" else raise_dtr(caseworker)
    referral_id = gateway_id()
    watch = Watcher(adapter, translator, contracts)

    # The gateway took it: the receiver's system stored it. Nothing changes in proGres but
    # the gateway's referral id, stamped by the adapter (an unmapped state does the same).
    assert translator.status_out("progres", kind, {"status": "submitted"}) == {}
    delivered = translator.status_out("progres", kind, {"status": "delivered"})
    adapter.update_status(native_id=native_id, referral_id=referral_id, status=delivered)
    row = row_of(caseworker, native_id)
    assert row["progres_orgreferralid"] == referral_id
    assert row["statuscode"] == (R.PENDING_ACKNOWLEDGEMENT if kind == "referral"
                                 else T.PENDING_DECISION)

    for event in events:
        assert contracts.validate("status-event", event) == []
        native = translator.status_out("progres", kind, event)
        adapter.update_status(native_id=native_id, referral_id=referral_id, status=native)
    row = row_of(caseworker, native_id)
    assert row["statuscode"] == statuscode
    assert watch.changes() == []  # the gateway's own writes are not reported back
    last = events[-1]
    if kind == "referral" and last["status"] == "rejected":
        assert row["progres_interoperabiltyreferralrejectionreason"] == 125080003
        assert row["progres_interoperabilityreferralrejectionomment"] == last["reason"]["text"]
    if kind == "referral" and last["status"] == "completed":
        assert (row["progres_outcome"], row["progres_outcomenotes"]) == (
            125080001, last["outcome"]["reason"])
    if kind == "transfer" and last["status"] == "rejected":
        assert row["progres_rejectionreason"] == 125080004  # Other
    if kind == "transfer" and last.get("note"):
        assert row["progres_decisioncomment"] == last["note"]
    # What proGres now shows reads back as the state that was sent.
    assert translator.status_in("progres", kind, {kind: row})["status"] == last["status"]


def test_names_and_the_owning_unit_travel_both_ways_with_progres(
        adapter: ProgresAdapter, translator: MappingTranslator, contracts: Contracts,
        caseworker: httpx.Client) -> None:
    # Out: every name the sender has lands on proGres's copy of the person.
    document = example("valid-primero-to-progres-referral.json")
    document["subject"].update(middle_name="Amali", other_names="Nyakima")
    _, native_id, sent = deliver(adapter, translator, "referral", document)
    row = row_of(caseworker, native_id)
    assert (row["progres_middlename"], row["progres_commonyusedname"]) == ("Amali", "Nyakima")
    assert sent["referral"]["progres_commonyusedname"] == "Nyakima"

    # In: the unit that owns the row in proGres is the sender's unit, on both kinds.
    watch = Watcher(adapter, translator, contracts)
    raise_referral(caseworker)
    raise_dtr(caseworker)
    found = {c.kind: c for c in watch.changes()}
    for kind in ("referral", "transfer"):
        inbound, _ = translator.inbound("progres", kind, found[kind].record)
        assert inbound["sender"]["unit"] == "Child Protection Unit", kind
