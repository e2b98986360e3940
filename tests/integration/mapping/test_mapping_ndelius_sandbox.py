"""The shipped nDelius mappings between two nDelius sandboxes, through the real adapter.

London (N07) raises a case-transfer NSI towards Wales (N03). The adapter discovers it at
N07, nsi-to-transfer.in.yaml makes the canonical transfer (which must meet the contract and the
consent gate), transfer-to-nsi.out.yaml makes the record the adapter raises at N03. Then every
status step is done by probation staff through the sandboxes' own API, discovered, read by
transfer-status.yaml as a canonical state, and sent back through it to the other side,
where the sandbox must take it: acknowledged, accepted, a challenge on risk grounds, the
sender enforcing the transfer, completion (the person's manager moves to Wales on both
sides). A temporary move completes with the manager staying in London, and returns and
withdrawals reach the other side with their outcome.

This plays the gateway's part by hand (no database or broker): the poller's inbound and
status_in, the worker's outbound and status_out with the event as the gateway stores it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import NativeChange
from adapters.ndelius import NdeliusAdapter
from gateway.contracts import Contracts
from gateway.errors import MappingError
from gateway.mapping.translator import MappingTranslator
from gateway.protection.consent import consent_gaps
from sandboxes.ndelius.app import create_app
from servers import LiveServer

ROOT = Path(__file__).resolve().parents[3]
GATEWAY_CLIENT = ("casebridge", "casebridge-sandbox-secret")
UI = ("delius-ui", "delius-ui-sandbox-secret")
PARTNERS = {"N07": "ndelius-n07", "N03": "ndelius-n03"}


class Officer:
    """A member of probation staff working in one nDelius, as through the Delius UI."""

    def __init__(self, server: LiveServer, staff: str) -> None:
        token = httpx.post(f"{server.url}/auth/oauth/token", auth=UI,
                           params={"grant_type": "client_credentials", "username": staff})
        assert token.status_code == 200, token.text
        self.http = httpx.Client(base_url=server.url, timeout=5.0, headers={
            "Authorization": f"Bearer {token.json()['access_token']}"})

    def get(self, path: str) -> Any:
        answer = self.http.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def send(self, method: str, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        answer = self.http.request(method, path, json=body)
        assert answer.status_code == expect, answer.text
        return answer.json()

    def raise_nsi(self, body: dict[str, Any]) -> str:
        return str(self.send("POST", "/nsi", body, expect=201)["id"])

    def set_status(self, nsi_id: str, status: str, **extra: Any) -> None:
        self.send("PUT", f"/nsi/{nsi_id}/status", {"status": status, **extra})

    def nsi(self, nsi_id: str) -> Any:
        return self.get(f"/nsi/{nsi_id}")

    def manager_of(self, crn: str) -> tuple[str, str, str]:
        manager = self.get(f"/person/{crn}")["manager"]
        return (manager["provider"]["code"], manager["team"]["code"],
                manager["staff"]["code"])

    def close(self) -> None:
        self.http.close()


class Provider:
    """One probation provider: its nDelius sandbox, the gateway's adapter and poll cursor."""

    def __init__(self, code: str, server: LiveServer) -> None:
        self.code, self.server, self.partner = code, server, PARTNERS[code]
        client_id, secret = GATEWAY_CLIENT
        self.adapter = NdeliusAdapter(server.url, client_id=client_id, client_secret=secret,
                                      timeout=5.0, provider=code)
        self.cursor = self.adapter.discover(cursor=None).cursor
        self.officers: list[Officer] = []

    def officer(self, staff: str) -> Officer:
        self.officers.append(Officer(self.server, staff))
        return self.officers[-1]

    def poll(self) -> list[NativeChange]:
        """What the gateway's poller would find here since the last poll."""
        found = self.adapter.discover(cursor=self.cursor)
        self.cursor = found.cursor
        return found.changes

    def close(self) -> None:
        for officer in self.officers:
            officer.close()
        self.adapter.close()


@pytest.fixture
def london(tmp_path: Path) -> Iterator[Provider]:
    with LiveServer(create_app(database=tmp_path / "ndelius-n07.db", provider="N07")) as server:
        provider = Provider("N07", server)
        yield provider
        provider.close()


@pytest.fixture
def wales(tmp_path: Path) -> Iterator[Provider]:
    with LiveServer(create_app(database=tmp_path / "ndelius-n03.db", provider="N03")) as server:
        provider = Provider("N03", server)
        yield provider
        provider.close()


