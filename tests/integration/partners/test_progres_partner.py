"""The proGres adapter against the real proGres sandbox over HTTP, and the sandbox itself."""

import re
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from adapters.progres.adapter import REFERRALS, TRANSFERS, ProgresAdapter
from deadline_alerts import make_alert
from gateway.errors import PermanentDeliveryError, TransientDeliveryError
from sandboxes.progres.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app
from sandboxes.progres.schema import ReferralStatus, TransferStatus
from sandboxes.progres.seed import CASEWORKER_USER, individual_id, intervention_type_id, sid
from servers import LiveServer

T = TypeVar("T")
API = "/api/data/v9.2"
ANNOTATED = 'odata.include-annotations="*"'
UNICEF = sid("progres_partner:unicef")
CP_UNIT = sid("businessunit:cp")
TESTA = individual_id("testa")


@pytest.fixture
def progres_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "progres.db")) as server:
        yield server


@pytest.fixture
def adapter(progres_server: LiveServer) -> Iterator[ProgresAdapter]:
    gateway = ProgresAdapter(progres_server.url, client_id=DEFAULT_CLIENT_ID,
                             client_secret=DEFAULT_CLIENT_SECRET, timeout=5, page_size=3,
                             cursor_overlap=2)
    yield gateway
    gateway.close()


def log_in(server: LiveServer, client_id: str = "progres-caseworker",
           secret: str = "caseworker-secret") -> httpx.Client:
    """An HTTP client acting as proGres staff, the way a proGres form would call the API."""
    answer = httpx.post(f"{server.url}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        "scope": f"{server.url}/.default"})
    assert answer.status_code == 200, answer.text
    return httpx.Client(base_url=f"{server.url}{API}", timeout=10, headers={
        "Authorization": f"Bearer {answer.json()['access_token']}", "OData-Version": "4.0",
        "Accept": "application/json"})


@pytest.fixture
def staff(progres_server: LiveServer) -> Iterator[httpx.Client]:
    with log_in(progres_server) as client:
        yield client


def incoming_referral(*, progres_id: str | None = None, service: str = "FTR") -> dict[str, Any]:
    """A native create record of a fictional child, as the mapping would make it."""
    record: dict[str, Any] = {"referral": {
        "progres_interoperabilityreferralrouteto": 125080001,
        "progres_assignedunitid@odata.bind": f"/businessunits({CP_UNIT})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({intervention_type_id(service)})",
        "progres_urgency": 125080001, "progres_duedate": "2026-12-04",
        "progres_reasonforreferral": "<p>Needs family tracing after separation.</p>",
        "progres_givenname": "Zawadi", "progres_familyname": "Fictionalson",
        "progres_dateofbirth": "2014-03-09", "progres_sex": 125080000,
        "progres_consentobtained": True, "progres_consentdate": "2026-11-01",
        "progres_consentgivenby": 125080003, "progres_consentform": 125080000,
        "progres_childassent": True, "progres_sendingorganization": "UNICEF (sandbox)"}}
    if progres_id:
        record["individual"] = {"progres_id": progres_id}
    return record


def gateway_id() -> str:
    return f"cbr-{uuid.uuid4()}"


def retrying(call: Callable[[], T], attempts: int = 100) -> T:
    """The caller's retry loop: try again after each transient failure."""
    for _ in range(attempts):
        try:
            return call()
        except TransientDeliveryError as failure:
            time.sleep(min(failure.retry_after or 0.0, 0.05))
    raise AssertionError("still failing after every retry")


def guid_of(native_id: str) -> str:
    return native_id.split("(")[1].rstrip(")")


def by_reference(staff: httpx.Client, entity_set: str, referral_id: str) -> list[dict[str, Any]]:
    answer = staff.get(f"/{entity_set}", params={
        "$filter": f"progres_orgreferralid eq '{referral_id}'"})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["value"])


def progres_id_of(staff: httpx.Client, guid: str) -> str:
    return str(staff.get(f"/progres_individuals({guid})").json()["progres_id"])


def set_faults(server: LiveServer, **faults: Any) -> None:
    assert httpx.put(f"{server.url}/_sandbox/faults", json=faults).status_code == 200


# -- the adapter against the sandbox ------------------------------------------------------

