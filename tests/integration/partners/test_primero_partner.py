"""The Primero adapter against the real Primero sandbox over HTTP, and the sandbox itself."""

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from adapters.primero import PrimeroAdapter
from deadline_alerts import make_alert
from gateway.errors import PermanentDeliveryError, TransientDeliveryError
from sandboxes.primero.app import create_app
from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from servers import LiveServer

T = TypeVar("T")


@pytest.fixture
def primero(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "primero.db")) as server:
        yield server


@pytest.fixture
def adapter(primero: LiveServer) -> Iterator[PrimeroAdapter]:
    gateway = PrimeroAdapter(primero.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD, per=5)
    yield gateway
    gateway.close()


def log_in(server: LiveServer, user_name: str) -> httpx.Client:
    """An HTTP client acting as a Primero user, the way the Primero UI would."""
    answer = httpx.post(f"{server.url}/api/v2/tokens",
                        json={"user": {"user_name": user_name, "password": SANDBOX_PASSWORD}})
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=f"{server.url}/api/v2", timeout=10,
                        headers={"Authorization": f"Bearer {answer.json()['token']}"})


def incoming(*, recipient: str = "cp_worker", consent: bool = True,
             name_first: str = "Zawadi") -> dict[str, Any]:
    """A native create record of a fictional child, as the mapping would make it."""
    return {
        "case": {
            "module_id": "primeromodule-cp", "name_first": name_first,
            "name_last": "Fictionalson", "sex": "female", "date_of_birth": "2014-03-09",
            "protection_concerns": ["refugee"], "risk_level": "high",
            "consent_for_services": consent, "disclosure_other_orgs": consent,
            "consent_reporting": True,
            "services_section": [{"service_type": "family_seunification_service",
                                  "service_response_type": "service_provision"}],
        },
        "referral": {"transitioned_to": recipient, "service": "family_seunification_service",
                     "notes": "Arrived through CaseBridge."},
    }


def gateway_id() -> str:
    return f"cbr-{uuid.uuid4()}"


def retrying(call: Callable[[], T], attempts: int = 80) -> T:
    """The caller's retry loop: try again after each transient failure."""
    for _ in range(attempts):
        try:
            return call()
        except TransientDeliveryError as failure:
            time.sleep(min(failure.retry_after or 0.0, 0.05))
    raise AssertionError("still failing after every retry")


def split(native_id: str) -> tuple[str, str, str]:
    case_id, path, transition_id = native_id.split("/")
    return case_id, path, transition_id


# The sandbox's native behaviour


def test_login_gives_a_token_and_refusals_are_401_in_primero_error_shape(
        primero: LiveServer) -> None:
    answer = httpx.post(f"{primero.url}/api/v2/tokens",
                        json={"user": {"user_name": "cp_worker", "password": "wrong"}})
    assert answer.status_code == 401
    assert answer.json()["errors"][0]["status"] == 401
    assert httpx.get(f"{primero.url}/api/v2/cases").status_code == 401
    assert httpx.get(f"{primero.url}/api/v2/cases",
                     headers={"Authorization": "Bearer forged"}).json() == {
        "errors": [{"status": 401, "resource": "/api/v2/cases", "message": "Unauthorized"}]}
    with log_in(primero, "cp_worker") as worker:
        assert worker.get("/cases").status_code == 200
    basic = httpx.get(f"{primero.url}/api/v2/cases", auth=("cp_worker", SANDBOX_PASSWORD))
    assert basic.status_code == 200


def test_a_token_lives_only_token_ttl_seconds(tmp_path: Path) -> None:
    # Long enough that a loaded machine still answers the first call in time.
    with LiveServer(create_app(database=tmp_path / "p.db", token_ttl=1.5)) as server, \
            log_in(server, "cp_worker") as worker:
        assert worker.get("/cases").status_code == 200
        time.sleep(1.6)
        assert worker.get("/cases").status_code == 401


