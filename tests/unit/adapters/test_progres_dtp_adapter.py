"""The proGres DTP adapter: reading pushed messages, sending messages, classifying failures
(HTTP mocked with respx; the real sandbox is in tests/integration/partners/test_progres_dtp.py)."""

import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from adapters.progres.dtp import (
    CHANNEL,
    ProgresDtpAdapter,
    feedback,
    read_message,
    service_key,
)
from adapters.registry import build_adapter
from gateway.errors import PermanentDeliveryError, TransientDeliveryError, ValidationProblem

BASE = "http://dtp.test/primero-uat"
KEY = "k3y"
REFERRAL_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


@pytest.fixture
def adapter() -> Iterator[ProgresDtpAdapter]:
    made = build_adapter("progres", {"base_url": BASE, "channel": "dtp",
                                     "credentials": {"subscription_key": KEY}})
    assert isinstance(made, ProgresDtpAdapter) and made.channel == CHANNEL
    yield made
    made.close()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mocked:
        yield mocked


def test_pushed_interventions_are_read_one_change_each() -> None:
    changes = read_message({"interventions": [
        {"progres_interventionnumber": "DAD-26-PRTITV-0000141", "individuals.progres_id": "X"},
        {"progres_lpinterventionid": "no number"},
        "not an object"]})
    assert [(c.kind, c.native_id, c.channel, c.problem is None) for c in changes] == [
        ("referral", "intervention/DAD-26-PRTITV-0000141", "dtp", True),
        ("referral", "item/1", "dtp", False),
        ("referral", "item/2", "dtp", False)]
    assert changes[2].record == {"item": "not an object"}
    assert "progres_interventionnumber" in (changes[1].problem or "")


def test_a_decision_names_its_referral_by_the_first_part_of_the_composite_reference() -> None:
    good, short, plain = read_message({
        "request_type": "PrimeroIncomingReferralDecision", "interventions": [
            {"progres_orgreferralid": f"{REFERRAL_ID}#8d4e3c2b1a09",
             "progres_reviewdate": "2026-11-05T11:00:00Z", "progres_reviewdecision": "1"},
            {"progres_orgreferralid": f"{REFERRAL_ID}#8d4e"},
            {"progres_orgreferralid": REFERRAL_ID}]})
    assert (good.kind, good.native_id, good.referral_id, good.changed_at) == (
        "status", f"referral/{REFERRAL_ID}", None, "2026-11-05T11:00:00Z")
    assert short.problem and plain.problem and short.native_id == "item/1"


@pytest.mark.parametrize(("message", "pointer"), [
    ({"request_type": "ReceiveIncomingReferral", "interventions": [{}]}, "/request_type"),
    ({"interventions": []}, "/interventions"),
    ({"decisions": [{}]}, "/interventions"),
    (["interventions"], ""),
])
def test_a_body_that_is_no_dtp_message_is_refused_naming_the_field(
        message: object, pointer: str) -> None:
    with pytest.raises(ValidationProblem) as caught:
        read_message(message)
    assert [e.pointer for e in caught.value.errors] == [pointer]


def test_feedback_is_dtps_word_for_received_or_why_not() -> None:
    [change] = read_message({"interventions": [{"progres_interventionnumber": "N-1"}]})
    assert feedback(change, case_id="r-1") == {
        "request_type": "Feedback", "progres_interventionnumber": "N-1", "case_id": "r-1",
        "status": "Pending Acknowledgement"}
    assert feedback(change, closure_reason="No agreement.") == {
        "request_type": "Feedback", "progres_interventionnumber": "N-1",
        "status": "Delivery Fail", "closure_reason": "No agreement."}


def test_create_sends_one_message_per_service_with_the_composite_id(
        adapter: ProgresDtpAdapter, router: respx.MockRouter) -> None:
    route = router.post(f"{BASE}/ReceiveIncomingReferral").mock(
        return_value=httpx.Response(200, json={"status": "Pending Acknowledgement"}))
    native_id = adapter.create(referral_id=REFERRAL_ID, kind="referral", record={"messages": [
        {"service_type": "Family Tracing and Reunification", "name_first": "Testa"},
        {"service_type": "Best Interests Determination", "name_first": "Testa"}]})
    assert native_id == f"referral/{REFERRAL_ID}"
    sent = [json.loads(call.request.content) for call in route.calls]
    assert [m["id"] for m in sent] == [f"{REFERRAL_ID}#{service_key(REFERRAL_ID, i)}"
                                       for i in range(2)]
    assert {m["request_type"] for m in sent} == {"ReceiveIncomingReferral"}
    assert {call.request.headers["ocp-apim-subscription-key"] for call in route.calls} == {KEY}
    keys = {service_key(REFERRAL_ID, i) for i in range(5)} | {service_key("other", 0)}
    assert len(keys) == 6 and {len(k) for k in keys} == {12}
    assert service_key(REFERRAL_ID, 0) == service_key(REFERRAL_ID, 0)  # stable: resends match