def test_adapter_creates_a_referral_that_proGres_holds_pending_acknowledgement(
        adapter: ProgresAdapter, staff: httpx.Client) -> None:
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral",
                               record=incoming_referral(progres_id=progres_id_of(staff, TESTA)))
    assert re.fullmatch(rf"{REFERRALS}\([0-9a-f-]{{36}}\)", native_id)

    record = adapter.read(native_id=native_id)
    row = record["referral"]
    assert row["progres_orgreferralid"] == referral_id
    assert row["statuscode"] == ReferralStatus.PENDING_ACKNOWLEDGEMENT and row["statecode"] == 0
    assert row["statuscode@OData.Community.Display.V1.FormattedValue"] == \
        "Pending Acknowledgement"
    assert row["progres_direction"] == 125080001
    assert re.fullmatch(r"REF-IOP-DAD-\d{9}", row["progres_interoperabilityreferralnumber"])
    assert row["_progres_individualid_value"] == TESTA
    assert record["individual"]["progres_givenname"] == "Testa"
    assert record["case"] is None and record["source_record"] is None
    assert adapter.create(referral_id=referral_id, kind="referral",
                          record=incoming_referral()) == native_id
    assert len(by_reference(staff, REFERRALS, referral_id)) == 1


def test_a_person_proGres_does_not_know_is_left_for_a_reviewer_to_match(
        adapter: ProgresAdapter) -> None:
    native_id = adapter.create(referral_id=gateway_id(), kind="referral",
                               record=incoming_referral(progres_id="DAD-99999999"))
    record = adapter.read(native_id=native_id)
    assert record["referral"]["_progres_individualid_value"] is None
    assert record["individual"] is None
    assert record["referral"]["progres_familyname"] == "Fictionalson"


def test_a_service_proGres_does_not_take_through_interop_is_refused_for_good(
        adapter: ProgresAdapter) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.create(referral_id=gateway_id(), kind="referral",
                       record=incoming_referral(service="LEGAL"))
    assert caught.value.partner_status == 400 and caught.value.partner_code == "0x80040265"
    assert "Zawadi" not in str(caught.value)


def test_adapter_changes_the_status_and_proGres_checks_the_move(
        adapter: ProgresAdapter, staff: httpx.Client) -> None:
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral",
                               record=incoming_referral())
    with pytest.raises(PermanentDeliveryError) as caught:  # a rejection needs its reason
        adapter.update_status(native_id=native_id, referral_id=referral_id,
                              status={"statuscode": ReferralStatus.REJECTED})
    assert caught.value.partner_code == "0x80040265"
    with pytest.raises(PermanentDeliveryError) as caught:  # not a status of this state
        adapter.update_status(native_id=native_id, referral_id=referral_id,
                              status={"statecode": 0, "statuscode": ReferralStatus.COMPLETED})
    assert caught.value.partner_code == "0x80040203"

    adapter.update_status(native_id=native_id, referral_id=referral_id,
                          status={"statuscode": ReferralStatus.CANCELLED})
    adapter.update_status(native_id=native_id, referral_id=referral_id,
                          status={"statuscode": ReferralStatus.CANCELLED})  # a repeat: no-op
    row = adapter.read(native_id=native_id)["referral"]
    assert (row["statecode"], row["statuscode"]) == (1, ReferralStatus.CANCELLED)
    assert row["progres_closedon"] is not None
    with pytest.raises(PermanentDeliveryError) as caught:  # closed is closed
        adapter.update_status(native_id=native_id, referral_id=referral_id,
                              status={"statuscode": ReferralStatus.PENDING_ACTION})
    assert caught.value.partner_code == "0x80040203"


def test_discover_reports_what_proGres_staff_did_but_not_the_gateways_own_writes(
        adapter: ProgresAdapter, progres_server: LiveServer, staff: httpx.Client) -> None:
    referral_id = gateway_id()
    native_id = adapter.create(referral_id=referral_id, kind="referral",
                               record=incoming_referral())
    cursor = adapter.discover(cursor=None).cursor
    assert adapter.discover(cursor=cursor).changes == []

    acknowledged = staff.patch(f"/{native_id}", json={
        "statuscode": ReferralStatus.PENDING_ACTION}, headers={"If-Match": "*"})
    assert acknowledged.status_code == 204, acknowledged.text
    found = adapter.discover(cursor=cursor)
    assert [(c.kind, c.native_id, c.referral_id) for c in found.changes] == [
        ("status", native_id, referral_id)]
    row = found.changes[0].record["referral"]
    assert row["statuscode"] == ReferralStatus.PENDING_ACTION
    assert row["progres_acknowledgedon"] is not None
    assert adapter.discover(cursor=found.cursor).changes == []  # reported once

    with log_in(progres_server, "progres-reviewer", "reviewer-secret") as reviewer:
        rejected = reviewer.patch(f"/{native_id}", json={
            "statuscode": ReferralStatus.REJECTED,
            "progres_interoperabiltyreferralrejectionreason": 125080000,
            "progres_interoperabilityreferralrejectionomment": "Not found in proGres."})
    assert rejected.status_code == 204, rejected.text
    later = adapter.discover(cursor=found.cursor)
    row = later.changes[0].record["referral"]
    assert (row["statuscode"], row["progres_reviewdecision"]) == (ReferralStatus.REJECTED,
                                                                  125080001)
    assert row["_progres_reviewby_value"] == sid("systemuser:reviewer")

    adapter.update_status(native_id=native_id, referral_id=referral_id,
                          status={"progres_outcomenotes": "<p>Seen by the sender.</p>"})
    echo = adapter.discover(cursor=later.cursor)
    assert echo.changes == [] and echo.cursor != later.cursor  # the gateway's own write


