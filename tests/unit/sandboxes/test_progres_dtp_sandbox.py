"""The proGres sandbox's DTP surface over real HTTP: what the integration layer accepts,
refuses, and how it answers (API Management's `{"statusCode", "message"}`)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandboxes.progres.app import create_app
from sandboxes.progres.dtp import DEFAULT_SUBSCRIPTION_KEY
from servers import LiveServer

KEY = {"Ocp-Apim-Subscription-Key": DEFAULT_SUBSCRIPTION_KEY}
SEEDED_INTERVENTION = "DAD-26-PRTITV-0000001"  # the seed's one LP intervention


@pytest.fixture(scope="module")
def dtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder: Path = tmp_path_factory.mktemp("dtp-sandbox")
    with LiveServer(create_app(database=folder / "progres.db", rate_limit=40)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def incoming(reference: str, **fields: Any) -> dict[str, Any]:
    return {"request_type": "ReceiveIncomingReferral", "id": reference,
            "service_type": "Best Interests Assessment", "name_first": "Zawadi",
            "name_last": "Fictionalson", "sex": "125080000", "date_of_birth": "2014-03-09",
            **fields}


@pytest.mark.parametrize(("headers", "words"), [
    ({}, "missing subscription key"),
    ({"Ocp-Apim-Subscription-Key": "wrong"}, "invalid subscription key")])
def test_a_call_without_the_subscription_key_is_refused_as_apim_does(
        dtp: httpx.Client, headers: dict[str, str], words: str) -> None:
    answer = dtp.post("/dtp/ReceiveIncomingReferral", json=incoming("c#abcdefabcdef"),
                      headers=headers)
    assert answer.status_code == 401
    assert answer.json()["statusCode"] == 401 and words in answer.json()["message"]


def test_an_incoming_referral_is_kept_by_its_composite_id_and_a_resend_makes_nothing_new(
        dtp: httpx.Client) -> None:
    first = dtp.post("/dtp/ReceiveIncomingReferral", headers=KEY,
                     json=incoming("case-17#0123456789ab"))
    again = dtp.post("/dtp/ReceiveIncomingReferral", headers=KEY,
                     json=incoming("case-17#0123456789ab", name_first="Changed"))
    other = dtp.post("/dtp/ReceiveIncomingReferral", headers=KEY,
                     json=incoming("case-17#ba9876543210"))
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json() == again.json()
    assert first.json()["status"] == "Pending Acknowledgement"
    assert other.json()["progres_interoperabilityreferralnumber"] != \
        first.json()["progres_interoperabilityreferralnumber"]


@pytest.mark.parametrize(("fields", "words"), [
    ({"id": "no-service-part"}, "<case id>#"),
    ({"id": "case#short"}, "<case id>#"),
    ({"service_type": "Legal aid"}, "not enabled for interoperability"),
    ({"service_type": "Haircuts"}, "not an intervention type"),
    ({"name_first": ""}, "name_first is required"),
    ({"sex": "sometimes"}, "sex is not one"),
    ({"request_type": "Feedback"}, "request_type must be 'ReceiveIncomingReferral'"),
])
def test_an_incoming_referral_dtp_cannot_take_is_refused_with_the_reason(
        dtp: httpx.Client, fields: dict[str, Any], words: str) -> None:
    answer = dtp.post("/dtp/ReceiveIncomingReferral", headers=KEY,
                      json=incoming("case-18#aaaaaaaaaaaa", **fields))
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["message"]


def test_a_decision_is_recorded_on_the_intervention_and_not_undone_by_older_news(
        dtp: httpx.Client) -> None:
    number = SEEDED_INTERVENTION
    decided = dtp.post("/dtp/ReceiveDecisionOutgoingReferral", headers=KEY, json={
        "request_type": "ReceiveDecisionOutgoingReferral", "progres_interventionnumber": number,
        "case_id": "gw-1", "status": "acknowledged"})
    late = dtp.post("/dtp/Feedback", headers=KEY, json={
        "request_type": "Feedback", "progres_interventionnumber": number, "case_id": "gw-1",
        "status": "Pending Acknowledgement"})
    assert decided.json() == late.json() == {"progres_interventionnumber": number,
                                             "status": "acknowledged"}
    refused = [
        dtp.post("/dtp/Feedback", headers=KEY, json={
            "request_type": "Feedback", "progres_interventionnumber": number,
            "status": "Delivery Fail"}),
        dtp.post("/dtp/ReceiveDecisionOutgoingReferral", headers=KEY, json={
            "request_type": "ReceiveDecisionOutgoingReferral",
            "progres_interventionnumber": number, "status": "maybe"}),
        dtp.post("/dtp/Feedback", headers=KEY, json={
            "request_type": "Feedback", "progres_interventionnumber": "DAD-26-PRTITV-9999999",
            "status": "Pending Acknowledgement"})]
    assert [r.status_code for r in refused] == [400, 400, 404]
    assert "closure_reason is required" in refused[0].json()["message"]


def test_a_push_needs_an_inbox(dtp: httpx.Client) -> None:
    answer = dtp.post("/_sandbox/dtp/push", json={"interventions": [SEEDED_INTERVENTION]})
    assert answer.status_code == 409 and "inbox" in answer.json()["message"]


def test_the_fault_switches_apply_to_the_messages_too(dtp: httpx.Client) -> None:
    assert dtp.put("/_sandbox/faults", json={"failure_rate": 1.0}).status_code == 200
    try:
        failed = dtp.post("/dtp/ReceiveIncomingReferral", headers=KEY,
                          json=incoming("case-19#aaaaaaaaaaaa"))
    finally:
        dtp.put("/_sandbox/faults", json={})
    assert failed.status_code == 500


def test_over_the_rate_limit_dtp_answers_429_with_retry_after(dtp: httpx.Client) -> None:
    answers = [dtp.post("/dtp/Feedback", headers=KEY, json={}) for _ in range(45)]
    throttled = [a for a in answers if a.status_code == 429]
    assert throttled and int(throttled[0].headers["Retry-After"]) >= 1
    assert "Rate limit is exceeded" in throttled[0].json()["message"]