def test_lists_come_in_a_data_envelope_with_paging_metadata(primero: LiveServer) -> None:
    with log_in(primero, GATEWAY_USER) as gateway:
        second = gateway.get("/cases", params={"per": 5, "page": 2}).json()
        assert second["metadata"] == {"total": 12, "per": 5, "page": 2}
        assert len(second["data"]) == 5
        assert gateway.get("/cases", params={"per": 5000}).json()["metadata"]["per"] == 1000
        case = second["data"][0]
        one = gateway.get(f"/cases/{case['id']}").json()["data"]
        assert one["case_id_display"] == case["unique_identifier"][-7:]
        assert one["enabled"] is True and one["record_state"] is True
        short = gateway.get("/cases", params={"fields": "short", "per": 1}).json()["data"][0]
        assert "services_section" not in short and "owned_by" in short
        gbv = gateway.get("/cases", params={"module_id": "primeromodule-gbv"}).json()
        assert gbv["metadata"]["total"] == 3
        assert gateway.get("/agencies").json()["metadata"]["total"] == 3
        recipients = gateway.get("/users/refer-to", params={
            "record_type": "case", "record_module_id": "primeromodule-gbv"}).json()["data"]
        assert {"gbv_worker", GATEWAY_USER} == {u["user_name"] for u in recipients}


def test_a_caseworker_sees_only_own_and_assigned_cases(primero: LiveServer) -> None:
    with log_in(primero, "cp_worker_2") as worker, log_in(primero, GATEWAY_USER) as gateway:
        mine = worker.get("/cases", params={"per": 100}).json()["data"]
        assert mine and all(c["owned_by"] == "cp_worker_2"
                            or "cp_worker_2" in c["assigned_user_names"] for c in mine)
        other = gateway.get("/cases", params={"owned_by": "gbv_worker", "per": 1}).json()
        answer = worker.get(f"/cases/{other['data'][0]['id']}")
        assert answer.status_code == 403
        assert answer.json()["errors"][0]["message"] == "Forbidden"


def test_unknown_routes_and_ids_answer_in_primero_error_shape(primero: LiveServer) -> None:
    with log_in(primero, GATEWAY_USER) as gateway:
        missing = gateway.get(f"/cases/{uuid.uuid4()}")
        assert missing.status_code == 404
        entry = missing.json()["errors"][0]
        assert entry["status"] == 404 and entry["message"] == "Not Found"
        assert entry["resource"].startswith("/api/v2/cases/")
        assert gateway.get("/nowhere").json()["errors"][0]["status"] == 404


def test_a_case_with_unknown_lookup_values_is_invalid_record_json(primero: LiveServer) -> None:
    with log_in(primero, GATEWAY_USER) as gateway:
        answer = gateway.post("/cases", json={"data": {
            "module_id": "primeromodule-cp", "sex": "robot", "protection_concerns": ["x"]}})
    assert answer.status_code == 422
    entry = answer.json()["errors"][0]
    assert entry["message"] == "Invalid Record JSON"
    assert entry["detail"] == ["/sex", "/protection_concerns/0"]


def test_a_client_chosen_case_id_answers_204_then_409(primero: LiveServer) -> None:
    case = {**incoming()["case"], "id": str(uuid.uuid4())}
    with log_in(primero, GATEWAY_USER) as gateway:
        first = gateway.post("/cases", json={"data": case})
        assert first.status_code == 204 and first.content == b""
        again = gateway.post("/cases", json={"data": case})
        assert again.status_code == 409
        assert again.json()["errors"][0]["message"].startswith("Conflict")
        made = gateway.get(f"/cases/{case['id']}").json()["data"]
    assert made["owned_by"] == GATEWAY_USER and made["owned_by_agency_id"] == "agency-casebridge"
    assert made["case_id"] == made["unique_identifier"] and made["age"] >= 10