@pytest.fixture(scope="module")
def contracts() -> Contracts:
    return Contracts(ROOT / "contracts")


@pytest.fixture(scope="module")
def translator(contracts: Contracts) -> MappingTranslator:
    return MappingTranslator(ROOT / "mappings", contracts=contracts)


def new_nsi(crn: str, *, nsi_type: str = "TRF01", **form: Any) -> dict[str, Any]:
    """An NSI as a London practitioner raises it towards Wales (fictional person)."""
    return {
        "type": nsi_type, "offenderCrn": crn, "intendedProvider": "N03",
        "notes": "Moving to Cardiff to live with her sister. Engaging well on licence.",
        "transferForm": {
            "receivingPdu": "N03A", "reason": "FAM",
            "reasonDetails": "Her sister offers stable accommodation and childcare support.",
            "sentenceType": "LIC", "roshLevel": "H", "mappa": {"category": "2", "level": "2"},
            "victimContact": True,
            "proposedAddress": {"addressLine1": "14 Fictional Terrace", "addressLine2": "Flat 2",
                                "town": "Cardiff", "county": "South Glamorgan",
                                "postcode": "CF10 1AA"},
            "moveStartDate": "2027-01-11", **form},
    }


def carry_transfer(sender: Provider, receiver: Provider, translator: MappingTranslator,
                   contracts: Contracts) -> tuple[str, str, str, dict[str, Any]]:
    """Poll the sender, map the new NSI in and out, raise it at the receiver.

    Returns (referral id, sender's NSI id, receiver's NSI id, canonical transfer)."""
    [change] = sender.poll()
    assert (change.kind, change.referral_id) == ("transfer", None)
    canonical, _ = translator.inbound("ndelius", "transfer", change.record)
    canonical.setdefault("sender", {})["partner"] = sender.partner  # as the poller does
    assert contracts.validate("referral", canonical) == []
    assert consent_gaps(canonical, today=date.today()) == []
    assert canonical["kind"] == "transfer"
    assert canonical["receiver"]["partner"] == receiver.partner
    assert canonical["consent"]["scope"]["receivers"] == [receiver.partner]
    assert canonical["consent"]["scope"]["purposes"] == ["transfer"]

    referral_id = f"cbr-{uuid.uuid4().hex[:12]}"
    native, _ = translator.outbound("ndelius", "transfer", canonical)
    received = receiver.adapter.create(referral_id=referral_id, kind="transfer", record=native)
    # Delivered: the gateway tells the sender, which stamps the referral id on its NSI.
    tell(sender, change.native_id, referral_id, {"status": "delivered"}, translator)
    return referral_id, change.native_id, received, canonical


def tell(side: Provider, native_id: str, referral_id: str, event: dict[str, Any],
         translator: MappingTranslator) -> None:
    """The worker sending a stored status event to one side (occurred_at is not stored)."""
    document = {k: v for k, v in event.items() if k != "occurred_at"}
    native = translator.status_out("ndelius", "transfer", document)
    side.adapter.update_status(native_id=native_id, referral_id=referral_id, status=native)


def step(actor: Provider, other: Provider, native_ids: dict[str, str], referral_id: str,
         translator: MappingTranslator, contracts: Contracts) -> dict[str, Any]:
    """Poll the side whose staff acted, read the change as a canonical event, tell the other."""
    [change] = actor.poll()
    assert (change.kind, change.referral_id, change.native_id) == (
        "status", referral_id, native_ids[actor.code])
    event = translator.status_in("ndelius", "transfer", change.record)
    assert contracts.validate("status-event", event) == []
    tell(other, native_ids[other.code], referral_id, event, translator)
    return event