@pytest.mark.parametrize("record", [{}, {"messages": []}, {"messages": ["x"]}])
def test_a_referral_asking_for_no_service_is_refused_for_good(
        adapter: ProgresDtpAdapter, record: dict[str, object]) -> None:
    with pytest.raises(PermanentDeliveryError):
        adapter.create(referral_id=REFERRAL_ID, kind="referral", record=record)


def test_dtp_takes_no_transfer(adapter: ProgresDtpAdapter) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        adapter.create(referral_id=REFERRAL_ID, kind="transfer", record={"messages": [{}]})
    assert caught.value.partner_code == "unsupported_kind"


def test_a_status_with_a_message_is_sent_on_the_intervention_and_one_without_is_not(
        adapter: ProgresDtpAdapter, router: respx.MockRouter) -> None:
    feedback_route = router.post(f"{BASE}/Feedback").mock(return_value=httpx.Response(200))
    decision = router.post(f"{BASE}/ReceiveDecisionOutgoingReferral").mock(
        return_value=httpx.Response(200, json={}))
    adapter.update_status(native_id="intervention/N-1", referral_id=REFERRAL_ID, status={})
    assert feedback_route.call_count == decision.call_count == 0
    adapter.update_status(native_id="intervention/N-1", referral_id=REFERRAL_ID, status={
        "message": {"request_type": "ReceiveDecisionOutgoingReferral", "status": "rejected",
                    "closure_reason": "No capacity."}})
    assert json.loads(decision.calls[0].request.content) == {
        "request_type": "ReceiveDecisionOutgoingReferral", "status": "rejected",
        "closure_reason": "No capacity.", "progres_interventionnumber": "N-1",
        "case_id": REFERRAL_ID}
    with pytest.raises(PermanentDeliveryError):  # proGres received this one: no such message
        adapter.update_status(native_id=f"referral/{REFERRAL_ID}", referral_id=REFERRAL_ID,
                              status={"message": {"request_type": "Feedback"}})
    with pytest.raises(PermanentDeliveryError):
        adapter.update_status(native_id="intervention/N-1", referral_id=REFERRAL_ID,
                              status={"message": {"request_type": "ReceiveIncomingReferral"}})


@pytest.mark.parametrize(("status", "transient"), [
    (401, False), (400, False), (404, False), (408, True), (429, True), (500, True),
    (503, True)])
def test_failures_are_classified_with_apims_words_kept_for_operators(
        adapter: ProgresDtpAdapter, router: respx.MockRouter, status: int,
        transient: bool) -> None:
    router.post(f"{BASE}/Feedback").mock(return_value=httpx.Response(
        status, headers={"Retry-After": "9"},
        json={"statusCode": status, "message": "Access denied due to invalid subscription key."}))
    with pytest.raises(TransientDeliveryError if transient else PermanentDeliveryError) as caught:
        adapter.update_status(native_id="intervention/N-1", referral_id=REFERRAL_ID, status={
            "message": {"request_type": "Feedback", "status": "Delivery Fail",
                        "closure_reason": "x"}})
    error = caught.value
    assert error.partner_status == status
    assert error.partner_message == "Access denied due to invalid subscription key."
    assert "Access denied" not in error.detail
    if transient:
        assert isinstance(error, TransientDeliveryError) and error.retry_after == 9.0


def test_a_broken_connection_is_transient(adapter: ProgresDtpAdapter,
                                          router: respx.MockRouter) -> None:
    router.post(f"{BASE}/ReceiveIncomingReferral").mock(side_effect=httpx.ConnectError("x"))
    with pytest.raises(TransientDeliveryError):
        adapter.create(referral_id=REFERRAL_ID, kind="referral",
                       record={"messages": [{"service_type": "BIA"}]})


def test_dtp_has_nothing_to_discover_read_or_alert(adapter: ProgresDtpAdapter,
                                                   router: respx.MockRouter) -> None:
    assert adapter.discover(cursor="c").changes == []
    assert adapter.discover(cursor="c").cursor == "c"
    with pytest.raises(PermanentDeliveryError):
        adapter.read(native_id="intervention/N-1")
    anything = router.route().mock(return_value=httpx.Response(200))
    adapter.alert(native_id="intervention/N-1", referral_id=REFERRAL_ID,
                  alert={"flag": "overdue"})
    assert anything.call_count == 0  # no DTP message shows an alert: nothing is sent
    # ... and the worker knows it: it records the alert as waiting at GET /v1/alerts
    assert adapter.shows_alerts is False