def test_discover_picks_up_referrals_and_transfers_proGres_sends_to_a_partner(
        adapter: ProgresAdapter, staff: httpx.Client) -> None:
    cursor = adapter.discover(cursor=None).cursor
    bia = sid("progres_bestinterestsassessment:testa")
    outgoing = {
        "progres_interoperabilityreferralrouteto": 125080000,
        "progres_partnerid@odata.bind": f"/progres_partners({UNICEF})",
        "progres_individualid@odata.bind": f"/progres_individuals({TESTA})",
        "progres_caseid@odata.bind": f"/progres_cases({sid('progres_case:testa')})",
        "regardingobjectid_progres_bestinterestsassessment@odata.bind":
            f"/progres_bestinterestsassessments({bia})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({intervention_type_id('ALTC')})",
        "statuscode": ReferralStatus.PENDING_REVIEW}
    made = staff.post(f"/{REFERRALS}", json=outgoing)
    assert made.status_code == 204, made.text
    referral = made.headers["OData-EntityId"].rsplit("/", 1)[1]
    internal = staff.post(f"/{REFERRALS}", json={
        **outgoing, "progres_interoperabilityreferralrouteto": 125080001,
        "statuscode": ReferralStatus.PENDING_ACKNOWLEDGEMENT})
    assert internal.status_code == 204
    assert adapter.discover(cursor=cursor).changes == []  # still under review inside proGres

    assert staff.patch(f"/{referral}", json={
        "statuscode": ReferralStatus.PENDING_ACKNOWLEDGEMENT}).status_code == 204
    transfer = staff.post(f"/{TRANSFERS}", headers={"Prefer": "return=representation"}, json={
        "progres_individualid@odata.bind": f"/progres_individuals({TESTA})",
        "progres_partnerid@odata.bind": f"/progres_partners({UNICEF})",
        "progres_transferrelatedchildprotectioncases": True,
        "statuscode": TransferStatus.PENDING_DECISION})
    assert transfer.status_code == 201, transfer.text
    found = adapter.discover(cursor=cursor)
    kinds = {c.kind: c for c in found.changes}
    assert sorted(kinds) == ["referral", "transfer"] and len(found.changes) == 2
    change = kinds["referral"]
    assert change.native_id == referral and change.referral_id is None
    assert change.record["individual"]["progres_familyname"] == "Fictionalia"
    assert change.record["case"]["progres_casetype"] == 125080000
    assert change.record["source_record"]["progres_bestinterestsassessmentid"] == bia
    assert kinds["transfer"].record["transfer"]["progres_requestdate"] is not None

    # The gateway takes it: the partner acknowledged, the referral carries the gateway id.
    referral_id = gateway_id()
    adapter.update_status(native_id=referral, referral_id=referral_id,
                          status={"statuscode": ReferralStatus.PENDING_ACTION})
    assert by_reference(staff, REFERRALS, referral_id)[0]["statuscode"] == \
        ReferralStatus.PENDING_ACTION
    assert staff.patch(f"/{referral}", json={
        "statuscode": ReferralStatus.CANCELLED}).status_code == 204
    later = adapter.discover(cursor=found.cursor)
    assert [(c.kind, c.referral_id, c.record["referral"]["statuscode"])
            for c in later.changes] == [("status", referral_id, ReferralStatus.CANCELLED)]