def test_a_transition_without_consent_fails_validation_unless_overridden(
        primero: LiveServer) -> None:
    with log_in(primero, "cp_worker") as worker:
        unconsented = worker.get("/cases", params={"consent_for_services": "false"}).json()
        case_id = unconsented["data"][0]["id"]
        refused = worker.post(f"/cases/{case_id}/referrals",
                              json={"data": {"transitioned_to": "cp_worker_2",
                                             "service": "psychosocial_service"}})
        assert refused.status_code == 422
        assert refused.json()["errors"] == [{
            "status": 422, "resource": f"/api/v2/cases/{case_id}/referrals",
            "detail": "consent", "message": ["transition.errors.consent"]}]
        nobody = worker.post(f"/cases/{case_id}/transfers",
                             json={"data": {"transitioned_to": "nobody"}})
        assert {e["detail"] for e in nobody.json()["errors"]} == {"consent", "transitioned_to"}
        overridden = worker.post(f"/cases/{case_id}/referrals", json={"data": {
            "transitioned_to": "cp_worker_2", "consent_overridden": True}})
        assert overridden.status_code == 200
        made = overridden.json()["data"]
    assert made["status"] == "in_progress" and made["type"] == "Referral"
    assert made["record_type"] == "case" and made["consent_overridden"] is True
    assert "cp_worker_2" in made["record"]["assigned_user_names"]


def test_the_referral_machine_ignores_moves_it_does_not_allow(primero: LiveServer) -> None:
    with log_in(primero, "cp_worker") as sender, log_in(primero, "cp_worker_2") as receiver:
        case = sender.get("/cases", params={"consent_for_services": "true", "per": 1})
        case_id = case.json()["data"][0]["id"]
        row = case.json()["data"][0]["services_section"][0]
        made = sender.post(f"/cases/{case_id}/referrals", json={"data": {
            "transitioned_to": "cp_worker_2", "service": row["service_type"],
            "service_record_id": row["unique_id"]}}).json()["data"]
        where = f"/cases/{case_id}/referrals/{made['id']}"
        assert receiver.get(f"/cases/{case_id}/referrals").json()["data"][-1][
            "user_can_accept_or_reject"] is True
        assert sender.patch(where, json={"data": {"status": "accepted"}}).status_code == 403
        early = receiver.patch(where, json={"data": {"status": "done"}})
        assert early.status_code == 200 and early.json()["data"]["status"] == "in_progress"
        accepted = receiver.patch(where, json={"data": {"status": "accepted"}}).json()["data"]
        assert accepted["status"] == "accepted" and accepted["responded_at"]
        done = receiver.patch(where, json={"data": {"status": "done",
                                                     "rejection_note": "Seen twice."}})
        assert done.json()["data"]["status"] == "done"
        service = sender.get(f"/cases/{case_id}").json()["data"]["services_section"][0]
    assert service["service_implemented"] == "implemented"
    assert service["note_on_referral_from_provider"] == "Seen twice."


# The adapter against the sandbox


def test_the_adapter_creates_a_referral_once_and_reads_it_back(
        primero: LiveServer, adapter: PrimeroAdapter) -> None:
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral", record=incoming())
    assert adapter.create(referral_id=referral_id, kind="referral",
                          record=incoming()) == native_id
    held = adapter.read(native_id=native_id)
    case, transition = held["case"], held["referral"]
    assert case["casebridge_referral_id"] == referral_id
    assert case["owned_by"] == GATEWAY_USER and "cp_worker" in case["assigned_user_names"]
    assert transition["status"] == "in_progress" and transition["type"] == "Referral"
    assert transition["transitioned_by"] == GATEWAY_USER
    assert transition["service_record_id"] == case["services_section"][0]["unique_id"]
    assert case["services_section"][0]["service_status_referred"] is True
    with log_in(primero, GATEWAY_USER) as gateway:
        found = gateway.get("/cases", params={"casebridge_referral_id": referral_id}).json()
    assert found["metadata"]["total"] == 1


