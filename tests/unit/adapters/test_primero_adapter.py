"""The Primero adapter's protocol handling, against a mocked Primero (respx)."""

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from adapters.alerts import read_alert
from adapters.primero import PrimeroAdapter
from adapters.primero.adapter import CASE_NAMESPACE
from deadline_alerts import make_alert
from gateway.errors import PermanentDeliveryError, TransientDeliveryError

BASE = "http://primero.test"
API = f"{BASE}/api/v2"
CASE_ID = "0b0f5b3e-8f52-4c8c-9b43-2a7f3e6c1a01"
REFERRAL_ID = "5d1e2c3b-4a59-4f6e-8d7c-1b2a3c4d5e6f"
NATIVE_ID = f"{CASE_ID}/referrals/{REFERRAL_ID}"
SECRET_NAMES = ("Zawadi", "Fictionalson", "2014-03-09")


@pytest.fixture
def primero() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.post("/tokens", name="login").mock(
            return_value=httpx.Response(200, json={"id": 5, "user_name": "casebridge",
                                                   "token": "token-1"}))
        yield router


@pytest.fixture
def adapter() -> Iterator[PrimeroAdapter]:
    gateway = PrimeroAdapter(BASE, user="casebridge", password="secret", per=2)
    yield gateway
    gateway.close()


def native() -> dict[str, Any]:
    return {"case": {"module_id": "primeromodule-cp", "name_first": "Zawadi",
                     "name_last": "Fictionalson", "sex": "female",
                     "date_of_birth": "2014-03-09", "consent_for_services": True,
                     "disclosure_other_orgs": True},
            "referral": {"transitioned_to": "cp_worker", "service": "psychosocial_service"}}


def errors(status: int, message: Any, detail: Any = None) -> dict[str, Any]:
    entry = {"status": status, "resource": "/api/v2/cases", "message": message}
    return {"errors": [entry if detail is None else {**entry, "detail": detail}]}


def transition(status: str = "in_progress", **more: Any) -> dict[str, Any]:
    return {"id": REFERRAL_ID, "type": "Referral", "status": status, "record_id": CASE_ID,
            "transitioned_by": "casebridge", "transitioned_to": "cp_worker",
            "created_at": "2026-11-02T10:00:00.000Z", **more}


# Token login and refresh