def test_adapter_creates_a_data_transfer_request_and_follows_its_decision(
        adapter: ProgresAdapter, progres_server: LiveServer, staff: httpx.Client) -> None:
    referral_id = gateway_id()
    record = {"transfer": {
        "progres_transferreason": "<p>The family moved to the sandbox camp.</p>",
        "progres_transferrelatedchildprotectioncases": True,
        "progres_transferrelatedrsdcases": False, "progres_transferrelatedfraudcases": False,
        "progres_givenname": "Zawadi", "progres_familyname": "Fictionalson",
        "progres_sendingorganization": "Sandbox Probation Service"},
        "individual": {"progres_individualid": TESTA}}
    native_id = adapter.create(referral_id=referral_id, kind="transfer", record=record)
    assert native_id.startswith(f"{TRANSFERS}(")
    assert adapter.create(referral_id=referral_id, kind="transfer", record=record) == native_id
    row = adapter.read(native_id=native_id)["transfer"]
    assert row["statuscode"] == TransferStatus.PENDING_DECISION
    assert row["progres_transferrelatedchildprotectioncases"] is True
    assert row["progres_transferrelatedchildprotectioncases@OData.Community.Display.V1."
               "FormattedValue"] == "Yes"
    assert re.fullmatch(r"DTR-DAD-\d{9}", row["progres_datatransferrequestnumber"])

    cursor = adapter.discover(cursor=None).cursor
    assert staff.patch(f"/{native_id}", json={
        "statuscode": TransferStatus.PENDING_TRANSFER}).status_code == 204
    decided = adapter.discover(cursor=cursor).changes
    assert [(c.kind, c.referral_id, c.record["transfer"]["statuscode"]) for c in decided] == [
        ("status", referral_id, TransferStatus.PENDING_TRANSFER)]
    assert decided[0].record["transfer"]["_progres_decisionby_value"] == \
        sid("systemuser:caseworker")
    with pytest.raises(PermanentDeliveryError):  # a decided request cannot be rejected
        adapter.update_status(native_id=native_id, referral_id=referral_id, status={
            "statuscode": TransferStatus.REQUEST_REJECTED, "progres_rejectionreason": 125080004})
    adapter.update_status(native_id=native_id, referral_id=referral_id,
                          status={"statuscode": TransferStatus.CANCELLED})
    assert adapter.read(native_id=native_id)["transfer"]["statecode"] == 1


def test_discover_pages_through_many_changes(adapter: ProgresAdapter,
                                             staff: httpx.Client) -> None:
    made = [adapter.create(referral_id=gateway_id(), kind="referral",
                           record=incoming_referral()) for _ in range(7)]
    cursor = adapter.discover(cursor=None).cursor
    for native_id in made:
        assert staff.patch(f"/{native_id}", json={
            "statuscode": ReferralStatus.PENDING_ACTION}).status_code == 204
    found = adapter.discover(cursor=cursor)  # page_size=3: three pages of referrals
    assert sorted(c.native_id for c in found.changes) == sorted(made)


def test_an_expired_or_revoked_token_is_renewed_without_the_caller_noticing(
        adapter: ProgresAdapter, progres_server: LiveServer) -> None:
    def issued() -> int:
        return int(httpx.get(f"{progres_server.url}/_sandbox/tokens").json()["issued"])

    native_id = adapter.create(referral_id=gateway_id(), kind="referral",
                               record=incoming_referral())
    before = issued()
    assert httpx.delete(f"{progres_server.url}/_sandbox/tokens").status_code == 204
    adapter.read(native_id=native_id)
    assert issued() == before + 1

    httpx.put(f"{progres_server.url}/_sandbox/tokens", json={"lifetime": 1})
    assert httpx.delete(f"{progres_server.url}/_sandbox/tokens").status_code == 204
    adapter.read(native_id=native_id)  # 401 → a one-second token
    time.sleep(1.1)
    adapter.read(native_id=native_id)  # expired → renewed
    assert issued() == before + 3


def test_adapter_survives_throttling(adapter: ProgresAdapter, progres_server: LiveServer,
                                     staff: httpx.Client) -> None:
    set_faults(progres_server, throttle_rate=0.5, retry_after=0, seed=3)
    ids = [gateway_id() for _ in range(10)]
    made = {rid: retrying(lambda rid=rid: adapter.create(
        referral_id=rid, kind="referral", record=incoming_referral())) for rid in ids}
    counts = httpx.get(f"{progres_server.url}/_sandbox/faults").json()["counts"]
    set_faults(progres_server)
    assert counts["throttled"] > 0
    for rid in ids:
        assert [r["progres_interoperabilityreferralid"] for r in
                by_reference(staff, REFERRALS, rid)] == [guid_of(made[rid])]


