"""A health partner's closed loop over FHIR, end to end: a clinic posts a referral as a
transaction Bundle, Primero receives it as a case, and each answer staff give in Primero
comes back to the clinic as a Task update it is notified of.

Real RabbitMQ, relay, worker and poller threads, a Primero sandbox and the gateway on
127.0.0.1; the clinic's notification endpoint is a real HTTP server too.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.task import Task

from fhir_kit import FHIR_JSON, NotificationSink, referral_bundle
from gateway.store.db import unit_of_work
from gateway.store.models import Partner
from sandboxes.primero.seed import SANDBOX_PASSWORD
from servers import LiveServer
from stack import SandboxSpec, Stack, wait_for

PRIMERO_SSD = SandboxSpec("primero-ssd", "primero", {"instance": "cpims-ssd"})
CLINIC = "clinic-juba"
STEP = 20.0


@pytest.fixture
def sink() -> Iterator[tuple[NotificationSink, str]]:
    endpoint = NotificationSink()
    with LiveServer(endpoint.app) as server:
        yield endpoint, f"{server.url}/hook"


def primero_manager(stack: Stack) -> httpx.Client:
    """The Primero child-protection manager's own session (the Primero UI's calls)."""
    url = stack.sandbox_url("primero-ssd")
    token = httpx.post(f"{url}/api/v2/tokens", json={"user": {
        "user_name": "cp_manager", "password": SANDBOX_PASSWORD}}).json()["token"]
    return httpx.Client(base_url=f"{url}/api/v2", timeout=10,
                        headers={"Authorization": f"Bearer {token}"})


def tasks_notified(sink: NotificationSink, referral_id: str) -> list[str]:
    return [number for number, focus in sink.focus() if focus == f"Task/{referral_id}"]


def test_a_clinic_refers_over_fhir_primero_answers_and_the_clinic_sees_each_step(
        make_stack: Any, sink: tuple[NotificationSink, str]) -> None:
    endpoint, url = sink
    stack: Stack = make_stack([PRIMERO_SSD], api_partners=[CLINIC])
    with unit_of_work(stack.sessions) as session:
        clinic_partner = session.get(Partner, CLINIC)
        assert clinic_partner is not None
        clinic_partner.system = "fhir"
    wait_for(stack.polled_once, timeout=STEP, what="the first poll of Primero")
    clinic = stack.api(CLINIC)

    # The clinic subscribes to its Tasks, then posts a referral of a child it saw.
    made = clinic.post("/fhir/Subscription", headers=FHIR_JSON, json={
        "resourceType": "Subscription", "status": "requested", "reason": "Referral desk",
        "criteria": f"Task?requester=Organization/{CLINIC}",
        "channel": {"type": "rest-hook", "endpoint": url, "payload": "application/fhir+json"}})
    assert made.status_code == 201, made.text
    answer = clinic.post("/fhir/Task", headers=FHIR_JSON,
                         json=referral_bundle(CLINIC, "primero-ssd"))
    assert answer.status_code == 201, answer.text
    referral_id = Task.model_validate(answer.json()).id
    assert referral_id is not None

    # The worker delivers it to Primero: a case with the referral, waiting for the manager.
    received = wait_for(lambda: stack.native_id(referral_id, "primero-ssd"), timeout=STEP,
                        what="the case made in Primero")
    case_id, _, transition_id = received.split("/")
    manager = primero_manager(stack)
    case = manager.get(f"/cases/{case_id}").json()["data"]
    assert (case["name_first"], case["module_id"]) == ("Zawadi", "primeromodule-cp")
    wait_for(lambda: tasks_notified(endpoint, referral_id)[:2] == ["1", "2"], timeout=STEP,
             what="the clinic told of the Task requested, then received")

    def task_now() -> Task:
        """What the clinic reads after a notification: the Task, with its ServiceRequest."""
        found = Bundle.model_validate(clinic.get(
            f"/fhir/Task?_id={referral_id}&_include=Task:focus").json())
        assert [e.resource.get_resource_type() for e in found.entry] == [
            "Task", "ServiceRequest"]
        return found.entry[0].resource

    assert (task_now().status, task_now().businessStatus.coding[0].code) == (
        "received", "delivered")

    # The manager accepts in Primero; then the service is done.
    for change in ({"status": "accepted"},
                   {"status": "done", "rejection_note": "Three sessions held (fictional)."}):
        done = manager.patch(f"/cases/{case_id}/referrals/{transition_id}",
                             json={"data": change})
        assert done.status_code == 200, done.text
        expected = "accepted" if change["status"] == "accepted" else "completed"
        wait_for(lambda e=expected: stack.referral(referral_id).status == e, timeout=STEP,
                 what=f"the gateway at {expected}")
    wait_for(lambda: len(tasks_notified(endpoint, referral_id)) == 4, timeout=STEP,
             what="the clinic told of the acceptance and the completion")

    task = task_now()
    assert task.status == "completed"
    assert task.output[0].valueCodeableConcept.coding[0].code == "successful"
    assert [n.text for n in task.note] == ["Three sessions held (fictional)."]
    assert task.note[0].authorReference.reference == "Organization/primero-ssd"
    history = Bundle.model_validate(clinic.get(f"/fhir/Task/{referral_id}/_history").json())
    assert [e.resource.status for e in history.entry] == [
        "completed", "accepted", "received", "requested"]
    assert tasks_notified(endpoint, referral_id) == ["1", "2", "3", "4"]
    assert [(d.direction, d.reason) for d in stack.dead_letters()] == []
    manager.close()
    clinic.close()
