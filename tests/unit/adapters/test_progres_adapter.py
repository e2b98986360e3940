"""The proGres adapter against a mocked Dataverse Web API (respx): auth, paging, failures."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from adapters.alerts import read_alert
from adapters.progres.adapter import REFERRALS, TASK_NAMESPACE, ProgresAdapter, parse_native_id
from deadline_alerts import make_alert
from gateway.errors import PermanentDeliveryError, TransientDeliveryError

BASE = "https://progres.sandbox.test"
API = f"{BASE}/api/data/v9.2"
TOKEN_URL = f"{BASE}/oauth2/v2.0/token"
GUID = "0b7c1c0e-6d0a-4d8e-9a51-3f1d2c4b5a69"
OTHER = "5f0e9f7a-2b1c-4c7d-8e9f-0a1b2c3d4e5f"
ME = "11111111-2222-3333-4444-555555555555"
FICTIONAL_NAME = "Zawadi Fictionalson"


def token(value: str, expires_in: int = 3599) -> httpx.Response:
    return httpx.Response(200, json={"token_type": "Bearer", "expires_in": expires_in,
                                     "access_token": value})


def dataverse_error(status: int, code: str, message: str,
                    headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}},
                          headers=headers)


def rows(*items: dict[str, Any], next_link: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"@odata.context": f"{API}/$metadata#x", "value": list(items)}
    if next_link:
        body["@odata.nextLink"] = next_link
    return httpx.Response(200, json=body)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=token("t1"))
        yield router


@pytest.fixture
def adapter() -> Iterator[ProgresAdapter]:
    a = ProgresAdapter(BASE, client_id="casebridge", client_secret="s3cret", timeout=2,
                       page_size=2)
    yield a
    a.close()


def referral_record() -> dict[str, Any]:
    return {"referral": {"progres_givenname": "Zawadi", "progres_familyname": "Fictionalson",
                         "progres_dateofbirth": "2014-03-09",
                         "progres_interoperabilityreferralrouteto": 125080001},
            "individual": {"progres_id": "DAD-00005708"}}


def no_record_values(error: Exception) -> None:
    # The partner's own message may quote values: it is kept apart, for the encrypted store
    # only (tests/unit/adapters/test_partner_errors.py); everything else must not.
    text = f"{error} { {k: v for k, v in error.__dict__.items() if k != 'partner_message'} }"
    for value in ("Zawadi", "Fictionalson", "2014-03-09", "DAD-00005708", "s3cret", "t1"):
        assert value not in text


# -- auth -------------------------------------------------------------------------------

def test_a_refused_token_is_renewed_once_and_the_call_repeated(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    tokens = mock.post(TOKEN_URL).mock(side_effect=[token("t1"), token("t2")])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer t1":
            return httpx.Response(401, headers={"WWW-Authenticate": "Bearer authorization_uri=x"})
        return httpx.Response(200, json={"@odata.etag": 'W/"7"', "statuscode": 125080002})

    api = mock.get(f"{API}/{REFERRALS}({GUID})").mock(side_effect=answer)
    record = adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert record["referral"]["statuscode"] == 125080002
    assert tokens.call_count == 2 and api.call_count == 2
    form = dict(httpx.QueryParams(tokens.calls[0].request.content.decode()))
    assert form == {"grant_type": "client_credentials", "client_id": "casebridge",
                    "client_secret": "s3cret", "scope": f"{BASE}/.default"}


def test_the_token_is_reused_until_it_nears_expiry(mock: respx.MockRouter,
                                                   adapter: ProgresAdapter) -> None:
    tokens = mock.post(TOKEN_URL).mock(side_effect=[token("t1", expires_in=0),
                                                    token("t2"), token("t3")])
    mock.get(f"{API}/{REFERRALS}({GUID})").mock(return_value=httpx.Response(200, json={}))
    for _ in range(3):
        adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert tokens.call_count == 2  # t1 had expired at once; t2 served the next two calls


def test_a_second_401_is_permanent(mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(f"{API}/{REFERRALS}({GUID})").mock(
        return_value=dataverse_error(401, "0x8005f101", "The requested resource requires "
                                                         "authentication."))
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert caught.value.partner_status == 401 and caught.value.partner_code == "0x8005f101"


def test_bad_client_credentials_are_permanent(mock: respx.MockRouter,
                                              adapter: ProgresAdapter) -> None:
    mock.post(TOKEN_URL).mock(return_value=httpx.Response(
        401, json={"error": "invalid_client", "error_description": "AADSTS7000215: bad"}))
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert caught.value.partner_code == "invalid_client"
    no_record_values(caught.value)


def test_an_unavailable_token_endpoint_is_transient(mock: respx.MockRouter,
                                                    adapter: ProgresAdapter) -> None:
    mock.post(TOKEN_URL).mock(return_value=httpx.Response(503))
    with pytest.raises(TransientDeliveryError) as caught:
        adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert caught.value.partner_status == 503


# -- paging -----------------------------------------------------------------------------

def test_every_page_is_followed_through_next_link_unchanged(mock: respx.MockRouter,
                                                            adapter: ProgresAdapter) -> None:
    next_link = f"{API}/{REFERRALS}?$select=x&$skiptoken=opaque%3D%3D"
    route = mock.get(url__startswith=f"{API}/{REFERRALS}").mock(side_effect=[
        rows({"n": 1}, {"n": 2}, next_link=next_link), rows({"n": 3}, next_link=next_link + "2"),
        rows()])
    got = list(adapter.client.get_all(REFERRALS, "test", params={"$select": "x"}))
    assert [r["n"] for r in got] == [1, 2, 3]
    assert str(route.calls[1].request.url) == next_link
    for call in route.calls:
        assert "odata.maxpagesize=2" in call.request.headers["prefer"]
        assert call.request.headers["odata-version"] == "4.0"


# -- failure classification -------------------------------------------------------------

def test_throttling_is_transient_with_the_partners_retry_after(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}").mock(return_value=dataverse_error(
        429, "0x80072322", "Number of requests exceeded the limit", {"Retry-After": "7"}))
    with pytest.raises(TransientDeliveryError) as caught:
        adapter.create(referral_id="r-1", kind="referral", record=referral_record())
    assert caught.value.retry_after == 7 and caught.value.partner_status == 429
    no_record_values(caught.value)


def test_retry_after_may_be_an_http_date(mock: respx.MockRouter,
                                         adapter: ProgresAdapter) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    mock.get(url__startswith=f"{API}/{REFERRALS}").mock(
        return_value=httpx.Response(429, headers={"Retry-After": when}))
    with pytest.raises(TransientDeliveryError) as caught:
        adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert caught.value.retry_after is not None and 20 < caught.value.retry_after <= 30


@pytest.mark.parametrize("failure", [
    httpx.Response(500, json={"error": {"code": "0x80040216", "message": "Unexpected"}}),
    httpx.Response(503, text="<html>gateway</html>"),
    httpx.ReadTimeout("timed out"),
    httpx.ConnectError("refused"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message"),
], ids=["500", "503", "timeout", "connect", "cut"])
def test_server_errors_and_broken_connections_are_transient(
        mock: respx.MockRouter, adapter: ProgresAdapter, failure: Any) -> None:
    route = mock.get(url__startswith=f"{API}/{REFERRALS}")
    if isinstance(failure, httpx.Response):
        route.mock(return_value=failure)
    else:
        route.mock(side_effect=failure)
    with pytest.raises(TransientDeliveryError) as caught:
        adapter.create(referral_id="r-1", kind="referral", record=referral_record())
    no_record_values(caught.value)


def test_a_refused_create_is_permanent_with_the_partner_code_and_no_record_values(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}").mock(return_value=rows())
    mock.get(url__startswith=f"{API}/progres_individuals").mock(return_value=rows())
    mock.post(f"{API}/{REFERRALS}").mock(return_value=dataverse_error(
        400, "0x0", f"Cannot convert the literal '{FICTIONAL_NAME}' to 'Edm.Int32'"))
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.create(referral_id="r-1", kind="referral", record=referral_record())
    assert caught.value.partner_code == "0x0" and caught.value.partner_status == 400
    no_record_values(caught.value)


def test_a_missing_record_is_permanent(mock: respx.MockRouter,
                                       adapter: ProgresAdapter) -> None:
    mock.get(f"{API}/{REFERRALS}({GUID})").mock(return_value=dataverse_error(
        404, "0x80040217", f"progres_interoperabilityreferral With Id = {GUID} Does Not Exist"))
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.read(native_id=f"{REFERRALS}({GUID})")
    assert caught.value.partner_code == "0x80040217"


def test_a_native_id_of_another_shape_is_refused() -> None:
    with pytest.raises(PermanentDeliveryError):
        parse_native_id("progres_individuals(" + GUID + ")")
    assert parse_native_id(f"{REFERRALS}({GUID.upper()})") == (REFERRALS, GUID)


# -- idempotent create ------------------------------------------------------------------

def test_create_finds_the_record_made_before_and_posts_nothing(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    lookup = mock.get(url__startswith=f"{API}/{REFERRALS}").mock(
        return_value=rows({"progres_interoperabilityreferralid": GUID}))
    post = mock.post(f"{API}/{REFERRALS}")
    assert adapter.create(referral_id="it's-1", kind="referral",
                          record=referral_record()) == f"{REFERRALS}({GUID})"
    assert not post.called
    params = lookup.calls[0].request.url.params
    assert params["$filter"] == "progres_orgreferralid eq 'it''s-1'"


def test_create_posts_the_referral_with_the_external_reference_and_the_linked_person(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}").mock(return_value=rows())
    mock.get(url__startswith=f"{API}/progres_individuals").mock(return_value=rows(
        {"progres_individualid": OTHER, "_progres_registrationgroupid_value": GUID}))
    post = mock.post(f"{API}/{REFERRALS}").mock(return_value=httpx.Response(
        204, headers={"OData-EntityId": f"{API}/{REFERRALS}({GUID})"}))
    native_id = adapter.create(referral_id="r-1", kind="referral", record=referral_record())
    assert native_id == f"{REFERRALS}({GUID})"
    body = json.loads(post.calls[0].request.content)
    assert body["progres_orgreferralid"] == "r-1"
    assert body["progres_direction"] == 125080001
    assert body["progres_individualid@odata.bind"] == f"/progres_individuals({OTHER})"
    assert body["progres_registrationgroupid@odata.bind"] == f"/progres_registrationgroups({GUID})"
    assert body["progres_givenname"] == "Zawadi"


def test_a_duplicate_key_answer_returns_the_record_another_attempt_made(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}").mock(side_effect=[
        rows(), rows({"progres_interoperabilityreferralid": GUID})])
    mock.post(f"{API}/{REFERRALS}").mock(return_value=dataverse_error(
        409, "0x80040237", "A record with matching key values already exists."))
    native_id = adapter.create(referral_id="r-1", kind="referral",
                               record={"referral": {}})
    assert native_id == f"{REFERRALS}({GUID})"


# -- status -----------------------------------------------------------------------------

def test_update_status_stamps_the_referral_id_and_guards_with_the_etag(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}({GUID})").mock(return_value=httpx.Response(
        200, json={"@odata.etag": 'W/"12"', "progres_orgreferralid": None,
                   "statuscode": 125080002}))
    patch = mock.patch(f"{API}/{REFERRALS}({GUID})").mock(return_value=httpx.Response(204))
    adapter.update_status(native_id=f"{REFERRALS}({GUID})", referral_id="r-9",
                          status={"statuscode": 125080003})
    assert json.loads(patch.calls[0].request.content) == {"statuscode": 125080003,
                                                         "progres_orgreferralid": "r-9"}
    assert patch.calls[0].request.headers["if-match"] == 'W/"12"'


def test_update_status_writes_nothing_when_the_status_is_already_there(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}({GUID})").mock(return_value=httpx.Response(
        200, json={"@odata.etag": 'W/"12"', "progres_orgreferralid": "r-9",
                   "statuscode": 125080003}))
    patch = mock.patch(f"{API}/{REFERRALS}({GUID})")
    adapter.update_status(native_id=f"{REFERRALS}({GUID})", referral_id="r-9",
                          status={"statuscode": 125080003})
    assert not patch.called


def test_a_row_changed_meanwhile_is_transient(mock: respx.MockRouter,
                                              adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}({GUID})").mock(return_value=httpx.Response(
        200, json={"@odata.etag": 'W/"12"', "progres_orgreferralid": "r-9", "statuscode": 1}))
    mock.patch(f"{API}/{REFERRALS}({GUID})").mock(return_value=dataverse_error(
        412, "0x80060882", "The version of the existing record doesn't match"))
    with pytest.raises(TransientDeliveryError):
        adapter.update_status(native_id=f"{REFERRALS}({GUID})", referral_id="r-9",
                              status={"statuscode": 125080003})


def test_a_row_of_another_referral_is_not_overwritten(mock: respx.MockRouter,
                                                      adapter: ProgresAdapter) -> None:
    mock.get(url__startswith=f"{API}/{REFERRALS}({GUID})").mock(return_value=httpx.Response(
        200, json={"@odata.etag": 'W/"12"', "progres_orgreferralid": "r-other"}))
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.update_status(native_id=f"{REFERRALS}({GUID})", referral_id="r-9",
                              status={"statuscode": 125080003})
    no_record_values(caught.value)


# -- discover ---------------------------------------------------------------------------

def referral_row(guid: str, version: int, modifiedon: str, **values: Any) -> dict[str, Any]:
    return {"@odata.etag": f'W/"{version}"', "progres_interoperabilityreferralid": guid,
            "modifiedon": modifiedon, "_modifiedby_value": OTHER, **values}


def test_discover_reports_each_row_version_once_across_equal_timestamps(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(f"{API}/WhoAmI").mock(return_value=httpx.Response(200, json={"UserId": ME}))
    same_second = "2026-11-23T08:00:00Z"
    first = referral_row(GUID, 10, same_second, progres_orgreferralid="r-1",
                         statuscode=125080003)
    mine = referral_row(OTHER, 11, same_second, progres_orgreferralid="r-2",
                        _modifiedby_value=ME)
    again = referral_row(GUID, 12, same_second, progres_orgreferralid="r-1",
                         statuscode=125080004)
    referrals = mock.get(url__startswith=f"{API}/{REFERRALS}").mock(
        side_effect=[rows(first, mine), rows(first, mine), rows(first, mine, again)])
    mock.get(url__startswith=f"{API}/progres_datatransferrequests").mock(return_value=rows())
    cursor = json.dumps({"modifiedon": "2026-11-23T07:59:00Z", "seen": []})

    found = adapter.discover(cursor=cursor)
    assert [(c.kind, c.referral_id, c.record["referral"]["statuscode"])
            for c in found.changes] == [("status", "r-1", 125080003)]  # not our own write
    assert adapter.discover(cursor=found.cursor).changes == []
    later = adapter.discover(cursor=found.cursor)
    assert [c.record["referral"]["statuscode"] for c in later.changes] == [125080004]
    assert referrals.calls[1].request.url.params["$filter"] == "modifiedon ge 2026-11-23T07:59:55Z"


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.booleans()),
                min_size=1, max_size=25))
def test_discover_reports_every_latest_version_once_whatever_the_timing(
        events: list[tuple[int, int, bool]]) -> None:
    """Rows change in bursts within one second or across seconds; polls come whenever."""
    guids = [str(uuid.UUID(int=n + 1)) for n in range(4)]
    table: dict[str, dict[str, Any]] = {}
    clock = datetime(2026, 11, 23, 8, 0, 0)

    def referrals(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        found = sorted(table.values(), key=lambda r: str(r["modifiedon"]))
        if "$top" in params:  # the newest change, for a cursor "from now"
            return rows(*found[-1:])
        if "$filter" in params:
            since = params["$filter"].removeprefix("modifiedon ge ")
            found = [r for r in found if r["modifiedon"] >= since]
        return rows(*found)

    reported: list[tuple[str, str]] = []
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=token("t1"))
        router.get(f"{API}/WhoAmI").mock(return_value=httpx.Response(200, json={"UserId": ME}))
        router.get(url__startswith=f"{API}/{REFERRALS}").mock(side_effect=referrals)
        router.get(url__startswith=f"{API}/progres_datatransferrequests").mock(
            return_value=rows())
        gateway = ProgresAdapter(BASE, client_id="casebridge", client_secret="s3cret")
        cursor = gateway.discover(cursor=None).cursor

        def poll() -> None:
            nonlocal cursor
            found = gateway.discover(cursor=cursor)
            reported.extend((c.native_id, c.record["referral"]["@odata.etag"])
                            for c in found.changes)
            cursor = found.cursor

        for version, (row, advance, poll_now) in enumerate(events, start=1):
            clock += timedelta(seconds=advance)
            table[guids[row]] = referral_row(guids[row], version, f"{clock:%Y-%m-%dT%H:%M:%S}Z",
                                             progres_orgreferralid=f"r-{row}")
            if poll_now:
                poll()
        poll()
        gateway.close()

    assert len(reported) == len(set(reported))  # no version twice
    for guid, row in table.items():  # and the latest of each row at the end
        assert (f"{REFERRALS}({guid})", row["@odata.etag"]) in reported


# -- deadline alerts as tasks -------------------------------------------------------------

NATIVE_ID = f"{REFERRALS}({GUID})"


def test_an_overdue_alert_is_a_task_regarding_the_referral_for_its_assigned_user(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    alert = make_alert("overdue", referral_id="cbr-1")
    row = mock.get(f"{API}/{REFERRALS}({GUID})").respond(json={
        "_ownerid_value": ME, "_progres_assigneduserid_value": OTHER})
    post = mock.post(f"{API}/tasks").respond(
        204, headers={"OData-EntityId": f"{API}/tasks({uuid.uuid4()})"})
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert row.calls.last.request.url.params["$select"] == \
        "_ownerid_value,_progres_assigneduserid_value"
    sent = json.loads(post.calls.last.request.content)
    assert sent == {
        "activityid": str(uuid.uuid5(TASK_NAMESPACE, alert["alert_id"])),
        "subject": alert["message"], "description": alert["message"],
        "scheduledend": "2027-01-07T21:00:00Z", "prioritycode": 1,
        "category": "CaseBridge deadline", "subcategory": str(read_alert(alert).mark),
        "regardingobjectid_progres_interoperabilityreferral_task@odata.bind":
            f"/{REFERRALS}({GUID})",
        "ownerid@odata.bind": f"/systemusers({OTHER})"}


def test_an_escalated_alert_on_a_transfer_is_a_high_priority_task_for_its_owner(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(f"{API}/progres_datatransferrequests({GUID})").respond(json={"_ownerid_value": ME})
    post = mock.post(f"{API}/tasks").respond(
        204, headers={"OData-EntityId": f"{API}/tasks({uuid.uuid4()})"})
    adapter.alert(native_id=f"progres_datatransferrequests({GUID})", referral_id="cbr-1",
                  alert=make_alert("escalated", referral_id="cbr-1"))
    sent = json.loads(post.calls.last.request.content)
    assert sent["prioritycode"] == 2 and sent["ownerid@odata.bind"] == f"/systemusers({ME})"
    assert sent["regardingobjectid_progres_datatransferrequest_task@odata.bind"] == \
        f"/progres_datatransferrequests({GUID})"


def test_an_alert_delivered_again_meets_its_own_task_and_changes_nothing(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    mock.get(f"{API}/{REFERRALS}({GUID})").respond(json={"_ownerid_value": ME})
    mock.post(f"{API}/tasks").mock(return_value=dataverse_error(
        409, "0x80040237", "Cannot insert duplicate key."))
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1",
                  alert=make_alert("overdue", referral_id="cbr-1"))


def test_a_cleared_alert_completes_the_deadlines_open_tasks_under_their_etag(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    cleared = make_alert("cleared", referral_id="cbr-1")
    found = mock.get(f"{API}/tasks").mock(return_value=rows(
        {"@odata.etag": 'W/"7"', "activityid": GUID, "description": "Overdue."},
        {"@odata.etag": 'W/"9"', "activityid": OTHER, "description": None}))
    patch = mock.patch(url__regex=rf"{API}/tasks\(.+\)").respond(204)
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=cleared)
    query = found.calls.last.request.url.params["$filter"]
    assert query == (f"_regardingobjectid_value eq {GUID} and statecode eq 0 and "
                     f"startswith(subcategory,'{read_alert(cleared).mark.of_deadline}')")
    assert [(c.request.url.path, c.request.headers["if-match"]) for c in patch.calls] == [
        (f"/api/data/v9.2/tasks({GUID})", 'W/"7"'), (f"/api/data/v9.2/tasks({OTHER})", 'W/"9"')]
    assert [json.loads(c.request.content) for c in patch.calls] == [
        {"statecode": 1, "statuscode": 5, "description": f"Overdue.\n{cleared['message']}"},
        {"statecode": 1, "statuscode": 5, "description": cleared["message"]}]


def test_task_refusals_are_permanent_and_throttling_transient(
        mock: respx.MockRouter, adapter: ProgresAdapter) -> None:
    alert = make_alert("overdue", referral_id="cbr-1")
    mock.get(f"{API}/{REFERRALS}({GUID})").respond(json={"_ownerid_value": ME})
    post = mock.post(f"{API}/tasks")
    post.return_value = dataverse_error(403, "0x80040220", "missing prvCreateTask privilege")
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert refused.value.partner_code == "0x80040220"
    post.return_value = dataverse_error(429, "0x80072322", "Number of requests exceeded",
                                        headers={"Retry-After": "12"})
    with pytest.raises(TransientDeliveryError) as throttled:
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert throttled.value.retry_after == 12.0
    mock.get(f"{API}/{REFERRALS}({GUID})").mock(return_value=dataverse_error(
        404, "0x80040217", "progres_interoperabilityreferral With Id = x Does Not Exist"))
    with pytest.raises(PermanentDeliveryError) as gone:
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert gone.value.partner_status == 404