def test_thirty_percent_failures_make_no_duplicates(adapter: ProgresAdapter,
                                                    progres_server: LiveServer,
                                                    staff: httpx.Client) -> None:
    set_faults(progres_server, failure_rate=0.1, drop_rate=0.06, lost_response_rate=0.08,
               throttle_rate=0.06, retry_after=0, seed=11)
    ids = [gateway_id() for _ in range(40)]
    made: dict[str, str] = {}

    def deliver(referral_id: str, kind: str, record: dict[str, Any]) -> str:
        return retrying(lambda: adapter.create(referral_id=referral_id, kind=kind,
                                               record=record))

    for n, rid in enumerate(ids):
        kind = "transfer" if n % 5 == 4 else "referral"
        record = incoming_referral() if kind == "referral" else {"transfer": {
            "progres_transferrelatedrsdcases": True}}
        made[rid] = deliver(rid, kind, record)
        assert deliver(rid, kind, record) == made[rid]  # a redelivery finds the same record
    counts = httpx.get(f"{progres_server.url}/_sandbox/faults").json()["counts"]
    set_faults(progres_server)

    assert counts["lost"] > 0 and counts["dropped"] > 0 and counts["failed"] > 0
    for rid in ids:
        entity_set = made[rid].split("(")[0]
        assert [r[f"{entity_set[:-1]}id"] for r in by_reference(staff, entity_set, rid)] == [
            guid_of(made[rid])]
    total = 0
    for entity_set in (REFERRALS, TRANSFERS):
        rows = staff.get(f"/{entity_set}", params={
            "$select": "progres_orgreferralid",
            "$filter": "startswith(progres_orgreferralid,'cbr-')"}).json()["value"]
        total += len(rows)
    assert total == len(ids) == len(set(made.values()))


def test_concurrent_writes_are_all_kept(progres_server: LiveServer) -> None:
    adapters = [ProgresAdapter(progres_server.url, client_id=DEFAULT_CLIENT_ID,
                               client_secret=DEFAULT_CLIENT_SECRET) for _ in range(4)]
    ids = [gateway_id() for _ in range(24)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda n: adapters[n % 4].create(
            referral_id=ids[n], kind="referral", record=incoming_referral()), range(len(ids))))
    for a in adapters:
        a.close()
    assert len(set(made)) == len(ids)


# -- the sandbox's Dataverse behaviour ----------------------------------------------------

