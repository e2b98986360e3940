"""Deadline alerts end to end: a referral from Primero (South Sudan) that nobody at proGres
(Ethiopia) acknowledges becomes overdue; both systems show the alert in their own terms (a
flag on the Primero case, a task on the proGres referral), the agreement's observer reads it
through the API, it escalates at the second threshold, and the acknowledgement clears it
on both sides. Time is driven by calling the keeper with a chosen `now`, never by sleeping.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from fictional import remember
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.keeper import tick
from gateway.protection.agreements import AgreementRegistry
from gateway.store.models import Delivery, TrackedDeadline
from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from sandboxes.progres.schema import ReferralStatus
from stack import SandboxSpec, Stack, wait_for

PRIMERO_SSD = SandboxSpec("primero-ssd", "primero", {"instance": "cpims-ssd"})
PROGRES_ETH = SandboxSpec("progres-eth", "progres")
OBSERVER = "cp-aor-eth"  # the focal point agreements/isp-ssd-eth-cp-referrals-2026 names
STEP = 20.0
DATAVERSE = "/api/data/v9.2"
CASEWORKER = ("progres-caseworker", "caseworker-secret")
ANNOTATED = 'odata.include-annotations="*"'


@pytest.fixture
def staff() -> Iterator[list[httpx.Client]]:
    sessions: list[httpx.Client] = []
    yield sessions
    for session in sessions:
        session.close()


def primero_worker(stack: Stack, staff: list[httpx.Client]) -> httpx.Client:
    url = stack.sandbox_url("primero-ssd")
    token = httpx.post(f"{url}/api/v2/tokens", json={"user": {
        "user_name": "cp_worker", "password": SANDBOX_PASSWORD}}).json()["token"]
    session = httpx.Client(base_url=f"{url}/api/v2", timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    staff.append(session)
    return session


def progres_caseworker(stack: Stack, staff: list[httpx.Client]) -> httpx.Client:
    url = stack.sandbox_url("progres-eth")
    token = httpx.post(f"{url}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": CASEWORKER[0],
        "client_secret": CASEWORKER[1], "scope": f"{url}/.default"}).json()["access_token"]
    session = httpx.Client(base_url=f"{url}{DATAVERSE}", timeout=10, headers={
        "Authorization": f"Bearer {token}", "OData-Version": "4.0", "Accept": "application/json"})
    staff.append(session)
    return session


def test_an_unacknowledged_referral_is_flagged_in_primero_and_progres_escalated_and_cleared(
        make_stack: Any, staff: list[httpx.Client]) -> None:
    stack: Stack = make_stack([PRIMERO_SSD, PROGRES_ETH], api_partners=[OBSERVER])
    wait_for(stack.polled_once, timeout=STEP, what="first poll of every sandbox")
    book = DeadlineBook.from_settings(stack.settings, stack.contracts)
    agreements = AgreementRegistry(stack.settings.agreements_dir, stack.contracts)

    def keep(now: Any) -> Any:
        return tick(stack.sessions, book, now, agreements=agreements)

    # A South Sudan caseworker refers a child to UNHCR Ethiopia, through the gateway's user.
    remember("Nyandeng", "Testhall", "2013-02-11")  # none of it may reach a log or a message
    worker = primero_worker(stack, staff)
    case = worker.post("/cases", json={"data": {
        "module_id": "primeromodule-cp", "name_first": "Nyandeng", "name_last": "Testhall",
        "sex": "female", "date_of_birth": "2013-02-11", "risk_level": "medium",
        "protection_concerns": ["refugee"], "consent_source": "caregiver",
        "consent_for_services": True, "disclosure_other_orgs": True,
        "services_section": [{"service_type": "family_seunification_service",
                              "service_response_type": "service_provision"}]}}).json()["data"]
    sent = worker.post(f"/cases/{case['id']}/referrals", json={"data": {
        "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
        "service": "family_seunification_service",
        "service_record_id": case["services_section"][0]["unique_id"]}}).json()["data"]
    referral_id = wait_for(lambda: stack.referral_from(
        "primero-ssd", f"{case['id']}/referrals/{sent['id']}"), timeout=STEP,
        what="the referral discovered in Primero")
    wait_for(lambda: stack.referral(referral_id).status == "delivered", timeout=STEP,
             what="delivered to proGres")
    delivered = stack.referral(referral_id).events[-1].occurred_at
    received = stack.native_id(referral_id, "progres-eth")
    assert received is not None

    # The keeper starts the Ethiopia policy's deadlines: acknowledge in 2 working days.
    assert keep(delivered).started == 2
    with stack.sessions() as session:
        acknowledge = session.scalars(select(TrackedDeadline).where(
            TrackedDeadline.referral_id == referral_id,
            TrackedDeadline.name == "acknowledge")).one()
    assert acknowledge.escalate_at is not None

    def flags() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = worker.get(f"/cases/{case['id']}/flags").json()["data"]
        return found

    officer = progres_caseworker(stack, staff)
    guid = received.split("(", 1)[1].rstrip(")")

    def tasks(condition: str = "true") -> list[dict[str, Any]]:
        answer = officer.get("/tasks", headers={"Prefer": ANNOTATED}, params={
            "$filter": f"_regardingobjectid_value eq {guid}"
                       + ("" if condition == "true" else f" and {condition}"),
            "$orderby": "createdon asc"})
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["value"]
        return found

    # Nobody acknowledges: a minute past the due time the flag goes up on both sides.
    assert keep(acknowledge.due_at + timedelta(minutes=1)).raised == 1
    raised = wait_for(lambda: len(flags()) == 1 and flags(), timeout=STEP,
                      what="the overdue flag on the Primero case")
    assert "overdue" in raised[0]["message"] and raised[0]["removed"] is False
    [task] = wait_for(lambda: tasks(), timeout=STEP, what="the overdue task in proGres")
    assert "overdue" in task["subject"] and task["statecode"] == 0
    assert task["category"] == "CaseBridge deadline"

    # The focal point is told through the API, with envelope data only.
    with httpx.Client(base_url=stack.servers["gateway"].url, headers={
            "Authorization": f"Bearer {stack.keys[OBSERVER]}"}) as observer:
        [seen] = wait_for(lambda: observer.get("/v1/alerts").json()["items"], timeout=STEP,
                          what="the observer's alert")
        assert (seen["referral_id"], seen["flag"], seen["role"]) == (
            referral_id, "overdue", "observer")
        assert "Nyandeng" not in str(seen) and "Testhall" not in str(seen)
        assert observer.get(f"/v1/referrals/{referral_id}").status_code == 404

    # Still not acknowledged at the second threshold: escalated, on both sides.
    assert keep(acknowledge.escalate_at + timedelta(minutes=1)).escalated == 1
    wait_for(lambda: len(flags()) == 2, timeout=STEP, what="the escalation flag in Primero")
    assert "escalated" in flags()[1]["message"]
    wait_for(lambda: len(tasks()) == 2, timeout=STEP, what="the escalation task in proGres")

    # The proGres caseworker acknowledges: the flags come down and the tasks are completed.
    answer = officer.patch(f"/{received}", json={"statuscode": ReferralStatus.PENDING_ACTION},
                           headers={"If-Match": "*"})
    assert answer.status_code == 204, answer.text
    wait_for(lambda: stack.referral(referral_id).status == "acknowledged", timeout=STEP,
             what="acknowledged in the gateway")
    assert keep(acknowledge.escalate_at + timedelta(hours=1)).cleared == 1
    wait_for(lambda: all(f["removed"] for f in flags()), timeout=STEP,
             what="the Primero flags resolved")
    wait_for(lambda: tasks("statecode eq 0") == [], timeout=STEP,
             what="the proGres tasks completed")
    with stack.sessions() as session:
        told = session.execute(select(Delivery.partner_id, Delivery.detail).where(
            Delivery.referral_id == referral_id, Delivery.detail.like("alert%"))).all()
    assert sorted(told) == sorted(
        [(p, f"alert {flag} shown at the partner") for flag in ("overdue", "escalated",
                                                                 "cleared")
         for p in ("primero-ssd", "progres-eth")]
        + [(OBSERVER, "alert readable through GET /v1/alerts")] * 3)
    assert [d.reason for d in stack.dead_letters()] == []