def test_a_case_without_a_transition_goes_to_the_intake_user_for_its_first_service(
        primero: LiveServer) -> None:
    gateway = PrimeroAdapter(primero.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD,
                             intake_user="cp_manager")
    case = {**incoming()["case"], "sex": "unknown_4b34795", "services_section": [
        {"service_type": "alternative_care", "service_response_timeframe": "1_hour"},
        {"service_type": "health_medical_service", "service_response_timeframe": "1_day"}]}
    native_id = gateway.create(referral_id=gateway_id(), kind="referral", record={"case": case})
    held = gateway.read(native_id=native_id)
    gateway.update_status(native_id=native_id, referral_id="cbr-x",
                          status={"status": "in_progress"})  # nothing to tell Primero
    gateway.close()
    referral, rows = held["referral"], held["case"]["services_section"]
    assert referral["transitioned_to"] == "cp_manager" and referral["status"] == "in_progress"
    assert (referral["service"], referral["service_record_id"]) == (
        "alternative_care", rows[0]["unique_id"])
    assert [r.get("service_status_referred") for r in rows] == [True, None]


def test_the_adapter_sets_status_and_revokes(primero: LiveServer,
                                             adapter: PrimeroAdapter) -> None:
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral", record=incoming())
    adapter.update_status(native_id=native_id, referral_id=referral_id,
                          status={"status": "revoked"})
    adapter.update_status(native_id=native_id, referral_id=referral_id,
                          status={"status": "revoked"})
    held = adapter.read(native_id=native_id)
    assert held["referral"]["status"] == "revoked"
    assert "cp_worker" not in held["case"]["assigned_user_names"]


def test_discover_reports_a_caseworkers_answer_with_the_gateway_referral_id(
        primero: LiveServer, adapter: PrimeroAdapter) -> None:
    start = adapter.discover(cursor=None)
    assert start.changes == [] and start.cursor
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral", record=incoming())
    quiet = adapter.discover(cursor=start.cursor)
    assert quiet.changes == []  # delivered, not yet answered
    case_id, _, transition_id = split(native_id)
    with log_in(primero, "cp_worker") as worker:
        answer = worker.patch(f"/cases/{case_id}/referrals/{transition_id}",
                              json={"data": {"status": "rejected",
                                             "rejected_reason": "Outside our area."}})
        assert answer.status_code == 200
    found = adapter.discover(cursor=quiet.cursor)
    assert [(c.kind, c.native_id, c.referral_id) for c in found.changes] == [
        ("status", native_id, referral_id)]
    transition = found.changes[0].record["referral"]
    assert transition["status"] == "rejected"
    assert transition["rejected_reason"] == "Outside our area."
    assert adapter.discover(cursor=found.cursor).changes == []


def test_discover_finds_a_referral_raised_to_the_gateway_which_then_answers(
        primero: LiveServer, adapter: PrimeroAdapter) -> None:
    cursor = adapter.discover(cursor=None).cursor
    with log_in(primero, "cp_worker") as worker:
        case = worker.get("/cases", params={"consent_for_services": "true", "per": 1})
        row = case.json()["data"][0]["services_section"][0]
        case_id = case.json()["data"][0]["id"]
        made = worker.post(f"/cases/{case_id}/referrals", json={"data": {
            "transitioned_to": GATEWAY_USER, "service": row["service_type"],
            "service_record_id": row["unique_id"], "notes": "Please find a partner."}})
        assert made.status_code == 200
    raised = adapter.discover(cursor=cursor)
    assert [(c.kind, c.referral_id) for c in raised.changes] == [("referral", None)]
    native_id = raised.changes[0].native_id
    assert native_id == f"{case_id}/referrals/{made.json()['data']['id']}"
    assert raised.changes[0].record["referral"]["notes"] == "Please find a partner."

    with pytest.raises(PermanentDeliveryError) as ignored:
        adapter.update_status(native_id=native_id, referral_id="cbr-x",
                              status={"status": "done"})  # Primero: done needs accepted first
    assert ignored.value.partner_code == "transition_not_allowed"
    adapter.update_status(native_id=native_id, referral_id="cbr-x", status={"status": "accepted"})
    adapter.update_status(native_id=native_id, referral_id="cbr-x",
                          status={"status": "done", "rejection_note": "Service given."})
    held = adapter.read(native_id=native_id)
    assert held["referral"]["status"] == "done"
    assert held["case"]["services_section"][0]["service_implemented"] == "implemented"
    later = adapter.discover(cursor=raised.cursor)
    assert [(c.kind, c.native_id) for c in later.changes] == [("status", native_id)]


