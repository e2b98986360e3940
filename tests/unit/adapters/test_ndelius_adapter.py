"""The nDelius adapter against a mocked nDelius (respx): auth, paging, failures, shapes."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

import adapters.http
from adapters.alerts import read_alert
from adapters.base import Discovery
from adapters.ndelius import NdeliusAdapter
from adapters.ndelius.client import NdeliusClient
from deadline_alerts import make_alert
from gateway.errors import PermanentDeliveryError, TransientDeliveryError

BASE = "http://ndelius.test"
CRN, SURNAME, BIRTH = "X070001", "Fictionalson", "1988-04-12"


@pytest.fixture
def delius() -> Iterator[respx.MockRouter]:
    """A mocked nDelius whose token endpoint hands out t1, t2, … (20-minute lifetime)."""
    issued = iter(range(1, 1000))
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/auth/oauth/token").mock(side_effect=lambda _: httpx.Response(200, json={
            "access_token": f"t{next(issued)}", "token_type": "bearer", "expires_in": 1200}))
        yield router


@pytest.fixture
def adapter() -> Iterator[NdeliusAdapter]:
    made = NdeliusAdapter(BASE, client_id="casebridge", client_secret="s3cret")
    yield made
    made.close()


def error(status: int, code: str, message: str = "Refused", **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={
        "status": status, "errorCode": code, "userMessage": message,
        "developerMessage": message, "moreInfo": None})


def nsi(nsi_id: int = 42, *, reference: str | None = "ref-1", history: list[Any] | None = None,
        status: str = "REQ") -> dict[str, Any]:
    return {"nsiId": nsi_id, "offenderCrn": CRN, "nsiType": {"code": "TRF01"},
            "nsiStatus": {"code": status}, "externalReference": reference,
            "manager": {"provider": {"code": "N03"}, "team": {"code": "N03AOM"},
                        "staff": {"code": "N03AOM1"}},
            "statusHistory": history or [], "transferForm": {"receivingPdu": "N03A"},
            "actions": [{"id": 1, "description": "Complete the address assessment"}]}


def person() -> dict[str, Any]:
    return {"crn": CRN, "name": {"forename": "Ashley", "surname": SURNAME}, "dateOfBirth": BIRTH}


def record(subtype: str | None = None) -> dict[str, Any]:
    return {"subtype": subtype,
            "person": {**person(), "gender": "M", "manager": {"team": "N07AOM"}},
            "nsi": {"intendedProvider": "N03", "notes": f"{SURNAME} moves to Cardiff"},
            "transfer_form": {"receivingPdu": "N03A", "reason": "FAM"}}


def page(*items: dict[str, Any], last: bool = True) -> httpx.Response:
    return httpx.Response(200, json={"content": list(items), "last": last,
                                     "totalElements": len(items)})


def event(sequence: int, event_type: str, **info: Any) -> dict[str, Any]:
    envelope = {"eventType": event_type, "version": 1, "occurredAt": "2026-11-23T10:00:00Z",
                "description": "d", "detailUrl": f"{BASE}/nsi/{info.get('nsiId')}",
                "personReference": {"identifiers": [{"type": "CRN", "value": CRN}]},
                "additionalInformation": {"nsiType": "TRF01", "raisedByProvider": "N07",
                                          "intendedProvider": "N03", "externalReference": None,
                                          "updatedBy": "N07AOM2", **info}}
    return {"sequence": sequence, "Message": json.dumps(envelope),
            "MessageAttributes": {"eventType": {"Type": "String", "Value": event_type}}}


def feed(*events: dict[str, Any], cursor: str, more: bool = False) -> httpx.Response:
    return httpx.Response(200, json={"content": list(events), "cursor": cursor,
                                     "latest": cursor, "hasMore": more})


# --- tokens ----------------------------------------------------------------------------------
def test_one_token_serves_many_requests(delius: respx.MockRouter,
                                        adapter: NdeliusAdapter) -> None:
    reads = delius.get("/nsi/42").mock(return_value=httpx.Response(200, json=nsi()))
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    adapter.read(native_id="42")
    adapter.read(native_id="42")
    assert delius.routes[0].call_count == 1
    assert reads.calls.last.request.headers["authorization"] == "Bearer t1"
    token_request = delius.routes[0].calls.last.request
    assert token_request.url.params["grant_type"] == "client_credentials"
    assert token_request.headers["authorization"].startswith("Basic ")


def test_a_401_renews_the_token_and_retries_once(delius: respx.MockRouter,
                                                 adapter: NdeliusAdapter) -> None:
    reads = delius.get("/nsi/42").mock(side_effect=[error(401, "UNAUTHORIZED"),
                                                    httpx.Response(200, json=nsi())])
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    assert adapter.read(native_id="42")["nsi"]["nsiId"] == 42
    assert [c.request.headers["authorization"] for c in reads.calls] == ["Bearer t1",
                                                                        "Bearer t2"]


def test_a_second_401_is_permanent(delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    reads = delius.get("/nsi/42").mock(return_value=error(401, "UNAUTHORIZED"))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.read(native_id="42")
    assert refused.value.partner_status == 401 and reads.call_count == 2
    assert delius.routes[0].call_count == 2


def test_a_token_is_renewed_before_it_expires(delius: respx.MockRouter,
                                              adapter: NdeliusAdapter,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(adapters.http.time, "monotonic", lambda: clock[0])
    delius.routes[0].mock(side_effect=lambda _: httpx.Response(200, json={
        "access_token": f"short{clock[0]}", "token_type": "bearer", "expires_in": 60}))
    reads = delius.get("/nsi/42").mock(return_value=httpx.Response(200, json=nsi()))
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    adapter.read(native_id="42")
    clock[0] += 55  # within the 60 s lifetime, but inside the renewal margin
    adapter.read(native_id="42")
    assert [c.request.headers["authorization"] for c in reads.calls] == [
        "Bearer short1000.0", "Bearer short1055.0"]


def test_token_endpoint_failures_are_classified(delius: respx.MockRouter,
                                                adapter: NdeliusAdapter) -> None:
    delius.routes[0].mock(side_effect=[
        httpx.Response(503), httpx.Response(401, json={"error": "unauthorized",
                                                        "error_description": "Bad creds"})])
    with pytest.raises(TransientDeliveryError):
        adapter.read(native_id="42")
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.read(native_id="42")
    assert (refused.value.partner_status, refused.value.partner_code) == (401, "unauthorized")


# --- paging ----------------------------------------------------------------------------------
def test_spring_pages_are_followed_to_the_last(delius: respx.MockRouter) -> None:
    listing = delius.get("/nsi").mock(side_effect=[
        page({"nsiId": 1}, {"nsiId": 2}, last=False), page({"nsiId": 3}, last=False),
        page({"nsiId": 4})])
    client = NdeliusClient(BASE, client_id="casebridge", client_secret="s3cret", timeout=5)
    items = list(client.pages("nsi.find", "/nsi", params={"status": "REQ"}, size=2))
    client.close()
    assert [i["nsiId"] for i in items] == [1, 2, 3, 4]
    assert [c.request.url.params["page"] for c in listing.calls] == ["0", "1", "2"]
    assert {c.request.url.params["status"] for c in listing.calls} == {"REQ"}


def test_discover_follows_the_feed_across_pages(delius: respx.MockRouter) -> None:
    adapter = NdeliusAdapter(BASE, client_id="casebridge", client_secret="s3cret", page_size=1)
    events = delius.get("/events").mock(side_effect=[
        feed(event(7, "probation-case.nsi.created", nsiId=42), cursor="7", more=True),
        feed(event(9, "probation-case.nsi.created", nsiId=43), cursor="9")])
    delius.get("/nsi/42").mock(return_value=httpx.Response(200, json=nsi(42, reference=None)))
    delius.get("/nsi/43").mock(return_value=httpx.Response(200, json=nsi(43, reference=None)))
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    found = adapter.discover(cursor="5")
    adapter.close()
    assert [c.native_id for c in found.changes] == ["42", "43"] and found.cursor == "9"
    assert [c.request.url.params["after"] for c in events.calls] == ["5", "7"]
    assert events.calls[0].request.url.params.get_list("eventType") == [
        "probation-case.nsi.created", "probation-case.nsi.status-changed"]


# --- failures --------------------------------------------------------------------------------
@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("0", 0.0), (None, None),
                                                  ("soon", None)])
def test_429_is_transient_with_the_partners_retry_after(
        delius: respx.MockRouter, adapter: NdeliusAdapter, header: str | None,
        expected: float | None) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    delius.get("/nsi/42").mock(return_value=error(429, "TOO_MANY_REQUESTS", **headers))
    with pytest.raises(TransientDeliveryError) as throttled:
        adapter.read(native_id="42")
    assert throttled.value.retry_after == expected
    assert throttled.value.partner_status == 429


def test_retry_after_may_be_an_http_date(delius: respx.MockRouter,
                                         adapter: NdeliusAdapter) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delius.get("/nsi/42").mock(return_value=error(429, "TOO_MANY_REQUESTS", **{
        "Retry-After": when}))
    with pytest.raises(TransientDeliveryError) as throttled:
        adapter.read(native_id="42")
    assert throttled.value.retry_after is not None and 25 <= throttled.value.retry_after <= 30


@pytest.mark.parametrize("failure", [
    error(500, "INTERNAL_SERVER_ERROR"), error(503, "SERVICE_UNAVAILABLE"),
    httpx.ReadTimeout("timed out"), httpx.ConnectError("refused"),
    httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
    httpx.Response(200, text="<html>gateway</html>")])
def test_server_errors_timeouts_and_cut_connections_are_transient(
        delius: respx.MockRouter, adapter: NdeliusAdapter, failure: Any) -> None:
    delius.get("/nsi/42").mock(side_effect=[failure])
    with pytest.raises(TransientDeliveryError):
        adapter.read(native_id="42")


@pytest.mark.parametrize(("status", "code"), [(400, "VALIDATION_FAILURE"),
                                              (422, "UNKNOWN_PDU"), (404, "NOT_FOUND"),
                                              (409, "INVALID_STATUS_TRANSITION"),
                                              (403, "FORBIDDEN")])
def test_other_refusals_are_permanent_with_the_partner_code(
        delius: respx.MockRouter, adapter: NdeliusAdapter, status: int, code: str) -> None:
    delius.put("/nsi/42/status").mock(return_value=error(status, code))
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.update_status(native_id="42", referral_id="ref-1", status={"status": "ACC"})
    assert (refused.value.partner_status, refused.value.partner_code) == (status, code)
    assert code in str(refused.value) and "ref-1" in str(refused.value)


def test_error_messages_carry_no_record_values(delius: respx.MockRouter,
                                               adapter: NdeliusAdapter) -> None:
    quoting = f"Person with crn of {CRN} ({SURNAME}, born {BIRTH}) is not valid"
    delius.get("/nsi").mock(return_value=page())
    delius.get(f"/person/{CRN}").mock(side_effect=[
        httpx.ReadTimeout(f"timed out reading {BASE}/person/{CRN}"),
        error(422, "INVALID_CODE", quoting), httpx.Response(200, json=person())])
    delius.post("/nsi").mock(return_value=error(400, f"{CRN} bad", quoting))
    failures: list[Exception] = []
    for _ in range(3):
        with pytest.raises((TransientDeliveryError, PermanentDeliveryError)) as failed:
            adapter.create(referral_id="ref-1", kind="transfer", record=record())
        failures.append(failed.value)
    assert [type(f) for f in failures] == [TransientDeliveryError, PermanentDeliveryError,
                                           PermanentDeliveryError]
    assert failures[2].partner_code is None  # a code that is not a plain code is dropped
    for failure in failures:
        text = f"{failure} {failure.extensions}"
        assert "ref-1" in text
        for value in (CRN, SURNAME, BIRTH, "Cardiff"):
            assert value not in text


# --- create, update, read, discover ----------------------------------------------------------
def test_create_posts_the_nsi_with_the_referral_as_external_reference(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    delius.get("/nsi").mock(return_value=page())
    delius.get(f"/person/{CRN}").mock(return_value=error(404, "NOT_FOUND"))
    people = delius.post("/person").mock(return_value=httpx.Response(201, json=person()))
    created = delius.post("/nsi").mock(return_value=httpx.Response(201, json=nsi(77)))
    assert adapter.create(referral_id="ref-1", kind="transfer",
                          record=record("temporary_move")) == "77"
    body = json.loads(created.calls.last.request.content)
    assert (body["type"], body["offenderCrn"], body["externalReference"]) == (
        "TMV01", CRN, "ref-1")
    assert body["transferForm"]["receivingPdu"] == "N03A" and "subtype" not in body
    assert json.loads(people.calls.last.request.content)["crn"] == CRN


def test_create_finds_the_nsi_made_by_an_attempt_whose_answer_was_lost(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    finds = delius.get("/nsi").mock(side_effect=[page(), page(nsi(77))])
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    created = delius.post("/nsi").mock(side_effect=[httpx.RemoteProtocolError("cut")])
    with pytest.raises(TransientDeliveryError):
        adapter.create(referral_id="ref-1", kind="transfer", record=record())
    assert adapter.create(referral_id="ref-1", kind="transfer", record=record()) == "77"
    assert created.call_count == 1
    assert finds.calls.last.request.url.params["externalReference"] == "ref-1"


def test_create_after_a_duplicate_refusal_returns_the_existing_nsi(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    delius.get("/nsi").mock(side_effect=[page(), page(nsi(77))])
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    delius.post("/nsi").mock(return_value=error(409, "DUPLICATE_EXTERNAL_REFERENCE"))
    assert adapter.create(referral_id="ref-1", kind="transfer", record=record()) == "77"


def test_create_refuses_a_record_it_cannot_send(adapter: NdeliusAdapter,
                                               delius: respx.MockRouter) -> None:
    delius.get("/nsi").mock(return_value=page())
    with pytest.raises(PermanentDeliveryError):
        adapter.create(referral_id="ref-1", kind="referral", record=record())
    with pytest.raises(PermanentDeliveryError):
        adapter.create(referral_id="ref-1", kind="transfer", record={"nsi": {}})


def test_update_status_stamps_an_unstamped_nsi_once(delius: respx.MockRouter,
                                                    adapter: NdeliusAdapter) -> None:
    changes = delius.put("/nsi/42/status").mock(side_effect=[
        httpx.Response(200, json=nsi(reference=None)), httpx.Response(200, json=nsi())])
    stamp = delius.patch("/nsi/42").mock(return_value=httpx.Response(200, json=nsi()))
    status = {"status": "COMP", "outcome": "TRFC", "notes": None,
              "manager": {"team": "N03AOM", "staff": "N03AOM1"}}
    adapter.update_status(native_id="42", referral_id="ref-1", status=status)
    adapter.update_status(native_id="42", referral_id="ref-1", status=status)
    assert json.loads(changes.calls.last.request.content) == {
        "status": "COMP", "outcome": "TRFC", "manager": {"team": "N03AOM", "staff": "N03AOM1"}}
    assert stamp.call_count == 1
    assert json.loads(stamp.calls.last.request.content) == {"externalReference": "ref-1"}
    with pytest.raises(PermanentDeliveryError):
        adapter.update_status(native_id="42", referral_id="ref-1", status={"outcome": "TRFC"})


def test_read_gives_person_nsi_transfer_form_and_actions(delius: respx.MockRouter,
                                                         adapter: NdeliusAdapter) -> None:
    delius.get("/nsi/42").mock(return_value=httpx.Response(200, json=nsi()))
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    found = adapter.read(native_id="42")
    assert set(found) == {"person", "nsi", "transfer_form", "actions"}
    assert "transferForm" not in found["nsi"] and found["transfer_form"]["receivingPdu"] == "N03A"


def test_discover_from_now_starts_at_the_newest_event(delius: respx.MockRouter,
                                                      adapter: NdeliusAdapter) -> None:
    delius.get("/events").mock(return_value=httpx.Response(200, json={
        "content": [event(1, "probation-case.nsi.created", nsiId=1)], "cursor": "1",
        "latest": "230", "hasMore": True}))
    assert adapter.discover(cursor=None) == Discovery(changes=[], cursor="230")


def test_discover_tells_outgoing_transfers_from_status_changes(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    history = [{"id": 5, "status": {"code": "ACC"}, "statusDate": "2026-11-23T10:00:00Z",
                "outcome": None, "notes": "Accepted"},
               {"id": 6, "status": {"code": "CHAL"}, "statusDate": "2026-11-23T11:00:00Z",
                "outcome": {"code": "CHRISK"}, "notes": "Risk"}]
    delius.get("/events").mock(return_value=feed(
        event(1, "probation-case.nsi.created", nsiId=10),                    # outgoing
        event(2, "probation-case.nsi.created", nsiId=11, externalReference="ref-9"),
        event(3, "probation-case.nsi.created", nsiId=12, intendedProvider="N07"),  # internal
        event(4, "probation-case.nsi.status-changed", nsiId=11, externalReference="ref-9",
              previousStatus="REQ", statusHistoryId=5, updatedBy="casebridge"),  # our own
        event(5, "probation-case.nsi.status-changed", nsiId=11, externalReference="ref-9",
              previousStatus="ACC", statusHistoryId=6),
        event(6, "probation-case.nsi.status-changed", nsiId=13, nsiType="APR01",
              externalReference="ref-8", statusHistoryId=1),
        cursor="6"))
    delius.get("/nsi/10").mock(return_value=httpx.Response(200, json=nsi(10, reference=None)))
    delius.get("/nsi/11").mock(return_value=httpx.Response(200, json=nsi(
        11, reference="ref-9", history=history, status="CHAL")))
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    found = adapter.discover(cursor="0")
    assert found.cursor == "6"
    assert [(c.kind, c.native_id, c.referral_id) for c in found.changes] == [
        ("transfer", "10", None), ("status", "11", "ref-9")]
    transfer, status = found.changes
    assert set(transfer.record) == {"person", "nsi", "transfer_form", "actions"}
    assert status.record == {
        "status": "CHAL", "previousStatus": "ACC", "statusDate": "2026-11-23T11:00:00Z",
        "outcome": "CHRISK", "notes": "Risk", "nsiType": "TRF01", "externalReference": "ref-9",
        "manager": {"provider": "N03", "team": "N03AOM", "staff": "N03AOM1"}}
    assert status.changed_at == "2026-11-23T10:00:00Z"


def test_discover_keeps_to_its_own_provider_when_told_which(delius: respx.MockRouter) -> None:
    adapter = NdeliusAdapter(BASE, client_id="casebridge", client_secret="s3cret",
                             provider="N03")
    delius.get("/events").mock(return_value=feed(
        event(1, "probation-case.nsi.created", nsiId=10), cursor="1"))
    assert adapter.discover(cursor="0").changes == []
    adapter.close()


# --- nothing lost: every tracked event comes out, readable or not (issue 18) -----------------
def status_event(sequence: int, nsi_id: Any = 11, **info: Any) -> dict[str, Any]:
    return event(sequence, "probation-case.nsi.status-changed", nsiId=nsi_id,
                 externalReference="ref-9", previousStatus="ACC", **info)


def completed(nsi_id: int = 11) -> httpx.Response:
    history = [{"id": 6, "status": {"code": "COMP"}, "statusDate": "2026-11-23T11:00:00Z",
                "outcome": {"code": "TRFC"}, "notes": None}]
    return httpx.Response(200, json=nsi(nsi_id, reference="ref-9", history=history,
                                        status="COMP"))


def test_an_event_whose_nsi_is_gone_or_unmatched_comes_out_as_a_problem(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    delius.get("/events").mock(return_value=feed(
        status_event(1, statusHistoryId=6),                  # NSI answers 404
        status_event(2, nsi_id=12),                          # no statusHistoryId
        status_event(3, nsi_id=13, statusHistoryId=99),      # history has no such entry
        status_event(4, nsi_id="not-a-number", statusHistoryId=6),
        cursor="4"))
    delius.get("/nsi/11").mock(return_value=error(404, "NOT_FOUND"))
    delius.get("/nsi/12").mock(return_value=completed(12))
    delius.get("/nsi/13").mock(return_value=completed(13))
    found = adapter.discover(cursor="0")
    assert found.cursor == "4"
    assert [(c.kind, c.native_id, c.referral_id) for c in found.changes] == [
        ("status", "11", "ref-9"), ("status", "12", "ref-9"), ("status", "13", "ref-9"),
        ("status", "event-4", "ref-9")]
    assert all(c.problem for c in found.changes)
    assert "404" in (found.changes[0].problem or "")
    assert "statusHistoryId" in (found.changes[1].problem or "")
    for change in found.changes:  # ids and codes only
        assert SURNAME not in json.dumps([change.problem, change.record])


def test_an_event_without_detail_url_is_read_by_nsi_id_and_others_are_passed_over(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    bare = status_event(1, statusHistoryId=6)
    body = json.loads(bare["Message"])
    del body["detailUrl"]
    bare["Message"] = json.dumps(body)
    other = {"eventType": "probation-case.address.created", "version": 1,
             "occurredAt": "2026-11-23T10:00:00Z", "personReference": {"identifiers": []}}
    delius.get("/events").mock(return_value=feed(bare, other, cursor="2"))
    read = delius.get("/nsi/11").mock(return_value=completed())
    found = adapter.discover(cursor="0")
    assert found.cursor == "2" and read.call_count == 1
    assert [(c.native_id, c.record["status"], c.problem) for c in found.changes] == [
        ("11", "COMP", None)]


def test_the_detail_url_is_followed_when_it_points_at_this_ndelius_only(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    here, elsewhere = status_event(1, statusHistoryId=6), status_event(2, statusHistoryId=6)
    for item, url in ((here, f"{BASE}/api/nsi/11/detail"), (elsewhere, "http://evil.test/x")):
        body = json.loads(item["Message"])
        body["detailUrl"] = url
        item["Message"] = json.dumps(body)
    delius.get("/events").mock(return_value=feed(here, elsewhere, cursor="2"))
    detail = delius.get("/api/nsi/11/detail").mock(return_value=completed())
    by_id = delius.get("/nsi/11").mock(return_value=completed())
    found = adapter.discover(cursor="0")
    assert [c.problem for c in found.changes] == [None, None]
    # The second event's NSI was already read this poll; a foreign host never gets our token.
    assert detail.call_count == 1 and by_id.call_count == 0


def test_bare_and_sns_wrapped_events_mix_and_a_redelivered_message_counts_once(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    wrapped = status_event(1, statusHistoryId=6)
    wrapped["MessageId"] = "6f1c2a4e-0000-4000-8000-000000000001"
    again = {**wrapped, "sequence": 2}
    bare = {**json.loads(status_event(3, nsi_id=12, statusHistoryId=6)["Message"])}
    delius.get("/events").mock(return_value=feed(wrapped, again, bare, cursor="3"))
    delius.get("/nsi/11").mock(return_value=completed())
    delius.get("/nsi/12").mock(return_value=completed(12))
    found = adapter.discover(cursor="0")
    assert [(c.native_id, c.problem) for c in found.changes] == [("11", None), ("12", None)]
    # Redelivered in a later poll: still once.
    delius.get("/events").mock(return_value=feed({**wrapped, "sequence": 4}, cursor="4"))
    assert adapter.discover(cursor="3").changes == []


def test_a_garbled_message_of_a_tracked_type_is_a_problem_not_a_failed_poll(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    garbled = status_event(1, statusHistoryId=6)
    garbled["Message"] = "{not json"
    delius.get("/events").mock(return_value=feed(garbled, cursor="1"))
    found = adapter.discover(cursor="0")
    assert found.cursor == "1"
    assert [(c.native_id, bool(c.problem)) for c in found.changes] == [("event-1", True)]


def real_nsi(nsi_id: int, *, reference: str | None, history: list[Any]) -> dict[str, Any]:
    """An NSI as the HMPPS APIs answer it: `id`, nsi* {code, description} pairs."""
    return {"id": nsi_id, "offenderCrn": CRN,
            "nsiType": {"code": "TRF01", "description": "Case Transfer"},
            "nsiSubType": {"code": "TRF01A", "description": "Inter-provider transfer"},
            "nsiStatus": {"code": "COMP", "description": "Completed"},
            "nsiOutcome": {"code": "TRFC", "description": "Transferred"},
            "statusDateTime": "2026-11-23T11:00:00Z", "externalReference": reference,
            "manager": {"provider": {"code": "N03", "description": "Wales"},
                        "team": {"code": "N03AOM", "description": "Cardiff OM"},
                        "staff": {"code": "N03AOM1", "name": {"forename": "Jo"}}},
            "statusHistory": history, "transferForm": {"receivingPdu": "N03A"}, "actions": []}


def test_nsis_in_the_hmpps_shape_are_read(delius: respx.MockRouter,
                                          adapter: NdeliusAdapter) -> None:
    history = [{"id": 6, "status": {"code": "COMP"}, "statusDate": "2026-11-23T11:00:00Z",
                "outcome": {"code": "TRFC"}, "notes": None}]
    delius.get("/events").mock(return_value=feed(
        event(1, "probation-case.nsi.created", nsiId=10, nsiType=None),
        status_event(2, statusHistoryId=6, nsiType=None), cursor="2"))
    delius.get("/nsi/10").mock(return_value=httpx.Response(200, json=real_nsi(
        10, reference=None, history=[])))
    delius.get("/nsi/11").mock(return_value=httpx.Response(200, json=real_nsi(
        11, reference="ref-9", history=history)))
    delius.get(f"/person/{CRN}").mock(return_value=httpx.Response(200, json=person()))
    transfer, status = adapter.discover(cursor="0").changes
    assert (transfer.kind, transfer.native_id, transfer.problem) == ("transfer", "10", None)
    assert transfer.record["nsi"]["nsiType"]["code"] == "TRF01"
    assert (status.native_id, status.problem, status.record["nsiType"],
            status.record["manager"]) == ("11", None, "TRF01", {
                "provider": "N03", "team": "N03AOM", "staff": "N03AOM1"})
    delius.get("/nsi", params={"externalReference": "ref-2"}).mock(return_value=page(
        real_nsi(12, reference="ref-2", history=[])))
    assert adapter.create(referral_id="ref-2", kind="transfer", record=record()) == "12"


def test_an_event_too_thin_to_judge_is_judged_by_its_nsi(delius: respx.MockRouter,
                                                        adapter: NdeliusAdapter) -> None:
    history = [{"id": 6, "status": {"code": "COMP"}, "statusDate": "2026-11-23T11:00:00Z",
                "outcome": {"code": "TRFC"}, "notes": None}]
    thin = event(1, "probation-case.nsi.status-changed")
    body = json.loads(thin["Message"])
    body["additionalInformation"] = {"nsiId": 11, "statusHistoryId": 6}
    del body["detailUrl"]
    thin["Message"] = json.dumps(body)
    nameless = event(2, "probation-case.nsi.status-changed")
    body["additionalInformation"] = {"statusHistoryId": 6}
    nameless["Message"] = json.dumps(body)
    delius.get("/events").mock(return_value=feed(thin, nameless, cursor="2"))
    delius.get("/nsi/11").mock(return_value=httpx.Response(200, json={
        **real_nsi(11, reference="ref-9", history=history),
        "raisedByProvider": {"code": "N07"}, "intendedProvider": {"code": "N03"}}))
    found = adapter.discover(cursor="0")
    assert [(c.native_id, c.referral_id, c.record.get("status"), bool(c.problem))
            for c in found.changes] == [("11", "ref-9", "COMP", False),
                                        ("event-2", None, None, True)]


# --- deadline alerts as alert contacts -------------------------------------------------------
def alert_contact(contact_id: int, mark: object, *, alert: bool = True,
                  kind: str = "CBDO") -> dict[str, Any]:
    return {"id": contact_id, "offenderCrn": CRN, "nsiId": 42, "type": kind, "alert": alert,
            "externalReference": str(mark) if mark is not None else None}


def test_an_overdue_alert_is_an_alert_contact_on_the_nsi(delius: respx.MockRouter,
                                                          adapter: NdeliusAdapter) -> None:
    alert = make_alert("overdue", referral_id="ref-1", deadline="address_assessment")
    delius.get("/nsi/42").respond(json=nsi())
    post = delius.post("/contact").respond(201, json=alert_contact(7, None))
    adapter.alert(native_id="42", referral_id="ref-1", alert=alert)
    assert json.loads(post.calls.last.request.content) == {
        "offenderCrn": CRN, "nsiId": 42, "type": "CBDO", "date": "2027-01-07",
        "startTime": "21:00", "alert": True, "notes": alert["message"],
        "description": alert["message"], "externalReference": str(read_alert(alert).mark)}


def test_contact_times_are_london_times(delius: respx.MockRouter,
                                        adapter: NdeliusAdapter) -> None:
    summer = {**make_alert("escalated", referral_id="ref-1"), "at": "2027-06-30T23:30:00Z"}
    delius.get("/nsi/42").respond(json=nsi())
    post = delius.post("/contact").respond(201, json=alert_contact(7, None, kind="CBDE"))
    adapter.alert(native_id="42", referral_id="ref-1", alert=summer)
    sent = json.loads(post.calls.last.request.content)
    assert (sent["type"], sent["date"], sent["startTime"]) == ("CBDE", "2027-07-01", "00:30")


def test_an_alert_delivered_again_finds_its_contact_and_adds_none(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    alert = make_alert("overdue", referral_id="ref-1")
    mark = read_alert(alert).mark
    delius.get("/nsi/42").respond(json=nsi())
    delius.post("/contact").mock(return_value=error(409, "DUPLICATE_EXTERNAL_REFERENCE"))
    found = delius.get(f"/person/{CRN}/contacts").respond(json=[alert_contact(7, mark)])
    adapter.alert(native_id="42", referral_id="ref-1", alert=alert)
    assert found.calls.last.request.url.params["externalReference"] == str(mark)

    found.respond(json=[])  # a 409 for some other reason: refused, not taken as done
    with pytest.raises(PermanentDeliveryError) as refused:
        adapter.alert(native_id="42", referral_id="ref-1", alert=alert)
    assert refused.value.partner_code == "DUPLICATE_EXTERNAL_REFERENCE"


def test_a_cleared_alert_clears_the_deadlines_alerts_and_records_a_contact(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    overdue = read_alert(make_alert("overdue", referral_id="ref-1")).mark
    escalated = read_alert(make_alert("escalated", referral_id="ref-1")).mark
    other = read_alert(make_alert("overdue", referral_id="ref-1", deadline="decide")).mark
    cleared = make_alert("cleared", referral_id="ref-1")
    delius.get("/nsi/42").respond(json=nsi())
    listed = delius.get(f"/person/{CRN}/contacts").respond(json=[
        alert_contact(1, overdue, alert=False), alert_contact(2, escalated, kind="CBDE"),
        alert_contact(3, other), alert_contact(4, None, kind="CTAC", alert=False)])
    patch = delius.patch(path__regex=r"/contact/\d+").respond(json=alert_contact(2, escalated))
    post = delius.post("/contact").respond(201, json=alert_contact(5, None, kind="CBDC"))
    adapter.alert(native_id="42", referral_id="ref-1", alert=cleared)
    assert listed.calls.last.request.url.params["nsiId"] == "42"
    assert [(c.request.url.path, json.loads(c.request.content)) for c in patch.calls] == [
        ("/contact/2", {"alert": False})]
    sent = json.loads(post.calls.last.request.content)
    assert (sent["type"], sent["alert"], sent["notes"]) == ("CBDC", False, cleared["message"])


def test_contact_failures_keep_the_delivery_rules_and_no_crn(
        delius: respx.MockRouter, adapter: NdeliusAdapter) -> None:
    alert = make_alert("overdue", referral_id="ref-1")
    read = delius.get("/nsi/42")
    read.return_value = error(404, "NOT_FOUND", f"NSI of {CRN} not found")
    with pytest.raises(PermanentDeliveryError) as gone:
        adapter.alert(native_id="42", referral_id="ref-1", alert=alert)
    assert gone.value.partner_code == "NOT_FOUND" and CRN not in str(gone.value)
    read.return_value = httpx.Response(200, json=nsi())
    delius.post("/contact").mock(return_value=error(503, "SERVICE_UNAVAILABLE",
                                                    **{"Retry-After": "3"}))
    with pytest.raises(TransientDeliveryError) as busy:
        adapter.alert(native_id="42", referral_id="ref-1", alert=alert)
    assert busy.value.retry_after == 3.0 and CRN not in str(busy.value)
