"""The nDelius adapter against real nDelius sandboxes over HTTP on 127.0.0.1.

Receiving provider N03 (Wales) and, where two are needed, sending provider N07 (London).
Probation staff act through the sandbox's own API with the `delius-ui` client and their
staff code as username, as they would through the Delius UI.
"""

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from adapters.ndelius import NdeliusAdapter
from deadline_alerts import make_alert
from gateway.errors import PermanentDeliveryError, TransientDeliveryError
from sandboxes.ndelius.app import create_app
from sandboxes.ndelius.events import FeedShape
from servers import LiveServer

GATEWAY = {"client_id": "casebridge", "client_secret": "casebridge-sandbox-secret"}
UI = ("delius-ui", "delius-ui-sandbox-secret")
T = TypeVar("T")


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "ndelius-n03.db", provider="N03",
                               provider_name="Wales")) as server:
        yield server


@pytest.fixture
def sender(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "ndelius-n07.db", provider="N07")) as server:
        yield server


@pytest.fixture
def adapter_for() -> Iterator[Callable[..., NdeliusAdapter]]:
    made: list[NdeliusAdapter] = []

    def make(server: LiveServer, **options: Any) -> NdeliusAdapter:
        adapter = NdeliusAdapter(server.url, **GATEWAY, timeout=15.0, **options)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