def test_the_sender_may_not_answer_its_own_referral(primero: LiveServer,
                                                   adapter: PrimeroAdapter) -> None:
    native_id = adapter.create(referral_id=gateway_id(), kind="referral", record=incoming())
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.update_status(native_id=native_id, referral_id="cbr-x",
                              status={"status": "accepted"})
    assert (refused.value.partner_status, refused.value.partner_code) == (403, "Forbidden")


def test_an_accepted_transfer_moves_ownership(primero: LiveServer,
                                              adapter: PrimeroAdapter) -> None:
    cursor = adapter.discover(cursor=None).cursor
    referral_id = gateway_id()
    record = {"case": incoming()["case"],
              "transfer": {"transitioned_to": "cp_worker", "consent_individual_transfer": True}}
    native_id = adapter.create(referral_id=referral_id, kind="transfer", record=record)
    assert "/transfers/" in native_id
    pending = adapter.read(native_id=native_id)["case"]
    assert pending["transfer_status"] == "in_progress" and pending["owned_by"] == GATEWAY_USER
    case_id, _, transfer_id = split(native_id)
    with log_in(primero, "cp_worker") as worker:
        answer = worker.patch(f"/cases/{case_id}/transfers/{transfer_id}",
                              json={"data": {"status": "accepted"}})
        assert answer.json()["data"]["status"] == "accepted"
    held = adapter.read(native_id=native_id)
    assert held["case"]["owned_by"] == "cp_worker"
    assert held["case"]["previously_owned_by"] == GATEWAY_USER
    assert held["case"]["transfer_status"] == "accepted"
    assert held["case"]["owned_by_agency_id"] == "agency-cpims-ssd"
    changes = adapter.discover(cursor=cursor).changes
    assert [(c.kind, c.referral_id, c.record["transfer"]["status"]) for c in changes] == [
        ("status", referral_id, "accepted")]


def test_refusals_are_permanent_and_name_no_record_values(primero: LiveServer,
                                                          adapter: PrimeroAdapter) -> None:
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.create(referral_id=gateway_id(), kind="referral",
                       record=incoming(consent=False, name_first="Quilla"))
    assert refused.value.partner_status == 422
    assert refused.value.partner_code == "transition.errors.consent"
    assert "Quilla" not in str(refused.value) and "Fictionalson" not in str(refused.value)
    with pytest.raises(PermanentDeliveryError) as unknown:
        adapter.create(referral_id=gateway_id(), kind="referral",
                       record=incoming(recipient="no_such_user"))
    assert unknown.value.partner_code == "transition.errors.to_user_can_receive"