def test_a_refused_token_is_renewed_once_and_the_call_repeated(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    primero.routes["login"].side_effect = [
        httpx.Response(200, json={"token": "token-1"}),
        httpx.Response(200, json={"token": "token-2"})]
    case = primero.get(f"/cases/{CASE_ID}").mock(side_effect=[
        httpx.Response(401, json=errors(401, "Unauthorized")),
        httpx.Response(200, json={"data": {"id": CASE_ID}})])
    primero.get(f"/cases/{CASE_ID}/referrals").respond(json={"data": [transition()]})
    held = adapter.read(native_id=NATIVE_ID)
    assert held["referral"]["status"] == "in_progress"
    assert primero.routes["login"].call_count == 2
    sent = [c.request.headers["authorization"] for c in case.calls]
    assert sent == ["Bearer token-1", "Bearer token-2"]
    login_body = json.loads(primero.routes["login"].calls[0].request.content)
    assert login_body == {"user": {"user_name": "casebridge", "password": "secret"}}


def test_the_token_may_come_in_the_authorization_header(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    primero.routes["login"].respond(200, json={"id": 5},
                                    headers={"Authorization": "Bearer from-header"})
    case = primero.get(f"/cases/{CASE_ID}").respond(json={"data": {"id": CASE_ID}})
    primero.get(f"/cases/{CASE_ID}/referrals").respond(json={"data": [transition()]})
    adapter.read(native_id=NATIVE_ID)
    assert case.calls.last.request.headers["authorization"] == "Bearer from-header"


def test_a_401_after_a_fresh_login_is_permanent(primero: respx.MockRouter,
                                                adapter: PrimeroAdapter) -> None:
    primero.get(f"/cases/{CASE_ID}").respond(401, json=errors(401, "Unauthorized"))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.read(native_id=NATIVE_ID)
    assert refused.value.partner_status == 401
    assert primero.routes["login"].call_count == 2


def test_a_refused_login_is_permanent(primero: respx.MockRouter,
                                      adapter: PrimeroAdapter) -> None:
    primero.routes["login"].respond(401, json=errors(401, "Invalid User name or password."))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.read(native_id=NATIVE_ID)
    assert refused.value.partner_code == "Invalid User name or password."
    assert "secret" not in str(refused.value)


# Failure classification


def test_429_is_transient_with_the_partners_retry_after(primero: respx.MockRouter,
                                                       adapter: PrimeroAdapter) -> None:
    route = primero.get(f"/cases/{CASE_ID}")
    route.respond(429, json=errors(429, "Too many requests; retry later."),
                  headers={"Retry-After": "7"})
    with pytest.raises(TransientDeliveryError) as throttled:
        adapter.read(native_id=NATIVE_ID)
    assert (throttled.value.retry_after, throttled.value.partner_status) == (7.0, 429)

    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    route.respond(429, headers={"Retry-After": later})
    with pytest.raises(TransientDeliveryError) as dated:
        adapter.read(native_id=NATIVE_ID)
    assert dated.value.retry_after is not None and 25 <= dated.value.retry_after <= 30


@pytest.mark.parametrize("failure", [
    httpx.Response(500, json=errors(500, "Unexpected server error.")),
    httpx.Response(502, text="<html>Bad gateway</html>"),
    httpx.Response(503, json=errors(503, "Service Unavailable"), headers={"Retry-After": "2"}),
    httpx.ReadTimeout("timed out"),
    httpx.ConnectError("refused"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.Response(200, text='{"data": {"id": "0b0f'),
], ids=["500", "502", "503", "timeout", "connect", "cut", "truncated"])
def test_server_errors_and_broken_connections_are_transient(
        primero: respx.MockRouter, adapter: PrimeroAdapter,
        failure: httpx.Response | Exception) -> None:
    route = primero.get(f"/cases/{CASE_ID}")
    if isinstance(failure, Exception):
        route.side_effect = failure
    else:
        route.return_value = failure
    with pytest.raises(TransientDeliveryError) as transient:
        adapter.read(native_id=NATIVE_ID)
    if isinstance(failure, httpx.Response) and failure.status_code == 503:
        assert transient.value.retry_after == 2.0


def test_validation_refusals_are_permanent_with_primeros_error_key(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    primero.get("/cases").respond(json={"data": [], "metadata": {"total": 0, "per": 2,
                                                                 "page": 1}})
    primero.post("/cases").respond(204)
    primero.get(path__regex=r"/cases/[^/]+/transitions").respond(json={"data": []})
    primero.post(path__regex=r"/cases/[^/]+/referrals").respond(
        422, json=errors(422, ["transition.errors.consent"], "consent"))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.create(referral_id="cbr-1", kind="referral", record=native())
    assert refused.value.partner_status == 422
    assert refused.value.partner_code == "transition.errors.consent"
    assert "consent" in str(refused.value)


def test_a_bad_request_is_permanent(primero: respx.MockRouter,
                                    adapter: PrimeroAdapter) -> None:
    primero.get(f"/cases/{CASE_ID}").respond(400, json=errors(400, "Bad Request"))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.read(native_id=NATIVE_ID)
    assert refused.value.partner_status == 400


def test_error_messages_carry_no_record_values(primero: respx.MockRouter,
                                               adapter: PrimeroAdapter) -> None:
    primero.get("/cases").respond(json={"data": [], "metadata": {"total": 0}})
    primero.get(path__regex=r"/cases/[^/]+/transitions").respond(json={"data": [transition()]})
    echo = "Zawadi Fictionalson born 2014-03-09 is not valid"
    post = primero.post("/cases")
    failures: list[Exception] = []
    for answer in (httpx.Response(422, json=errors(422, echo, ["Zawadi", "/sex"])),
                   httpx.Response(422, json=errors(422, [echo], echo)),
                   httpx.Response(500, json=errors(500, echo)),
                   httpx.Response(409, json=errors(409, echo))):
        post.return_value = answer
        try:
            adapter.create(referral_id="cbr-1", kind="referral", record=native())
        except (PermanentDeliveryError, TransientDeliveryError) as failure:
            failures.append(failure)
    assert len(failures) == 3  # the 409 means "made before" and is not a failure
    for caught in failures:
        text = json.dumps({"detail": str(caught), **getattr(caught, "extensions", {})})
        assert not any(value in text for value in SECRET_NAMES), text
    assert "/sex" in str(failures[0])


# Paging and discovery


def fake_case_list(cases: list[dict[str, Any]]) -> Any:
    """A side effect serving `GET /cases` with Primero's range filter, order and paging."""

    def serve(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        low = params.get("last_updated_at", "..").split("..")[0]
        found = sorted((c for c in cases if c["last_updated_at"] >= low),
                       key=lambda c: (c["last_updated_at"], c["id"]))
        if params.get("order") == "desc":
            found.reverse()
        page, per = int(params.get("page", 1)), int(params.get("per", 20))
        shown = found[(page - 1) * per:page * per]
        return httpx.Response(200, json={"data": shown, "metadata": {
            "total": len(found), "per": per, "page": page}})

    return serve


def test_discover_pages_through_every_changed_case(primero: respx.MockRouter,
                                                  adapter: PrimeroAdapter) -> None:
    stamps = ["2026-11-02T10:00:01.000Z", "2026-11-02T10:00:02.000Z",
              "2026-11-02T10:00:02.000Z", "2026-11-02T10:00:02.000Z",
              "2026-11-02T10:00:03.000Z"]
    cases = [{"id": f"case-{n}", "last_updated_at": s, "casebridge_referral_id": f"cbr-{n}"}
             for n, s in enumerate(stamps)]
    listing = primero.get("/cases").mock(side_effect=fake_case_list(cases))
    primero.get(path__regex=r"/cases/case-\d/transitions").mock(side_effect=lambda request: (
        httpx.Response(200, json={"data": [transition(
            "accepted", id=f"t-{request.url.path.split('/')[-2]}",
            responded_at="2026-11-02T10:00:00.500Z")]})))
    found = adapter.discover(cursor="2026-11-02T10:00:00.000Z")
    assert [c.referral_id for c in found.changes] == [f"cbr-{n}" for n in range(5)]
    assert {c.kind for c in found.changes} == {"status"}
    assert found.changes[0].native_id == "case-0/referrals/t-case-0"
    pages = [(c.request.url.params["last_updated_at"], c.request.url.params["page"])
             for c in listing.calls]
    assert pages[0] == ("2026-11-02T09:59:58.000Z..", "1")  # the cursor less the overlap
    assert ("2026-11-02T10:00:02.000Z..", "2") in pages  # a full page at one instant
    assert all(c.request.url.params["per"] == "2" for c in listing.calls)
    assert all(c.request.url.params["order_by"] == "last_updated_at" for c in listing.calls)
    # Nothing new: the next poll reports nothing even though the same instants come back.
    listing.calls.reset()
    assert adapter.discover(cursor=found.cursor).changes == []
    assert json.loads(found.cursor or "{}")["since"] == stamps[-1]


def test_a_burst_of_cases_changed_at_one_instant_keeps_the_cursor_within_its_column(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    stamp = "2026-11-02T10:00:01.000Z"
    cases = [{"id": f"0b0f5b3e-8f52-4c8c-9b43-2a7f3e6c{n:04d}", "last_updated_at": stamp,
              "casebridge_referral_id": f"cbr-{n}"} for n in range(60)]
    primero.get("/cases").mock(side_effect=fake_case_list(cases))
    primero.get(path__regex=r"/cases/[^/]+/transitions").respond(
        json={"data": [transition("accepted")]})
    found = adapter.discover(cursor="2026-11-02T10:00:00.000Z")
    assert len(found.changes) == 60
    assert found.cursor is not None and len(found.cursor) <= 500  # partner_cursors.cursor
    # What no longer fits is at worst reported again (a repeat), never missed.
    again = adapter.discover(cursor=found.cursor)
    assert {c.referral_id for c in again.changes} <= {f"cbr-{n}" for n in range(60)}


def test_discover_from_now_reports_nothing_and_starts_at_the_newest_change(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    cases = [{"id": "case-1", "last_updated_at": "2026-11-02T10:00:01.000Z",
              "casebridge_referral_id": "cbr-1"}]
    primero.get("/cases").mock(side_effect=fake_case_list(cases))
    primero.get("/cases/case-1/transitions").respond(json={"data": [transition("accepted")]})
    first = adapter.discover(cursor=None)
    assert first.changes == []
    assert json.loads(first.cursor or "{}")["since"] == "2026-11-02T10:00:01.000Z"
    cases.append({"id": "case-1", "last_updated_at": "2026-11-02T10:00:05.000Z",
                  "casebridge_referral_id": "cbr-1"})
    del cases[0]
    assert [c.referral_id for c in adapter.discover(cursor=first.cursor).changes] == ["cbr-1"]


def test_discover_reports_a_referral_raised_to_the_gateway_once(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    cases = [{"id": CASE_ID, "last_updated_at": "2026-11-02T10:00:01.000Z"}]
    primero.get("/cases").mock(side_effect=fake_case_list(cases))
    raised = transition(transitioned_by="cp_worker", transitioned_to="casebridge",
                        created_at="2026-11-02T10:00:01.000Z")
    local = transition(id="t-local", transitioned_by="cp_worker", transitioned_to="cp_worker_2",
                       created_at="2026-11-02T10:00:01.000Z")
    primero.get(f"/cases/{CASE_ID}/transitions").respond(json={"data": [raised, local]})
    found = adapter.discover(cursor="2026-11-02T10:00:00.000Z")
    assert [(c.kind, c.native_id, c.referral_id) for c in found.changes] == [
        ("referral", NATIVE_ID, None)]
    cases[0]["last_updated_at"] = "2026-11-02T10:00:01.500Z"  # the case changes again
    assert adapter.discover(cursor=found.cursor).changes == []


# Idempotent create and status updates


def test_create_finds_the_records_made_before_and_makes_no_second(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    case_id = str(uuid.uuid5(CASE_NAMESPACE, "cbr-1"))  # the id the adapter gives the case
    made = primero.post("/cases").respond(
        409, json=errors(409, "Conflict: A record with this id already exists"))
    primero.get(f"/cases/{case_id}/transitions").respond(json={"data": [transition()]})
    refer = primero.post(path__regex=r"/cases/[^/]+/referrals")
    assert adapter.create(referral_id="cbr-1", kind="referral",
                          record=native()) == f"{case_id}/referrals/{REFERRAL_ID}"
    assert json.loads(made.calls.last.request.content)["data"]["id"] == case_id
    assert not refer.called


def test_create_after_a_lost_answer_makes_no_second_case_or_referral(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    made: list[dict[str, Any]] = []
    referrals: list[dict[str, Any]] = []

    def make_case(request: httpx.Request) -> httpx.Response:
        case = json.loads(request.content)["data"]
        if any(m["id"] == case["id"] for m in made):  # as Primero answers a known id
            return httpx.Response(409, json=errors(
                409, "Conflict: A record with this id already exists"))
        made.append(case)
        raise httpx.RemoteProtocolError("answer cut")

    def refer(request: httpx.Request) -> httpx.Response:
        referrals.append(transition())
        raise httpx.ReadTimeout("no answer")

    primero.post("/cases").mock(side_effect=make_case)
    primero.get(path__regex=r"/cases/[^/]+/transitions").mock(
        side_effect=lambda request: httpx.Response(200, json={"data": referrals}))
    post_referral = primero.post(path__regex=r"/cases/[^/]+/referrals").mock(side_effect=refer)
    for _ in range(2):
        with pytest.raises(TransientDeliveryError):
            adapter.create(referral_id="cbr-1", kind="referral", record=native())
    native_id = adapter.create(referral_id="cbr-1", kind="referral", record=native())
    assert (len(made), post_referral.call_count) == (1, 1)
    assert native_id.endswith(f"/referrals/{REFERRAL_ID}")
    sent = made[0]
    assert sent["casebridge_referral_id"] == "cbr-1" and sent["id"] == native_id.split("/")[0]


@pytest.mark.parametrize(("case_answer", "looked"), [(201, False), (409, True)])
def test_create_looks_for_an_earlier_referral_only_on_a_case_it_did_not_make(
        primero: respx.MockRouter, adapter: PrimeroAdapter, case_answer: int,
        looked: bool) -> None:
    primero.get("/cases").respond(json={"data": [], "metadata": {"total": 0}})
    primero.post("/cases").respond(case_answer, json={"data": {}})
    earlier = primero.get(path__regex=r"/cases/[^/]+/transitions").respond(
        json={"data": []})
    refer = primero.post(path__regex=r"/cases/[^/]+/referrals").respond(
        json={"data": transition()})
    assert adapter.create(referral_id="cbr-1", kind="referral",
                          record=native()).endswith(f"/referrals/{REFERRAL_ID}")
    assert (earlier.called, refer.call_count) == (looked, 1)


def test_a_referral_is_revoked_by_delete_and_a_transfer_by_patch(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    delete = primero.delete(f"/cases/{CASE_ID}/referrals/{REFERRAL_ID}").respond(
        json={"data": transition("revoked")})
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1",
                          status={"status": "revoked"})
    assert delete.called
    patch = primero.patch(f"/cases/{CASE_ID}/transfers/{REFERRAL_ID}").respond(
        json={"data": transition("rejected", type="Transfer")})
    adapter.update_status(native_id=f"{CASE_ID}/transfers/{REFERRAL_ID}", referral_id="cbr-1",
                          status={"status": "rejected", "rejected_reason": "No capacity",
                                  "rejection_note": None})
    assert json.loads(patch.calls.last.request.content) == {
        "data": {"status": "rejected", "rejected_reason": "No capacity"}}


def test_a_move_primero_ignores_is_permanent(primero: respx.MockRouter,
                                            adapter: PrimeroAdapter) -> None:
    primero.patch(f"/cases/{CASE_ID}/referrals/{REFERRAL_ID}").respond(
        json={"data": transition("in_progress")})
    with pytest.raises(PermanentDeliveryError) as ignored:
        adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1", status={"status": "done"})
    assert ignored.value.partner_code == "transition_not_allowed"


@pytest.mark.parametrize(("native_id", "status"), [
    (f"{CASE_ID}/transfers/{REFERRAL_ID}", "done"),
    (NATIVE_ID, "pending"),
    ("not-a-native-id", "accepted"),
])
def test_impossible_requests_are_permanent_before_calling_primero(
        primero: respx.MockRouter, adapter: PrimeroAdapter, native_id: str, status: str) -> None:
    with pytest.raises(PermanentDeliveryError):
        adapter.update_status(native_id=native_id, referral_id="cbr-1",
                              status={"status": status})
    with pytest.raises(PermanentDeliveryError):
        adapter.create(referral_id="cbr-1", kind="assign", record=native())
    assert not primero.routes["login"].called


# Deadline alerts as flags


def flag(flag_id: int, message: str, *, removed: bool = False) -> dict[str, Any]:
    return {"id": flag_id, "record_id": CASE_ID, "record_type": "cases", "date": "2027-01-07",
            "message": message, "flagged_by": "casebridge", "removed": removed}


def test_an_overdue_alert_flags_the_case_with_its_message_and_mark(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    alert = make_alert("overdue", referral_id="cbr-1")
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": [flag(1, "Home visit due")]})
    post = primero.post(f"/cases/{CASE_ID}/flags").respond(
        json={"data": flag(2, "x") | {"record": {"id": CASE_ID, "flagged": True}}})
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    sent = json.loads(post.calls.last.request.content)
    mark = read_alert(alert).mark
    assert sent == {"data": {"date": "2027-01-07", "message": f"{alert['message']} ({mark})"}}


def test_an_alert_already_flagged_is_not_flagged_again(primero: respx.MockRouter,
                                                       adapter: PrimeroAdapter) -> None:
    alert = make_alert("escalated", referral_id="cbr-1")
    mark = read_alert(alert).mark
    primero.get(f"/cases/{CASE_ID}/flags").respond(
        json={"data": [flag(7, f"Still overdue ({mark})")]})
    post = primero.post(f"/cases/{CASE_ID}/flags")
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert not post.called


def test_a_long_message_is_cut_so_the_reason_and_mark_fit_what_primero_shows(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    alert = {**make_alert("overdue", referral_id="cbr-1"), "message": "Overdue. " * 55}
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": []})
    post = primero.post(f"/cases/{CASE_ID}/flags").respond(json={"data": flag(2, "x")})
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    reason = json.loads(post.calls.last.request.content)["data"]["message"]
    assert len(reason) == 255 and reason.endswith(f"… ({read_alert(alert).mark})")


def test_a_cleared_alert_resolves_the_deadlines_flags_still_up_and_nothing_else(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    overdue = make_alert("overdue", referral_id="cbr-1")
    escalated = make_alert("escalated", referral_id="cbr-1")
    other = make_alert("overdue", referral_id="cbr-1", deadline="complete", state="accepted")
    cleared = make_alert("cleared", referral_id="cbr-1")
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": [
        flag(1, f"o ({read_alert(overdue).mark})", removed=True),
        flag(2, f"e ({read_alert(escalated).mark})"),
        flag(3, f"c ({read_alert(other).mark})"), flag(4, "Home visit due")]})
    patch = primero.patch(path__regex=rf"/cases/{CASE_ID}/flags/\d+").respond(
        json={"data": flag(2, "e", removed=True)})
    adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=cleared)
    assert [c.request.url.path.rsplit("/", 1)[1] for c in patch.calls] == ["2"]
    assert json.loads(patch.calls.last.request.content) == {"data": {
        "unflag_message": f"{cleared['message']} ({read_alert(cleared).mark})"}}


def test_flag_refusals_and_outages_map_to_permanent_and_transient(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    alert = make_alert("overdue", referral_id="cbr-1")
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": []})
    post = primero.post(f"/cases/{CASE_ID}/flags")
    post.return_value = httpx.Response(422, json=errors(422, ["errors.models.flags.message"],
                                                        "message"))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert refused.value.partner_code == "errors.models.flags.message"
    post.return_value = httpx.Response(403, json=errors(403, "Forbidden"))
    with pytest.raises(PermanentDeliveryError) as forbidden:
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert forbidden.value.partner_code == "Forbidden"
    post.return_value = httpx.Response(503, json=errors(503, "Service Unavailable"),
                                       headers={"Retry-After": "4"})
    with pytest.raises(TransientDeliveryError) as busy:
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1", alert=alert)
    assert busy.value.retry_after == 4.0


def test_a_malformed_alert_or_native_id_calls_nobody(primero: respx.MockRouter,
                                                     adapter: PrimeroAdapter) -> None:
    flags = primero.get(path__regex=r"/flags")
    with pytest.raises(PermanentDeliveryError):
        adapter.alert(native_id=NATIVE_ID, referral_id="cbr-1",
                      alert={**make_alert("overdue", referral_id="cbr-1"), "flag": "late"})
    with pytest.raises(PermanentDeliveryError):
        adapter.alert(native_id="not-a-case", referral_id="cbr-1",
                      alert=make_alert("overdue", referral_id="cbr-1"))
    assert not flags.called and not primero.routes["login"].called


# A delivery the gateway gave up on, told to the sending Primero as a flag


UNDELIVERED = "urn:casebridge:undelivered:"


def test_a_failed_delivery_flags_the_senders_case_naming_ids_and_the_agency_only(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": [flag(1, "Home visit due")]})
    primero.get(f"/cases/{CASE_ID}/referrals").respond(json={"data": [transition(
        transitioned_by="cp_worker", transitioned_to="casebridge",
        transitioned_to_agency="agency-unhcr-eth")]})
    post = primero.post(f"/cases/{CASE_ID}/flags").respond(json={"data": flag(2, "x")})
    patch = primero.patch(path__regex=r"/referrals/")
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1",
                          status={"flag": "delivery_failed"})
    sent = json.loads(post.calls.last.request.content)["data"]
    assert sent["date"] == datetime.now(UTC).date().isoformat()
    assert sent["message"].startswith(
        "CaseBridge could not deliver referral cbr-1 to agency-unhcr-eth; operations staff "
        "are on it. (urn:casebridge:undelivered:")
    assert len(sent["message"]) <= 255
    assert not patch.called  # the referral's own status is not touched: no rejection


def flag_undelivered(primero: respx.MockRouter, adapter: PrimeroAdapter
                     ) -> tuple[respx.Route, str]:
    """Referral cbr-1 told undelivered to a case with no flags yet: the flags route and
    the message of the flag it raised."""
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": []})
    primero.get(f"/cases/{CASE_ID}/referrals").respond(json={"data": [transition()]})
    post = primero.post(f"/cases/{CASE_ID}/flags").respond(json={"data": flag(2, "x")})
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1",
                          status={"flag": "delivery_failed"})
    return post, json.loads(post.calls.last.request.content)["data"]["message"]


def test_a_failed_delivery_told_again_while_its_flag_is_up_flags_nothing_more(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    post, reason = flag_undelivered(primero, adapter)
    assert " to " not in reason.split(";")[0]  # no agency on the transition: none named
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": [flag(2, reason)]})
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1",
                          status={"flag": "delivery_failed"})
    assert post.call_count == 1
    # Another referral of the same case is flagged on its own.
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-2",
                          status={"flag": "delivery_failed"})
    assert post.call_count == 2


def test_delivered_after_a_redrive_resolves_the_flag_and_only_that_flag(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    post, ours = flag_undelivered(primero, adapter)
    theirs = make_alert("overdue", referral_id="cbr-1")
    primero.get(f"/cases/{CASE_ID}/flags").respond(json={"data": [
        flag(1, ours, removed=True), flag(2, ours), flag(3, "Home visit due"),
        flag(4, f"o ({read_alert(theirs).mark})")]})
    resolve = primero.patch(path__regex=rf"/cases/{CASE_ID}/flags/\d+").respond(
        json={"data": flag(2, ours, removed=True)})
    transitions = primero.patch(path__regex=r"/referrals/")
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1",
                          status={"status": "in_progress", "resolve_flag": "delivery_failed"})
    assert [c.request.url.path.rsplit("/", 1)[1] for c in resolve.calls] == ["2"]
    unflag = json.loads(resolve.calls.last.request.content)["data"]["unflag_message"]
    assert unflag.startswith("CaseBridge has now delivered referral cbr-1. (" + UNDELIVERED)
    assert not transitions.called


def test_a_redrive_tells_primero_nothing_and_an_unknown_flag_is_refused(
        primero: respx.MockRouter, adapter: PrimeroAdapter) -> None:
    anything = primero.route(path__regex=r"/cases")
    adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1", status={})
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.update_status(native_id=NATIVE_ID, referral_id="cbr-1",
                              status={"flag": "on_fire"})
    assert refused.value.partner_code == "unsupported_flag"
    assert not anything.called and not primero.routes["login"].called