def test_a_case_transfer_is_challenged_enforced_and_completed_on_both_sides(
        london: Provider, wales: Provider, translator: MappingTranslator,
        contracts: Contracts) -> None:
    practitioner = london.officer("N07AOM1")
    practitioner.raise_nsi(new_nsi("X070002"))
    referral_id, sent, received, canonical = carry_transfer(london, wales, translator,
                                                             contracts)
    assert canonical["subtype"] == "permanent"
    assert canonical["case"]["risk_level"] == "high"
    assert canonical["case"]["protection_concerns"] == [
        "sentence-licence", "victim-contact-scheme", "mappa-category-2", "mappa-level-2"]

    # Wales holds the NSI, routed to its case-transfer SPOC, with the form as London wrote it.
    spo = wales.officer("N03ACT1")
    nsi = spo.nsi(received)
    assert (nsi["nsiType"]["code"], nsi["nsiStatus"]["code"]) == ("TRF01", "REQ")
    assert nsi["externalReference"] == referral_id
    assert nsi["manager"]["team"]["code"] == "N03ACT"
    form = nsi["transferForm"]
    assert (form["reason"]["code"], form["sentenceType"]["code"], form["roshLevel"]["code"],
            form["victimContact"], form["receivingPdu"]) == ("FAM", "LIC", "H", True, "N03A")
    assert (form["mappa"]["category"]["code"], form["mappa"]["level"]["code"]) == ("2", "2")
    assert form["proposedAddress"] == new_nsi("X070002")["transferForm"]["proposedAddress"]
    # Read back at Wales, it is the same transfer.
    back, _ = translator.inbound("ndelius", "transfer", wales.adapter.read(native_id=received))
    for key in ("kind", "subtype", "receiver", "subject", "case", "transfer", "reason",
                "consent"):
        assert back[key] == canonical[key], key
    assert practitioner.nsi(sent)["externalReference"] == referral_id
    assert practitioner.nsi(sent)["nsiStatus"]["code"] == "REQ"

    ids = {"N07": sent, "N03": received}
    spo.set_status(received, "AWAL")
    assert step(wales, london, ids, referral_id, translator, contracts)["status"] == \
        "acknowledged"
    assert practitioner.nsi(sent)["nsiStatus"]["code"] == "AWAL"

    spo.send("PUT", f"/nsi/{received}/manager", {"team": "N03AOM", "staff": "N03AOM1"})
    receiving = wales.officer("N03AOM1")
    receiving.set_status(received, "ACC", notes="Address assessed as suitable.")
    event = step(wales, london, ids, referral_id, translator, contracts)
    assert (event["status"], event["note"]) == ("accepted", "Address assessed as suitable.")
    assert event["new_owner"] == {"provider": "N03", "unit": "N03AOM", "user": "N03AOM1"}
    assert practitioner.nsi(sent)["nsiStatus"]["code"] == "ACC"

    receiving.set_status(received, "CHAL", outcome="CHRISK",
                         notes="The victim lives two streets from the proposed address.")
    event = step(wales, london, ids, referral_id, translator, contracts)
    assert event["status"] == "challenged"
    assert event["reason"] == {"code": "risk_concerns",
                               "text": "The victim lives two streets from the proposed address."}
    challenged = practitioner.nsi(sent)
    assert (challenged["nsiStatus"]["code"], challenged["nsiOutcome"]["code"]) == ("CHAL", "CHRISK")

    # London enforces the transfer: its own NSI goes back to accepted, and so does Wales's.
    practitioner.set_status(sent, "ACC", notes="Risk plan agreed with the victim liaison unit.")
    event = step(london, wales, ids, referral_id, translator, contracts)
    assert (event["status"], event["source_status"]) == ("accepted", "ACC")
    assert receiving.nsi(received)["nsiStatus"]["code"] == "ACC"
    assert practitioner.manager_of("X070002")[0] == "N07"  # nothing moves before completion

    receiving.set_status(received, "COMP", outcome="TRFC", notes="Handover meeting held.")
    event = step(wales, london, ids, referral_id, translator, contracts)
    assert event["status"] == "completed" and event["outcome"] == {"result": "successful"}
    assert event["new_owner"] == {"provider": "N03", "unit": "N03AOM", "user": "N03AOM1"}
    done = practitioner.nsi(sent)
    assert (done["nsiStatus"]["code"], done["nsiOutcome"]["code"]) == ("COMP", "TRFC")
    assert [h["status"]["code"] for h in done["statusHistory"]] == [
        "REQ", "AWAL", "ACC", "CHAL", "ACC", "COMP"]
    # The person is now managed in Wales, in both nDelius instances.
    assert receiving.manager_of("X070002") == ("N03", "N03AOM", "N03AOM1")
    # London names the same officer Wales did, not just Wales's transfer SPOC.
    assert practitioner.manager_of("X070002") == ("N03", "N03AOM", "N03AOM1")
    assert london.poll() == [] and wales.poll() == []  # the gateway's own changes stay quiet