def test_the_adapter_logs_in_again_when_its_token_has_expired(tmp_path: Path) -> None:
    app = create_app(database=tmp_path / "p.db", token_ttl=0.3)
    with LiveServer(app) as server:
        gateway = PrimeroAdapter(server.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
        native_id = gateway.create(referral_id=gateway_id(), kind="referral", record=incoming())
        time.sleep(0.4)
        assert gateway.read(native_id=native_id)["referral"]["status"] == "in_progress"
        httpx.post(f"{server.url}/_sandbox/tokens/expire")
        assert gateway.read(native_id=native_id)["case"]["owned_by"] == GATEWAY_USER
        gateway.close()


def test_no_duplicates_under_throttling_and_a_thirty_percent_failure_rate(
        primero: LiveServer, adapter: PrimeroAdapter) -> None:
    faults = {"failure_rate": 0.1, "drop_rate": 0.05, "lost_response_rate": 0.1,
              "throttle_rate": 0.05, "retry_after": 1, "seed": 11}
    assert httpx.put(f"{primero.url}/_sandbox/faults", json=faults).status_code == 200
    made: dict[str, str] = {}
    for _ in range(40):
        referral_id = gateway_id()
        made[referral_id] = retrying(partial(adapter.create, referral_id=referral_id,
                                             kind="referral", record=incoming()))
    counts = httpx.get(f"{primero.url}/_sandbox/faults").json()["counts"]
    httpx.put(f"{primero.url}/_sandbox/faults", json={})
    assert all(counts[k] > 0 for k in ("failed", "dropped", "lost", "throttled")), counts
    with log_in(primero, GATEWAY_USER) as gateway:
        for referral_id, native_id in made.items():
            cases = gateway.get("/cases", params={"casebridge_referral_id": referral_id})
            assert cases.json()["metadata"]["total"] == 1, referral_id
            case_id = cases.json()["data"][0]["id"]
            transitions = gateway.get(f"/cases/{case_id}/transitions").json()["data"]
            assert [t["id"] for t in transitions] == [split(native_id)[2]]


def test_parallel_writers_each_get_their_own_case_and_referral(primero: LiveServer) -> None:
    def deliver(batch: int) -> list[str]:
        gateway = PrimeroAdapter(primero.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
        try:
            return [gateway.create(referral_id=f"cbr-par-{batch}-{n}", kind="referral",
                                   record=incoming()) for n in range(4)]
        finally:
            gateway.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        native_ids = [n for batch in pool.map(deliver, range(6)) for n in batch]
    assert len(set(native_ids)) == 24
    with log_in(primero, GATEWAY_USER) as gateway:
        assert gateway.get("/cases").json()["metadata"]["total"] == 12 + 24


def test_two_instances_carry_a_cross_border_transfer(tmp_path: Path) -> None:
    south = create_app(database=tmp_path / "ssd.db", instance="cpims-ssd")
    north = create_app(database=tmp_path / "uga.db", instance="cpims-uga")
    with LiveServer(south) as sender, LiveServer(north) as receiver:
        out = PrimeroAdapter(sender.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
        into = PrimeroAdapter(receiver.url, user=GATEWAY_USER, password=SANDBOX_PASSWORD)
        cursor = out.discover(cursor=None).cursor
        with log_in(sender, "cp_worker") as worker:
            case = worker.get("/cases", params={"consent_for_services": "true", "per": 1})
            case_id = case.json()["data"][0]["id"]
            worker.post(f"/cases/{case_id}/transfers", json={"data": {
                "transitioned_to": GATEWAY_USER, "notes": "Family moved across the border."}})
        raised = out.discover(cursor=cursor).changes
        assert [c.kind for c in raised] == ["transfer"]
        native_case = raised[0].record["case"]
        copied = {k: native_case[k] for k in (
            "module_id", "name_first", "name_last", "sex", "date_of_birth",
            "protection_concerns", "consent_for_services", "disclosure_other_orgs")}
        native_id = into.create(referral_id="cbr-border-1", kind="transfer", record={
            "case": copied, "transfer": {"transitioned_to": "cp_worker"}})
        held = into.read(native_id=native_id)
        assert held["case"]["owned_by_agency_id"] == "agency-casebridge"
        assert held["case"]["id"] != case_id
        with log_in(receiver, "cp_manager") as manager:
            instance = manager.get("/primero").json()["data"]
            assert instance["instance"] == "cpims-uga"
            answer = manager.patch(
                f"/cases/{split(native_id)[0]}/transfers/{split(native_id)[2]}",
                json={"data": {"status": "accepted"}})
            assert answer.json()["data"]["status"] == "accepted"
        assert into.read(native_id=native_id)["case"]["owned_by"] == "cp_worker"
        out.update_status(native_id=raised[0].native_id, referral_id="cbr-border-1",
                          status={"status": "accepted"})
        assert out.read(native_id=raised[0].native_id)["case"]["owned_by"] == GATEWAY_USER
        out.close()
        into.close()


# Deadline alerts as flags on the case


def test_flags_follow_primeros_validation_and_permissions(primero: LiveServer) -> None:
    with log_in(primero, "cp_worker") as worker, log_in(primero, GATEWAY_USER) as gateway:
        case_id = worker.get("/cases", params={"per": 1}).json()["data"][0]["id"]
        blank = worker.post(f"/cases/{case_id}/flags", json={"data": {"date": "not a date"}})
        assert blank.status_code == 422
        assert blank.json()["errors"] == [
            {"status": 422, "resource": f"/api/v2/cases/{case_id}/flags", "detail": "message",
             "message": ["errors.models.flags.message"]},
            {"status": 422, "resource": f"/api/v2/cases/{case_id}/flags", "detail": "date",
             "message": ["errors.models.flags.date"]}]
        made = worker.post(f"/cases/{case_id}/flags",
                           json={"data": {"message": "Check the home visit."}}).json()["data"]
        assert made["removed"] is False and made["unflag_message"] is None
        assert made["record_type"] == "cases" and made["record"]["flagged"] is True
        edit = worker.patch(f"/cases/{case_id}/flags/{made['id']}",
                            json={"data": {"message": "Changed."}})
        assert edit.status_code == 403  # editing takes flag_update; resolving takes flag
        assert worker.patch(f"/cases/{case_id}/flags/999999", json={"data": {
            "unflag_message": "Done."}}).json()["errors"][0]["message"] == "Not Found"
        other = gateway.get("/cases", params={"owned_by": "gbv_worker", "per": 1}).json()
        unseen = worker.post(f"/cases/{other['data'][0]['id']}/flags",
                             json={"data": {"message": "Not my case."}})
        assert unseen.status_code == 403


def test_alerts_raise_escalate_and_clear_flags_on_the_case_once_each(
        primero: LiveServer, adapter: PrimeroAdapter) -> None:
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral", record=incoming())
    case_id = split(native_id)[0]
    overdue = make_alert("overdue", referral_id=referral_id)
    other_deadline = make_alert("overdue", referral_id=referral_id, deadline="complete",
                                state="accepted")
    for alert in (overdue, overdue, other_deadline):  # the first one delivered twice
        adapter.alert(native_id=native_id, referral_id=referral_id, alert=alert)
    with log_in(primero, "cp_worker") as worker:  # the caseworker the referral went to
        flags = worker.get(f"/cases/{case_id}/flags").json()["data"]
        assert [f["message"].split(" (urn:")[0] for f in flags] == [
            overdue["message"], other_deadline["message"]]
        assert [f["date"] for f in flags] == ["2027-01-07", "2027-01-07"]
        assert {f["flagged_by"] for f in flags} == {GATEWAY_USER}
        assert worker.get(f"/cases/{case_id}").json()["data"]["flagged"] is True

        escalated = make_alert("escalated", referral_id=referral_id)
        cleared = make_alert("cleared", referral_id=referral_id)
        for alert in (escalated, escalated, cleared, cleared):
            adapter.alert(native_id=native_id, referral_id=referral_id, alert=alert)
        flags = worker.get(f"/cases/{case_id}/flags").json()["data"]
        assert len(flags) == 3
        acknowledge = [f for f in flags if "acknowledge" in f["message"]]
        assert [f["removed"] for f in acknowledge] == [True, True]
        assert {f["unflag_message"].split(" (urn:")[0] for f in acknowledge} == {
            cleared["message"]}
        assert all(len(f["message"]) <= 255 for f in flags)
        assert [f["removed"] for f in flags if "complete" in f["message"]] == [False]
        assert worker.get(f"/cases/{case_id}").json()["data"]["flagged"] is True