class Officer:
    """A member of probation staff working in one nDelius."""

    def __init__(self, server: LiveServer, staff: str) -> None:
        token = httpx.post(f"{server.url}/auth/oauth/token", auth=UI,
                           params={"grant_type": "client_credentials", "username": staff})
        self.http = httpx.Client(base_url=server.url, timeout=15.0, headers={
            "Authorization": f"Bearer {token.json()['access_token']}"})

    def get(self, path: str, **params: Any) -> Any:
        answer = self.http.get(path, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def send(self, method: str, path: str, body: dict[str, Any], expect: int = 200) -> Any:
        answer = self.http.request(method, path, json=body)
        assert answer.status_code == expect, answer.text
        return answer.json()

    def set_status(self, nsi_id: str | int, status: str, **extra: Any) -> Any:
        return self.send("PUT", f"/nsi/{nsi_id}/status", {"status": status, **extra})


def transfer_record(crn: str = "X070001", *, subtype: str | None = None,
                    receiving_team: str | None = None) -> dict[str, Any]:
    """A case transfer of a fictional London person to Wales, as the mapping will make it."""
    return {
        "subtype": subtype,
        "person": {"crn": crn, "name": {"forename": "Ashley", "surname": "Fictionalson"},
                   "dateOfBirth": "1988-04-12", "gender": "M", "roshLevel": "M",
                   "manager": {"provider": "N07", "team": "N07AOM", "staff": "N07AOM2"}},
        "nsi": {"intendedProvider": "N03", "notes": "Moving in with family."},
        "transfer_form": {
            "currentPdu": "N07A", "currentTeam": "N07AOM", "receivingPdu": "N03A",
            "receivingTeam": receiving_team, "reason": "FAM", "sentenceType": "CO",
            "proposedAddress": {"addressLine1": "1 Example Row", "town": "Cardiff",
                                "postcode": "CF10 1AA"},
            "roshLevel": "M", "mappa": {"category": "2", "level": "1"},
            "victimContact": False, "outstandingActions": "Unpaid work hours to schedule"},
    }


def referral_id() -> str:
    return f"ref-{uuid.uuid4().hex[:12]}"


def retrying(call: Callable[[], T], attempts: int = 200) -> T:
    """The caller's retry loop: try again on a transient failure, after its Retry-After."""
    for _ in range(attempts):
        try:
            return call()
        except TransientDeliveryError as error:
            time.sleep(min(error.retry_after or 0.0, 0.05))
    raise AssertionError("still failing after every attempt")


def test_a_transfer_nsi_is_created_once_and_reads_back(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    native_id = adapter.create(referral_id=ref, kind="transfer", record=transfer_record())
    assert adapter.create(referral_id=ref, kind="transfer", record=transfer_record()) == native_id

    record = adapter.read(native_id=native_id)
    nsi = record["nsi"]
    assert nsi["nsiType"]["code"] == "TRF01" and nsi["nsiSubType"]["code"] == "TRF01A"
    assert nsi["nsiStatus"]["code"] == "REQ" and nsi["externalReference"] == ref
    assert nsi["intendedProvider"]["code"] == "N03"
    # Routed to the receiving PDU's case-transfer SPOC, with the deadlines of the framework.
    assert nsi["manager"]["team"]["code"] == "N03ACT"
    assert nsi["manager"]["staff"]["unallocated"] is True
    assert nsi["expectedEndDate"] > nsi["referralDate"]
    assert nsi["addressAssessmentDueDate"] is not None
    assert record["transfer_form"]["receivingPdu"] == "N03A"
    assert record["transfer_form"]["reason"]["code"] == "FAM"
    assert {a["owner"] for a in record["actions"]} == {"SENDING", "RECEIVING"}
    # The person is new to this nDelius and stays with the sender until the transfer completes.
    assert record["person"]["crn"] == "X070001"
    assert record["person"]["manager"]["provider"]["code"] == "N07"
    officer = Officer(receiver, "N03ACT1")
    assert officer.get("/nsi", externalReference=ref)["totalElements"] == 1


def test_completing_a_case_transfer_moves_the_manager_and_only_then(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    native_id = adapter.create(referral_id=ref, kind="transfer", record=transfer_record())
    spo = Officer(receiver, "N03ACT1")
    spo.send("PUT", f"/nsi/{native_id}/manager", {"team": "N03AOM", "staff": "N03AOM1"})

    adapter.update_status(native_id=native_id, referral_id=ref, status={"status": "ACC"})
    adapter.update_status(native_id=native_id, referral_id=ref, status={"status": "ACC"})
    accepted = adapter.read(native_id=native_id)
    assert accepted["nsi"]["nsiStatus"]["code"] == "ACC"
    assert accepted["person"]["manager"]["provider"]["code"] == "N07"

    adapter.update_status(native_id=native_id, referral_id=ref,
                          status={"status": "COMP", "outcome": "TRFC", "notes": "Handed over"})
    done = adapter.read(native_id=native_id)
    assert (done["nsi"]["nsiStatus"]["code"], done["nsi"]["nsiOutcome"]["code"]) == ("COMP", "TRFC")
    assert done["nsi"]["active"] is False and done["nsi"]["actualEndDate"] is not None
    manager = done["person"]["manager"]
    assert (manager["provider"]["code"], manager["team"]["code"], manager["staff"]["code"]) == (
        "N03", "N03AOM", "N03AOM1")
    assert manager["allocationReason"]["code"] == "TRF"
    contacts = [c["type"] for c in spo.get("/person/X070001/contacts")]
    assert {"ETOM", "ROC", "CTAC", "CTCO"} <= set(contacts)
    assert [h["status"]["code"] for h in done["nsi"]["statusHistory"]] == ["REQ", "ACC", "COMP"]


def test_a_temporary_move_keeps_the_manager_with_the_sender(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    record = transfer_record("X070002", subtype="temporary_move", receiving_team="N03AOM")
    record["transfer_form"].update(moveStartDate="2026-12-01", moveEndDate="2027-01-15")
    native_id = adapter.create(referral_id=ref, kind="transfer", record=record)
    for status in ("ACC", "INPROG", "COMP"):
        adapter.update_status(native_id=native_id, referral_id=ref, status={"status": status})
    moved = adapter.read(native_id=native_id)
    assert moved["nsi"]["nsiType"]["code"] == "TMV01"
    moved_nsi = moved["nsi"]
    assert (moved_nsi["nsiStatus"]["code"], moved_nsi["nsiOutcome"]["code"]) == ("COMP", "TMVE")
    assert moved["nsi"]["manager"]["team"]["code"] == "N03AOM"
    assert moved["person"]["manager"]["team"]["code"] == "N07AOM"
    assert moved["nsi"]["pendingTransfer"] is False


def test_discover_reports_what_staff_did_and_not_its_own_changes(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    start = adapter.discover(cursor=None)
    assert start.changes == [] and start.cursor is not None
    native_id = adapter.create(referral_id=ref, kind="transfer", record=transfer_record())
    adapter.update_status(native_id=native_id, referral_id=ref, status={"status": "AWAL"})

    spo = Officer(receiver, "N03ACT1")
    spo.set_status(native_id, "ACC", notes="Address assessed as suitable")
    spo.set_status(native_id, "CHAL", outcome="CHRISK", notes="Victim lives nearby")
    found = adapter.discover(cursor=start.cursor)

    assert [(c.kind, c.referral_id, c.native_id) for c in found.changes] == [
        ("status", ref, native_id)] * 2
    accepted, challenged = (c.record for c in found.changes)
    assert (accepted["previousStatus"], accepted["status"]) == ("AWAL", "ACC")
    assert accepted["notes"] == "Address assessed as suitable"
    assert (challenged["status"], challenged["outcome"]) == ("CHAL", "CHRISK")
    assert challenged["nsiType"] == "TRF01" and challenged["externalReference"] == ref
    assert all(c.changed_at for c in found.changes)
    assert adapter.discover(cursor=found.cursor).changes == []


def test_bare_and_wrapped_events_without_detail_urls_redelivered_count_once(
        tmp_path: Path, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    shape = FeedShape(style="mixed", redeliver_every=2, detail_urls=False)
    with LiveServer(create_app(database=tmp_path / "n03.db", provider="N03",
                               feed=shape)) as server:
        adapter, spo = adapter_for(server, page_size=2), Officer(server, "N03ACT1")
        cursor = adapter.discover(cursor=None).cursor
        refs = [referral_id() for _ in range(3)]
        native_ids = [adapter.create(referral_id=ref, kind="transfer",
                                     record=transfer_record(f"X07{n:04d}"))
                      for n, ref in zip(range(300, 303), refs, strict=True)]
        for native_id in native_ids:
            spo.set_status(native_id, "AWAL")
            spo.set_status(native_id, "ACC")
        items = Officer(server, "N03ACT1").get("/events", after=cursor, size=100)["content"]
        assert any("Message" in i for i in items) and any("eventType" in i for i in items)
        assert len({i.get("MessageId") for i in items if "MessageId" in i}) < sum(
            "MessageId" in i for i in items)  # the sandbox did redeliver
        assert not any("detailUrl" in i for i in items)
        found = adapter.discover(cursor=cursor)
    assert [(c.native_id, c.referral_id, c.record["status"], c.problem)
            for c in found.changes] == [(n, ref, s, None)
                                        for n, ref in zip(native_ids, refs, strict=True)
                                        for s in ("AWAL", "ACC")]


def test_discover_pages_through_a_long_feed(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter = adapter_for(receiver, page_size=3)
    cursor = adapter.discover(cursor=None).cursor
    spo = Officer(receiver, "N03ACT1")
    native_ids = [adapter.create(referral_id=referral_id(), kind="transfer",
                                 record=transfer_record(f"X07{n:04d}")) for n in range(200, 204)]
    for native_id in native_ids:
        spo.set_status(native_id, "AWAL")
        spo.set_status(native_id, "RET", outcome="RJADDR")
    found = adapter.discover(cursor=cursor)
    assert [(c.native_id, c.record["status"]) for c in found.changes] == [
        (n, s) for n in native_ids for s in ("AWAL", "RET")]


def test_an_outgoing_transfer_is_discovered_carried_and_completed_end_to_end(
        sender: LiveServer, receiver: LiveServer,
        adapter_for: Callable[..., NdeliusAdapter]) -> None:
    london, wales = adapter_for(sender, provider="N07"), adapter_for(receiver)
    cursor_london = london.discover(cursor=None).cursor
    cursor_wales = wales.discover(cursor=None).cursor
    practitioner = Officer(sender, "N07AOM2")
    form = transfer_record()["transfer_form"]
    practitioner.send("POST", "/nsi", {"type": "TRF01", "offenderCrn": "X070001",
                                       "intendedProvider": "N03", "transferForm": form,
                                       "notes": "Moving in with family."}, expect=201)
    # A move between two London PDUs stays inside London: not the gateway's business.
    practitioner.send("POST", "/nsi", {"type": "TRF01", "offenderCrn": "X070003",
                                       "intendedProvider": "N07",
                                       "transferForm": {**form, "receivingPdu": "N07B"}},
                      expect=201)

    outgoing = london.discover(cursor=cursor_london)
    assert [(c.kind, c.referral_id) for c in outgoing.changes] == [("transfer", None)]
    raised = outgoing.changes[0]
    assert raised.record["nsi"]["raisedByProvider"]["code"] == "N07"
    assert raised.record["person"]["manager"]["team"]["code"] == "N07AOM"

    # What the gateway's mappings will do: carry the transfer over to Wales.
    ref = referral_id()
    person, nsi = raised.record["person"], raised.record["nsi"]
    wales_id = wales.create(referral_id=ref, kind="transfer", record={
        "person": {"crn": person["crn"], "name": person["name"],
                   "dateOfBirth": person["dateOfBirth"], "gender": person["gender"]["code"],
                   "manager": {"team": person["manager"]["team"]["code"],
                               "staff": person["manager"]["staff"]["code"]}},
        "nsi": {"intendedProvider": nsi["intendedProvider"]["code"], "notes": nsi["notes"]},
        "transfer_form": {**form}})
    london.update_status(native_id=raised.native_id, referral_id=ref,
                         status={"status": "AWAL"})

    spo = Officer(receiver, "N03ACT1")
    spo.send("PUT", f"/nsi/{wales_id}/manager", {"team": "N03AOM", "staff": "N03AOM2"})
    spo.set_status(wales_id, "ACC")
    spo.set_status(wales_id, "COMP", outcome="TRFC")
    answered = wales.discover(cursor=cursor_wales)
    assert [(c.referral_id, c.record["status"]) for c in answered.changes] == [
        (ref, "ACC"), (ref, "COMP")]
    completed = answered.changes[-1].record
    assert completed["manager"] == {"provider": "N03", "team": "N03AOM", "staff": "N03AOM2"}

    # Only now does London let go, to the officer Wales allocated.
    assert practitioner.get("/person/X070001")["manager"]["provider"]["code"] == "N07"
    for change in answered.changes:
        london.update_status(native_id=raised.native_id, referral_id=ref, status={
            "status": change.record["status"], "outcome": change.record["outcome"],
            "manager": completed["manager"] if change.record["status"] == "COMP" else None})
    manager = practitioner.get("/person/X070001")["manager"]
    assert (manager["provider"]["code"], manager["staff"]["code"]) == ("N03", "N03AOM2")

    # London's practitioner later sees it stamped with the gateway's referral id.
    assert practitioner.get(f"/nsi/{raised.native_id}")["externalReference"] == ref
    later = london.discover(cursor=outgoing.cursor)
    assert later.changes == []  # the gateway's own updates are not echoed


def test_expired_and_revoked_tokens_are_renewed(
        tmp_path: Path, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    app = create_app(database=tmp_path / "ndelius.db", provider="N03", token_lifetime=1)
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as plain:
        adapter = adapter_for(server)
        native_id = adapter.create(referral_id=referral_id(), kind="transfer",
                                   record=transfer_record())
        time.sleep(1.1)
        assert adapter.read(native_id=native_id)["nsi"]["id"] == int(native_id)
        plain.post("/_sandbox/tokens/revoke")
        assert adapter.read(native_id=native_id)["nsi"]["id"] == int(native_id)
        assert plain.get(f"/nsi/{native_id}").status_code == 401


def test_refusals_are_permanent_and_carry_the_partner_code(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    bad_pdu = transfer_record()
    bad_pdu["transfer_form"]["receivingPdu"] = "N03Z"
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.create(referral_id=ref, kind="transfer", record=bad_pdu)
    assert (refused.value.partner_status, refused.value.partner_code) == (422, "UNKNOWN_PDU")
    assert "X070001" not in str(refused.value) and "Fictionalson" not in str(refused.value)

    native_id = adapter.create(referral_id=ref, kind="transfer", record=transfer_record())
    with pytest.raises(PermanentDeliveryError) as conflict:
        adapter.update_status(native_id=native_id, referral_id=ref, status={"status": "COMP"})
    assert (conflict.value.partner_status, conflict.value.partner_code) == (
        409, "INVALID_STATUS_TRANSITION")
    with pytest.raises(PermanentDeliveryError) as missing:
        adapter.read(native_id="999999")
    assert missing.value.partner_status == 404
    with pytest.raises(PermanentDeliveryError) as wrong:
        NdeliusAdapter(receiver.url, client_id="casebridge", client_secret="wrong").read(
            native_id=native_id)
    assert wrong.value.partner_status == 401


def test_forty_transfers_under_faults_make_exactly_one_nsi_each(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter = adapter_for(receiver)
    officer = Officer(receiver, "N03ACT1")
    faults = {"failure_rate": 0.08, "drop_rate": 0.07, "lost_response_rate": 0.08,
              "throttle_rate": 0.07, "retry_after": 0, "seed": 2026}
    assert officer.http.put("/_sandbox/faults", json=faults).status_code == 200
    refs = [referral_id() for _ in range(40)]
    native_ids = {}
    for n, ref in enumerate(refs):
        record = transfer_record(f"X07{100 + n:04d}",
                                 subtype="temporary_move" if n % 4 == 0 else None)
        native_ids[ref] = retrying(
            lambda ref=ref, record=record: adapter.create(referral_id=ref, kind="transfer",
                                                          record=record))
        retrying(lambda ref=ref: adapter.update_status(
            native_id=native_ids[ref], referral_id=ref, status={"status": "AWAL"}))
    counts = officer.http.get("/_sandbox/faults").json()["counts"]
    officer.http.put("/_sandbox/faults", json={})

    assert all(counts[kind] > 0 for kind in ("failed", "dropped", "lost", "throttled"))
    assert len(set(native_ids.values())) == 40
    for ref in refs:
        page = officer.get("/nsi", externalReference=ref)
        assert page["totalElements"] == 1
        nsi = page["content"][0]
        assert str(nsi["id"]) == native_ids[ref]
        assert [h["status"]["code"] for h in nsi["statusHistory"]] == ["REQ", "AWAL"]
    assert officer.get("/nsi", size=1)["totalElements"] == 40
    assert officer.get("/person", size=1)["totalElements"] == 6 + 40


def test_concurrent_creates_for_one_referral_make_one_nsi(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter = adapter_for(receiver)
    refs = [referral_id() for _ in range(5)]
    jobs = [(ref, f"X07{300 + n:04d}") for n, ref in enumerate(refs)] * 3

    def create(job: tuple[str, str]) -> tuple[str, str]:
        ref, crn = job
        return ref, adapter.create(referral_id=ref, kind="transfer", record=transfer_record(crn))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(create, jobs))
    by_ref: dict[str, set[str]] = {}
    for ref, native_id in results:
        by_ref.setdefault(ref, set()).add(native_id)
    assert all(len(ids) == 1 for ids in by_ref.values()) and len(by_ref) == 5
    assert Officer(receiver, "N03ACT1").get("/nsi", size=1)["totalElements"] == 5


# --- deadline alerts as alert contacts -------------------------------------------------------
def test_contacts_follow_the_delius_rules_for_alerts_and_references(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    nsi_id = int(adapter.create(referral_id=ref, kind="transfer", record=transfer_record()))
    spo = Officer(receiver, "N03ACT1")
    types = {t["code"]: t["alertAllowed"] for t in spo.get("/reference-data")["contactTypes"]}
    assert (types["CBDO"], types["CBDC"], types["CTAC"]) == (True, False, False)
    note = {"offenderCrn": "X070001", "nsiId": nsi_id, "type": "CBDO", "alert": True}
    refused = spo.send("POST", "/contact", {**note, "type": "CBDC"}, expect=422)
    assert refused["errorCode"] == "ALERT_NOT_ALLOWED"
    assert spo.send("POST", "/contact", {**note, "type": "NOPE"}, expect=422)[
        "errorCode"] == "INVALID_CODE"
    assert spo.send("POST", "/contact", {**note, "nsiId": 999999}, expect=404)[
        "errorCode"] == "NOT_FOUND"
    made = spo.send("POST", "/contact", {**note, "date": "2027-01-08", "startTime": "09:30",
                                         "externalReference": "urn:x:1"}, expect=201)
    assert made["alert"] is True and made["date"] == "2027-01-08T09:30:00+00:00"
    assert (made["team"], made["staff"]) == ("N03ACT", "N03ACTU")  # the NSI's manager
    again = spo.send("POST", "/contact", {**note, "externalReference": "urn:x:1"}, expect=409)
    assert again["errorCode"] == "DUPLICATE_EXTERNAL_REFERENCE"
    cleared = spo.send("PATCH", f"/contact/{made['id']}", {"alert": False})
    assert cleared["alert"] is False
    assert spo.get(f"/contact/{made['id']}")["alert"] is False


def test_alerts_are_alert_contacts_on_the_nsi_cleared_once_the_deadline_is_met(
        receiver: LiveServer, adapter_for: Callable[..., NdeliusAdapter]) -> None:
    adapter, ref = adapter_for(receiver), referral_id()
    native_id = adapter.create(referral_id=ref, kind="transfer", record=transfer_record())
    overdue = make_alert("overdue", referral_id=ref, deadline="address_assessment")
    other_deadline = make_alert("overdue", referral_id=ref, deadline="transfer_decision")
    for alert in (overdue, overdue, other_deadline):  # the first one delivered twice
        adapter.alert(native_id=native_id, referral_id=ref, alert=alert)
    spo = Officer(receiver, "N03ACT1")

    def alert_contacts() -> list[dict[str, Any]]:
        return [c for c in spo.get("/person/X070001/contacts", nsiId=native_id)
                if c["type"].startswith("CB")]

    raised = alert_contacts()
    assert [(c["type"], c["alert"], c["notes"]) for c in raised] == [
        ("CBDO", True, overdue["message"]), ("CBDO", True, other_deadline["message"])]
    assert raised[0]["date"] == "2027-01-07T21:00:00+00:00"  # 21:00 UTC is 21:00 in January
    assert {c["team"] for c in raised} == {"N03ACT"}  # on the SPOC team's alert list

    escalated = make_alert("escalated", referral_id=ref, deadline="address_assessment")
    cleared = make_alert("cleared", referral_id=ref, deadline="address_assessment")
    for alert in (escalated, escalated, cleared, cleared):
        adapter.alert(native_id=native_id, referral_id=ref, alert=alert)
    after = alert_contacts()
    assert [(c["type"], c["alert"]) for c in after] == [
        ("CBDO", False), ("CBDO", True), ("CBDE", False), ("CBDC", False)]
    assert after[1]["notes"] == other_deadline["message"]
    assert after[3]["notes"] == cleared["message"]
    assert len({c["externalReference"] for c in after}) == 4