def test_a_temporary_move_completes_with_the_manager_staying_with_the_sender(
        london: Provider, wales: Provider, translator: MappingTranslator,
        contracts: Contracts) -> None:
    practitioner = london.officer("N07AOM1")
    practitioner.raise_nsi(new_nsi("X070004", nsi_type="TMV01", reason="EMP",
                                   receivingTeam="N03AOM", sentenceType="CO", roshLevel="L",
                                   mappa=None, victimContact=False,
                                   moveStartDate="2027-01-11", moveEndDate="2027-03-26"))
    referral_id, sent, received, canonical = carry_transfer(london, wales, translator,
                                                             contracts)
    assert canonical["subtype"] == "temporary_move"
    assert canonical["transfer"] == {"reason": "Employment or education",
                                     "effective_date": "2027-01-11",
                                     "return_date": "2027-03-26"}
    host = wales.officer("N03AOM1")
    nsi = host.nsi(received)
    assert (nsi["nsiType"]["code"], nsi["expectedEndDate"]) == ("TMV01", "2027-03-26")
    assert nsi["transferForm"]["mappa"] is None
    assert nsi["transferForm"]["victimContact"] is False

    ids = {"N07": sent, "N03": received}
    for native, canonical_state in (("AWAL", "acknowledged"), ("ACC", "accepted"),
                                    ("INPROG", "in_progress")):
        host.set_status(received, native)
        event = step(wales, london, ids, referral_id, translator, contracts)
        assert (event["status"], event["source_status"]) == (canonical_state, native)
        assert practitioner.nsi(sent)["nsiStatus"]["code"] == native

    host.set_status(received, "COMP", outcome="TMVE")
    event = step(wales, london, ids, referral_id, translator, contracts)
    assert event["status"] == "completed"
    done = practitioner.nsi(sent)
    assert (done["nsiStatus"]["code"], done["nsiOutcome"]["code"]) == ("COMP", "TMVE")
    # Supervision support only: the case never left London.
    assert practitioner.manager_of("X070004")[0] == "N07"
    assert host.manager_of("X070004")[0] == "N07"


def test_a_return_and_a_withdrawal_reach_the_other_side_with_their_outcome(
        london: Provider, wales: Provider, translator: MappingTranslator,
        contracts: Contracts) -> None:
    practitioner = london.officer("N07AOM2")
    practitioner.raise_nsi(new_nsi("X070001"))
    returned_id, returned_sent, returned_received, _ = carry_transfer(
        london, wales, translator, contracts)
    practitioner.raise_nsi(new_nsi("X070003", reason="REL"))
    withdrawn_id, withdrawn_sent, withdrawn_received, _ = carry_transfer(
        london, wales, translator, contracts)
    spo = wales.officer("N03ACT1")

    spo.set_status(returned_received, "RET", outcome="RJAREA",
                   notes="The proposed address is in Gloucestershire.")
    event = step(wales, london, {"N07": returned_sent, "N03": returned_received}, returned_id,
                 translator, contracts)
    assert (event["status"], event["reason"]["code"]) == ("rejected", "not_applicable")
    returned = practitioner.nsi(returned_sent)
    assert (returned["nsiStatus"]["code"], returned["nsiOutcome"]["code"]) == ("RET", "RJAREA")

    practitioner.set_status(withdrawn_sent, "WDN", outcome="WDMOVE")
    event = step(london, wales, {"N07": withdrawn_sent, "N03": withdrawn_received},
                 withdrawn_id, translator, contracts)
    assert (event["status"], event["reason"]) == ("withdrawn", {"code": "not_applicable"})
    withdrawn = spo.nsi(withdrawn_received)
    assert (withdrawn["nsiStatus"]["code"], withdrawn["nsiOutcome"]["code"]) == ("WDN", "WDMOVE")


def test_every_nsi_status_and_outcome_of_the_sandbox_reads_and_goes_back_as_itself(
        wales: Provider, translator: MappingTranslator, contracts: Contracts) -> None:
    reference = wales.officer("N03ACT1").get("/reference-data")
    outcomes = reference["nsiOutcomesByStatus"]
    for nsi_type in (t["code"] for t in reference["nsiTypes"]):
        for status in (s["code"] for s in reference["nsiStatuses"]):
            for outcome in outcomes.get(status, [None]):
                record = {"status": status, "outcome": outcome, "nsiType": nsi_type,
                          "statusDate": "2027-01-11T10:00:00+00:00", "notes": "Fictional."}
                event = translator.status_in("ndelius", "transfer", record)
                assert contracts.validate("status-event", event) == [], (status, outcome)
                native = translator.status_out("ndelius", "transfer", event)
                # Completion goes without an outcome: nDelius sets the one of the NSI type. A
                # COMP with a rejection outcome is a rejection, and goes back as a return.
                expected = (status, None if status == "COMP" else outcome)
                if status == "COMP" and outcome.startswith("RJ"):
                    expected = ("RET", outcome)
                assert (native["status"], native.get("outcome")) == expected
                assert "manager" not in native