def test_rows_come_back_selected_with_etags_and_the_odata_headers(staff: httpx.Client) -> None:
    answer = staff.get("/progres_individuals", params={
        "$select": "progres_givenname,progres_sex,_progres_registrationgroupid_value",
        "$filter": "progres_familyname eq 'Fictionalia'", "$orderby": "progres_givenname desc"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json; odata.metadata=minimal"
    assert answer.headers["odata-version"] == "4.0"
    body = answer.json()
    assert body["@odata.context"].endswith(
        "$metadata#progres_individuals(progres_givenname,progres_sex,"
        "_progres_registrationgroupid_value)")
    assert [r["progres_givenname"] for r in body["value"]] == ["Testa", "Samplo"]
    row = body["value"][0]
    assert set(row) == {"@odata.etag", "progres_individualid", "progres_givenname",
                        "progres_sex", "_progres_registrationgroupid_value"}
    assert re.fullmatch(r'W/"\d+"', row["@odata.etag"])


def test_formatted_values_and_lookup_annotations_only_when_asked(staff: httpx.Client) -> None:
    path = f"/progres_individuals({TESTA})"
    params = {"$select": "progres_sex,_progres_registrationgroupid_value,progres_dateofbirth"}
    plain = staff.get(path, params=params).json()
    assert not [k for k in plain if "@" in k and k != "@odata.etag" and k != "@odata.context"]
    annotated = staff.get(path, params=params, headers={"Prefer": ANNOTATED}).json()
    assert annotated["progres_sex"] == 125080000
    assert annotated["progres_sex@OData.Community.Display.V1.FormattedValue"] == "Female"
    assert annotated["progres_dateofbirth@OData.Community.Display.V1.FormattedValue"] == \
        "5/14/2014"
    lookup = "_progres_registrationgroupid_value"
    assert annotated[f"{lookup}@Microsoft.Dynamics.CRM.lookuplogicalname"] == \
        "progres_registrationgroup"
    assert re.fullmatch(r"DAD-\d\d-\d{5}",
                        annotated[f"{lookup}@OData.Community.Display.V1.FormattedValue"])


def test_filters_compare_numbers_dates_lookups_and_text(staff: httpx.Client) -> None:
    def count(expression: str) -> int:
        answer = staff.get("/progres_individuals", params={"$filter": expression,
                                                            "$select": "progres_id"})
        assert answer.status_code == 200, answer.text
        return len(answer.json()["value"])

    everyone = count("statecode eq 0")
    assert everyone == 7
    assert count("progres_sex eq 125080000") + count("progres_sex ne 125080000") == everyone
    assert count("progres_dateofbirth ge 2010-01-01 and progres_dateofbirth lt 2015-01-01") == 3
    assert count("progres_dateofbirth le 1985-01-01") == 1
    assert count("progres_dateofbirth gt 2015-01-01") == 1
    assert count("modifiedon gt 2026-01-01T00:00:00Z") == everyone
    assert count("modifiedon gt 2099-01-01T00:00:00Z") == 0
    group = sid("progres_registrationgroup:g3")
    assert count(f"_progres_registrationgroupid_value eq {group}") == 3
    assert count("progres_givenname eq 'testa'") == 1  # text compares ignore case
    assert count("progres_givenname eq 'O''Fictional' or startswith(progres_familyname,'Mock')"
                 ) == 2
    assert count("not (progres_sex eq 125080000) and progres_middlename eq null") == 3


def test_top_limits_and_max_page_size_pages_with_an_opaque_skip_token(
        staff: httpx.Client) -> None:
    top = staff.get("/progres_individuals", params={"$top": "2"},
                    headers={"Prefer": "odata.maxpagesize=1"}).json()
    assert len(top["value"]) == 2 and "@odata.nextLink" not in top

    seen: list[str] = []
    url: str | None = "/progres_individuals?$select=progres_id&$orderby=progres_dateofbirth desc"
    while url:
        answer = staff.get(url, headers={"Prefer": "odata.maxpagesize=3"})
        assert answer.headers["preference-applied"] == "odata.maxpagesize=3"
        body = answer.json()
        assert len(body["value"]) <= 3
        seen.extend(r["progres_id"] for r in body["value"])
        url = body.get("@odata.nextLink")
        if url:
            assert "$skiptoken=" in url and "$skip=" not in url
    assert len(seen) == len(set(seen)) == 7

    refused = staff.get("/progres_individuals", params={"$skip": "3"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x0"


def test_errors_have_the_dataverse_shape(staff: httpx.Client, progres_server: LiveServer) -> None:
    def error(answer: httpx.Response, status: int, code: str) -> str:
        assert answer.status_code == status, answer.text
        assert set(answer.json()) == {"error"}
        assert answer.json()["error"]["code"] == code
        return str(answer.json()["error"]["message"])

    assert "Could not find a property named 'progres_nickname'" in error(staff.get(
        "/progres_individuals", params={"$select": "progres_nickname"}), 400, "0x0")
    error(staff.get("/progres_individuals", params={"$filter": "nickname eq 'x'"}), 400, "0x0")
    error(staff.get("/progres_individuals", params={"$filter": "progres_sex eq 'female'"}),
          400, "0x0")
    error(staff.get(f"/progres_cases({uuid.uuid4()})"), 404, "0x80040217")
    error(staff.get("/progres_nothings"), 404, "0x8006088a")
    error(staff.post(f"/{REFERRALS}", json={"progres_nickname": "x"}), 400, "0x0")
    error(staff.post(f"/{REFERRALS}", json={"progres_sex": 7}), 400, "0x8004431a")
    error(staff.post(f"/{REFERRALS}", json={
        "progres_individualid@odata.bind": f"/progres_individuals({uuid.uuid4()})"}),
        400, "0x80040217")
    error(staff.post(f"/{REFERRALS}", json={"statuscode": ReferralStatus.COMPLETED}),
          400, "0x80040203")
    made = staff.post(f"/{REFERRALS}", json={"progres_orgreferralid": "dup-1"})
    assert made.status_code == 204
    error(staff.post(f"/{REFERRALS}", json={"progres_orgreferralid": "dup-1"}), 409,
          "0x80040237")

    anonymous = httpx.get(f"{progres_server.url}{API}/progres_cases")
    error(anonymous, 401, "0x8005f101")
    assert anonymous.headers["www-authenticate"].startswith("Bearer authorization_uri=")
    token = httpx.post(f"{progres_server.url}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": "casebridge", "client_secret": "nope",
        "scope": "x/.default"})
    assert token.status_code == 401 and token.json()["error"] == "invalid_client"


def test_create_update_and_read_back_as_dataverse_does(staff: httpx.Client) -> None:
    made = staff.post(f"/{REFERRALS}", json={"progres_orgreferralid": "odata-1"})
    assert made.status_code == 204 and made.content == b""
    entity_id = made.headers["OData-EntityId"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+{API}/{REFERRALS}\([0-9a-f-]{{36}}\)",
                        entity_id)
    path = "/" + entity_id.rsplit("/", 1)[1]
    row = staff.get(path).json()
    assert row["statuscode"] == ReferralStatus.PENDING_RECOMMENDATION
    assert row["createdon"] == row["modifiedon"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["createdon"])
    assert staff.get("/progres_interoperabilityreferrals(progres_orgreferralid='odata-1')"
                     ).json()["progres_interoperabilityreferralid"] == path[-37:-1]

    stale = staff.patch(path, json={"progres_urgency": 125080002},
                        headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    updated = staff.patch(path, json={"statuscode": ReferralStatus.PENDING_REVIEW},
                          headers={"If-Match": row["@odata.etag"],
                                   "Prefer": f"return=representation,{ANNOTATED}"})
    assert updated.status_code == 200
    assert updated.json()["statuscode@OData.Community.Display.V1.FormattedValue"] == \
        "Pending Review"
    assert updated.json()["@odata.etag"] != row["@odata.etag"]

    represented = staff.post(f"/{REFERRALS}?$select=progres_interoperabilityreferralnumber",
                             json={}, headers={"Prefer": "return=representation"})
    assert represented.status_code == 201
    assert set(represented.json()) == {"@odata.context", "@odata.etag",
                                       "progres_interoperabilityreferralid",
                                       "progres_interoperabilityreferralnumber"}
    missing = staff.patch(f"/{REFERRALS}({uuid.uuid4()})", json={},
                          headers={"If-Match": "*"})
    assert missing.status_code == 404


def test_who_am_i_names_the_application_user(adapter: ProgresAdapter) -> None:
    who = adapter.client.get("WhoAmI", "WhoAmI", annotations=False)
    assert who["UserId"] == sid("systemuser:casebridge")


# -- deadline alerts as tasks ------------------------------------------------------------

def test_tasks_follow_the_dataverse_activity_rules(adapter: ProgresAdapter,
                                                   staff: httpx.Client) -> None:
    referral = guid_of(adapter.create(referral_id=gateway_id(), kind="referral",
                                      record=incoming_referral()))
    regarding = "regardingobjectid_progres_interoperabilityreferral_task@odata.bind"
    plain = staff.post("/tasks", json={
        "subject": "Call back", "regardingobjectid_progres_interoperabilityreferral@odata.bind":
            f"/{REFERRALS}({referral})"})
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "0x0"
    missing = staff.post("/tasks", json={"subject": "Call back",
                                         regarding: f"/{REFERRALS}({uuid.uuid4()})"})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "0x80040217"
    closed = staff.post("/tasks", json={"subject": "Call back", "statecode": 1})
    assert closed.status_code == 400 and closed.json()["error"]["code"] == "0x80040203"
    made = staff.post("/tasks", headers={"Prefer": "return=representation"}, json={
        "subject": "Call back", regarding: f"/{REFERRALS}({referral})"})
    task = made.json()
    assert made.status_code == 201 and (task["statecode"], task["statuscode"]) == (0, 2)
    done = staff.patch(f"/tasks({task['activityid']})", headers={"If-Match": "*"},
                       json={"statecode": 1, "statuscode": 5})
    assert done.status_code == 204
    shown = staff.get(f"/tasks({task['activityid']})", headers={"Prefer": ANNOTATED}).json()
    assert shown["statecode@OData.Community.Display.V1.FormattedValue"] == "Completed"
    assert shown["actualend"] is not None
    assert shown["_regardingobjectid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] \
        == "regardingobjectid_progres_interoperabilityreferral_task"


def test_alerts_are_tasks_for_the_assigned_caseworker_completed_when_cleared(
        adapter: ProgresAdapter, staff: httpx.Client) -> None:
    referral_id = gateway_id()
    record = incoming_referral()
    record["referral"]["progres_assigneduserid@odata.bind"] = f"/systemusers({CASEWORKER_USER})"
    native_id = adapter.create(referral_id=referral_id, kind="referral", record=record)
    overdue = make_alert("overdue", referral_id=referral_id)
    other_deadline = make_alert("overdue", referral_id=referral_id, deadline="complete",
                                state="accepted")
    for alert in (overdue, overdue, other_deadline):  # the first one delivered twice
        adapter.alert(native_id=native_id, referral_id=referral_id, alert=alert)

    def tasks(condition: str) -> list[dict[str, Any]]:
        answer = staff.get("/tasks", headers={"Prefer": ANNOTATED}, params={
            "$filter": f"_regardingobjectid_value eq {guid_of(native_id)} and {condition}",
            "$orderby": "createdon asc"})
        assert answer.status_code == 200, answer.text
        return list(answer.json()["value"])

    mine = tasks(f"_ownerid_value eq {CASEWORKER_USER} and statecode eq 0")
    assert [t["subject"] for t in mine] == [overdue["message"], other_deadline["message"]]
    assert {t["scheduledend"] for t in mine} == {"2027-01-07T21:00:00Z"}
    assert {t["prioritycode@OData.Community.Display.V1.FormattedValue"] for t in mine} == {
        "Normal"}
    assert {t["category"] for t in mine} == {"CaseBridge deadline"}
    assert mine[0]["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == \
        "progres_interoperabilityreferral"

    escalated = make_alert("escalated", referral_id=referral_id)
    cleared = make_alert("cleared", referral_id=referral_id)
    for alert in (escalated, escalated, cleared, cleared):
        adapter.alert(native_id=native_id, referral_id=referral_id, alert=alert)
    assert [t["subject"] for t in tasks("statecode eq 0")] == [other_deadline["message"]]
    done = tasks("statecode eq 1")
    assert [t["prioritycode"] for t in done] == [1, 2]
    assert {t["statuscode"] for t in done} == {5} and all(t["actualend"] for t in done)
    assert all(t["description"].endswith(cleared["message"]) for t in done)


# -- a dead delivery told to proGres as the sender, through the shipped status mappings ----


ROOT = Path(__file__).resolve().parents[3]


def told(adapter: ProgresAdapter, kind: str, native_id: str, referral_id: str,
         event: dict[str, Any]) -> None:
    """What the worker does with a status event for the sending proGres."""
    from gateway.contracts import Contracts
    from gateway.mapping.translator import MappingTranslator
    translator = MappingTranslator(ROOT / "mappings", contracts=Contracts(ROOT / "contracts"))
    native = translator.status_out("progres", kind, event)
    adapter.update_status(native_id=native_id, referral_id=referral_id, status=native)


def test_a_referral_and_a_transfer_proGres_sent_are_told_delivery_failed_then_redriven(
        adapter: ProgresAdapter, staff: httpx.Client) -> None:
    """Delivery Failed / Transfer failed, not Rejected: the receiver never saw them; the
    re-drive that delivers them brings them back to Pending Acknowledgement / Decision."""
    made = staff.post(f"/{REFERRALS}", json={
        "progres_interoperabilityreferralrouteto": 125080000,
        "progres_partnerid@odata.bind": f"/progres_partners({UNICEF})",
        "progres_individualid@odata.bind": f"/progres_individuals({TESTA})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({intervention_type_id('ALTC')})",
        "statuscode": ReferralStatus.PENDING_ACKNOWLEDGEMENT})
    assert made.status_code == 204, made.text
    referral = made.headers["OData-EntityId"].rsplit("/", 1)[1]
    transfer = staff.post(f"/{TRANSFERS}", json={
        "progres_individualid@odata.bind": f"/progres_individuals({TESTA})",
        "progres_partnerid@odata.bind": f"/progres_partners({UNICEF})",
        "progres_transferrelatedchildprotectioncases": True,
        "statuscode": TransferStatus.PENDING_DECISION})
    assert transfer.status_code == 204, transfer.text
    transfer_id = transfer.headers["OData-EntityId"].rsplit("/", 1)[1]
    cases = [("referral", referral, REFERRALS, ReferralStatus.DELIVERY_FAILED,
              ReferralStatus.PENDING_ACKNOWLEDGEMENT),
             ("transfer", transfer_id, TRANSFERS, TransferStatus.TRANSFER_FAILED,
              TransferStatus.PENDING_DECISION)]
    for kind, native_id, table, failed, delivered in cases:
        referral_id = gateway_id()
        told(adapter, kind, native_id, referral_id,
             {"status": "failed", "source_status": "partner_refused"})
        [row] = by_reference(staff, table, referral_id)
        assert row["statuscode"] == failed, kind
        told(adapter, kind, native_id, referral_id,
             {"status": "submitted", "source_status": "redrive"})
        assert by_reference(staff, table, referral_id)[0]["statuscode"] == failed
        told(adapter, kind, native_id, referral_id, {"status": "delivered"})
        assert by_reference(staff, table, referral_id)[0]["statuscode"] == delivered, kind