def test_a_transfer_closed_completed_with_a_rejection_outcome_is_a_rejection(
        london: Provider, wales: Provider, translator: MappingTranslator,
        contracts: Contracts) -> None:
    practitioner = london.officer("N07AOM2")
    practitioner.raise_nsi(new_nsi("X070001"))
    referral_id, sent, received, _ = carry_transfer(london, wales, translator, contracts)
    spo = wales.officer("N03ACT1")
    # The receiving SPO closes the NSI as nDelius closes every NSI, COMP; the outcome says how.
    spo.set_status(received, "COMP", outcome="RJADDR", notes="Address not suitable.")
    event = step(wales, london, {"N07": sent, "N03": received}, referral_id, translator,
                 contracts)
    assert (event["status"], event["reason"]["code"]) == ("rejected", "not_eligible")
    assert "outcome" not in event
    returned = practitioner.nsi(sent)
    assert (returned["nsiStatus"]["code"], returned["nsiOutcome"]["code"]) == ("RET", "RJADDR")
    # Nobody took the case: the person stays with London on both sides.
    assert practitioner.manager_of("X070001")[0] == "N07"
    assert spo.nsi(received)["nsiStatus"]["code"] == "COMP"


def test_a_completion_with_an_outcome_the_mapping_does_not_know_is_an_error(
        translator: MappingTranslator) -> None:
    record = {"status": "COMP", "outcome": "XYZ99", "nsiType": "TRF01",
              "statusDate": "2027-01-11T10:00:00+00:00"}
    with pytest.raises(MappingError) as raised:
        translator.status_in("ndelius", "transfer", record)
    assert "XYZ99" in raised.value.detail  # the operator sees which code to add
    assert raised.value.extensions["path"] == "/status"
    with pytest.raises(MappingError):
        translator.status_in("ndelius", "transfer", {**record, "outcome": None})


def test_noms_number_middle_name_and_due_date_reach_the_receiving_ndelius(
        london: Provider, wales: Provider, translator: MappingTranslator,
        contracts: Contracts) -> None:
    practitioner = london.officer("N07AOM1")
    practitioner.send("POST", "/person", {
        "crn": "X079001", "nomsNumber": "A1234BC", "dateOfBirth": "1991-02-03", "gender": "F",
        "name": {"forename": "Rowan", "middleName": "Quinn", "surname": "Exampleby"},
        "manager": {"team": "N07AOM", "staff": "N07AOM1"}}, expect=201)
    practitioner.raise_nsi(new_nsi("X079001"))
    _, sent, received, canonical = carry_transfer(london, wales, translator, contracts)
    due = practitioner.nsi(sent)["expectedEndDate"]
    assert {"system": "noms", "value": "A1234BC"} in canonical["subject"]["identifiers"]
    assert canonical["subject"]["middle_name"] == "Quinn"
    assert canonical["services"][0]["due_date"] == due
    # At Wales: the person is recorded with the same identifiers and names, the deadline kept.
    person = wales.officer("N03ACT1").get("/person/X079001")
    assert (person["nomsNumber"], person["name"]["middleName"]) == ("A1234BC", "Quinn")
    assert wales.officer("N03ACT1").nsi(received)["expectedEndDate"] == due


def test_a_transfer_the_gateway_could_not_deliver_is_not_delivered_until_a_redrive_delivers_it(
        london: Provider, translator: MappingTranslator) -> None:
    """The sending area hears of a dead delivery as NDEL, in its own words, not as a return;
    the re-drive makes it requested again, and its delivery changes nothing more."""
    practitioner = london.officer("N07AOM2")
    nsi_id = practitioner.raise_nsi(new_nsi("X070001"))
    [change] = london.poll()
    referral_id = f"cbr-{uuid.uuid4().hex[:12]}"
    tell(london, change.native_id, referral_id,
         {"status": "failed", "source_status": "partner_refused"}, translator)
    failed = practitioner.nsi(nsi_id)
    assert (failed["nsiStatus"]["code"], failed["externalReference"]) == ("NDEL", referral_id)
    assert failed.get("nsiOutcome") is None  # not a return: the receiving area never saw it
    for event in ({"status": "submitted", "source_status": "redrive"}, {"status": "delivered"}):
        tell(london, change.native_id, referral_id, event, translator)
        assert practitioner.nsi(nsi_id)["nsiStatus"]["code"] == "REQ"
