"""The FHIR face against a real gateway and store: a referral posted as a transaction
Bundle, read back as valid resources, moved on by the owner, searched, refused."""

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from sqlalchemy import select

from fhir_kit import FHIR_JSON, JSON_PATCH, referral_bundle
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.models import Referral, TrackedDeadline, utcnow
from servers import gateway_marks_delivered
from sharing import audit_actions, two_partners

Client = Callable[[str], httpx.Client]
CASEBRIDGE = "https://casebridge.org/fhir"


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    return answer.json()


def refused(answer: httpx.Response, status: int) -> OperationOutcome:
    """The answer is an OperationOutcome with `status`; returns it validated."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    return OperationOutcome.model_validate(answer.json())


def expressions(outcome: OperationOutcome) -> list[str]:
    return [e for issue in outcome.issue for e in issue.expression or []]


def posted(client: httpx.Client, bundle: dict[str, Any], status: int = 200) -> Any:
    return ok(client.post("/fhir", json=bundle, headers=FHIR_JSON), status)


def task_id(response: dict[str, Any]) -> str:
    return str(response["entry"][0]["response"]["location"].split("/")[1])


@pytest.fixture
def pair(new_partner: Callable[..., tuple[str, str]], settings: Settings
         ) -> tuple[str, str, str, str]:
    """A health partner (sender) and a receiver that share an agreement of every category."""
    return two_partners(new_partner, settings)


def test_a_referral_posted_as_a_transaction_goes_through_the_gateway_and_reads_back_as_fhir(
        pair: tuple[str, str, str, str], client_for: Client, settings: Settings) -> None:
    sender, sender_key, receiver, receiver_key = pair
    clinic, agency = client_for(sender_key), client_for(receiver_key)
    bundle = referral_bundle(sender, receiver, placer=f"CLN-{uuid.uuid4().hex[:8]}")

    answer = posted(clinic, bundle)
    made = Bundle.model_validate(answer)
    assert made.type == "transaction-response"
    assert [e.response.status for e in made.entry] == ["201 Created"] * 4
    referral_id = task_id(answer)
    assert [e.response.location for e in made.entry] == [
        f"Task/{referral_id}/_history/1", f"ServiceRequest/{referral_id}",
        f"Patient/{referral_id}", f"Consent/{referral_id}"]

    # Both sides read the same four resources; each is valid R4 and says what was posted.
    for client in (clinic, agency):
        task = Task.model_validate(ok(client.get(f"/fhir/Task/{referral_id}")))
        assert (task.status, task.intent, task.meta.versionId) == ("requested", "order", "1")
        assert task.businessStatus.coding[0].code == "submitted"
        assert (task.requester.reference, task.owner.reference) == (
            f"Organization/{sender}", f"Organization/{receiver}")
        assert (task.focus.reference, task.for_fhir.reference) == (
            f"ServiceRequest/{referral_id}", f"Patient/{referral_id}")
        assert task.priority == "urgent"
        service = ServiceRequest.model_validate(
            ok(client.get(f"/fhir/ServiceRequest/{referral_id}")))
        assert [(c.system, c.code) for c in service.code.coding] == [
            (f"{CASEBRIDGE}/CodeSystem/service-type", "psychosocial_support")]
        assert service.status == "active"
        person = Patient.model_validate(ok(client.get(f"/fhir/Patient/{referral_id}")))
        assert (person.name[0].given, person.name[0].family, person.gender) == (
            ["Zawadi"], "Fictionalson", "female")
        consent = Consent.model_validate(ok(client.get(f"/fhir/Consent/{referral_id}")))
        assert consent.status == "active"
        assert [a.reference.reference for a in consent.provision.actor] == [
            f"Organization/{receiver}"]
        assert {label.code for label in consent.provision.securityLabel} == {
            "identity", "demographics", "contact", "protection", "case-notes"}
        Organization.model_validate(ok(client.get(f"/fhir/Organization/{receiver}")))

    # It went the one way every referral goes: stored once, created and read on record.
    actions = audit_actions(settings, sender)
    assert [a for a, _ in actions].count("referral.create") == 1
    reads = [d["resources"] for a, d in actions if a == "referral.read" and d.get("via") == "fhir"]
    assert reads == [["Task"], ["ServiceRequest"], ["Patient"], ["Consent"]]

    # Posting it again answers with the same referral and stores nothing new.
    again = Bundle.model_validate(posted(clinic, bundle))
    assert [e.response.status for e in again.entry] == ["200 OK"] * 4
    assert task_id(again.model_dump(mode="json")) == referral_id
    changed = referral_bundle(sender, receiver, placer=bundle["entry"][0]["resource"][
        "identifier"][0]["value"], service="case_management")
    conflict = refused(clinic.post("/fhir", json=changed, headers=FHIR_JSON), 409)
    assert conflict.issue[0].code == "duplicate"


def test_only_what_the_agreement_shares_is_stored_and_the_sender_is_told_what_was_removed(
        new_partner: Callable[..., tuple[str, str]], client_for: Client,
        settings: Settings) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(
        new_partner, settings, purposes=["referral"], data_categories={"referral": [
            "identity", "demographics", "protection", "case-notes"]})
    answer = posted(client_for(sender_key), referral_bundle(sender, receiver))

    notice = OperationOutcome.model_validate(answer["entry"][0]["response"]["outcome"])
    assert "Bundle.entry[2].resource.telecom[0].value" in expressions(notice)
    person = Patient.model_validate(ok(client_for(receiver_key).get(
        f"/fhir/Patient/{task_id(answer)}")))
    assert person.telecom is None and person.name[0].given == ["Zawadi"]


def test_a_consent_that_does_not_name_the_receiver_refuses_the_bundle_at_the_actor(
        pair: tuple[str, str, str, str], client_for: Client, settings: Settings) -> None:
    sender, sender_key, receiver, _ = pair
    bundle = referral_bundle(sender, receiver, receivers=("someone-else",))

    outcome = refused(client_for(sender_key).post("/fhir/Task", json=bundle,
                                                  headers=FHIR_JSON), 422)
    assert outcome.issue[0].code == "business-rule"
    assert "Bundle.entry[3].resource.provision.actor" in expressions(outcome)
    assert [a for a, _ in audit_actions(settings, sender)] == ["referral.refuse"]
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        assert session.scalar(select(Referral).where(Referral.sender_id == sender)) is None


@pytest.mark.parametrize(("change", "expression"), [
    (lambda b: b["entry"][0]["resource"].pop("identifier"),
     "Bundle.entry[0].resource.identifier"),
    (lambda b: b["entry"][2]["resource"]["name"][0].pop("given"),
     "Bundle.entry[2].resource.name[0].given"),
    (lambda b: b["entry"][2]["resource"].update(birthDate="9 March 2014"),
     "Bundle.entry[2].resource.birthDate"),
    (lambda b: b["entry"][0]["resource"]["focus"].update(reference="urn:uuid:elsewhere"),
     "Bundle.entry[0].resource.focus.reference"),
    (lambda b: b["entry"][1]["resource"]["code"]["coding"][0].update(code="massage"),
     "Bundle.entry[1].resource.code.coding[0].code"),
])
def test_a_bundle_that_is_not_a_referral_is_refused_naming_the_element(
        pair: tuple[str, str, str, str], client_for: Client,
        change: Callable[[dict[str, Any]], Any], expression: str) -> None:
    sender, sender_key, receiver, _ = pair
    bundle = referral_bundle(sender, receiver)
    change(bundle)
    answer = client_for(sender_key).post("/fhir", json=bundle, headers=FHIR_JSON)
    assert answer.status_code in (400, 422), answer.text
    assert expression in expressions(refused(answer, answer.status_code))


def test_the_owner_moves_the_task_on_and_each_status_event_is_a_version(
        pair: tuple[str, str, str, str], client_for: Client, settings: Settings) -> None:
    sender, sender_key, receiver, receiver_key = pair
    clinic, agency = client_for(sender_key), client_for(receiver_key)
    referral_id = task_id(posted(clinic, referral_bundle(sender, receiver)))
    gateway_marks_delivered(settings, referral_id)
    url = f"/fhir/Task/{referral_id}"

    # The owner acknowledges with a JSON Patch, then accepts with the Task sent whole.
    delivered = Task.model_validate(ok(agency.get(url)))
    assert (delivered.status, delivered.businessStatus.coding[0].code) == (
        "received", "delivered")
    received = Task.model_validate(ok(agency.patch(url, headers=JSON_PATCH, json=[
        {"op": "test", "path": "/status", "value": "received"},
        {"op": "replace", "path": "/businessStatus/coding/0/code", "value": "acknowledged"}])))
    assert (received.status, received.businessStatus.coding[0].code) == (
        "received", "acknowledged")
    current = ok(agency.get(url))
    accepted = ok(agency.put(url, headers={**FHIR_JSON, "If-Match": 'W/"3"'},
                             json={**current, "status": "accepted"}))
    assert (accepted["status"], accepted["meta"]["versionId"]) == ("accepted", "4")
    stale = refused(agency.put(url, headers={**FHIR_JSON, "If-Match": 'W/"3"'},
                               json={**current, "status": "in-progress"}), 412)
    assert stale.issue[0].code == "conflict"

    # Only the owner says it is done; the requester is told what it may do instead.
    wrong = refused(clinic.patch(url, headers=JSON_PATCH, json=[
        {"op": "replace", "path": "/status", "value": "completed"}]), 409)
    assert "Task.status" in expressions(wrong)
    assert refused(agency.put(url, headers=FHIR_JSON, json={
        **ok(agency.get(url)), "status": "completed", "priority": "stat"}), 422).issue[1] \
        .expression == ["Task.priority"]

    done = Task.model_validate(ok(agency.patch(url, headers=JSON_PATCH, json=[
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/output", "value": [{
            "type": {"coding": [{"system": f"{CASEBRIDGE}/CodeSystem/task-output",
                                 "code": "outcome"}]},
            "valueCodeableConcept": {"coding": [{
                "system": f"{CASEBRIDGE}/CodeSystem/outcome-result", "code": "successful"}]}}]},
        {"op": "add", "path": "/note", "value": [{"text": "Three sessions held."}]}])))
    assert done.status == "completed"
    assert done.output[0].valueCodeableConcept.coding[0].code == "successful"
    assert [n.text for n in done.note] == ["Three sessions held."]
    assert done.note[0].authorReference.reference == f"Organization/{receiver}"
    assert done.executionPeriod.end is not None

    history = Bundle.model_validate(ok(clinic.get(f"{url}/_history")))
    assert history.type == "history"
    assert [(e.resource.meta.versionId, e.resource.status) for e in history.entry] == [
        ("5", "completed"), ("4", "accepted"), ("3", "received"), ("2", "received"),
        ("1", "requested")]
    assert [e.resource.businessStatus.coding[0].code for e in history.entry][-2:] == [
        "delivered", "submitted"]  # the gateway's own delivered, before the owner's steps
    second = Task.model_validate(ok(clinic.get(f"{url}/_history/2")))
    assert (second.status, second.businessStatus.coding[0].code) == ("received", "delivered")
    refused(clinic.get(f"{url}/_history/9"), 404)


def test_tasks_are_searched_by_owner_requester_status_and_change_with_their_focus(
        pair: tuple[str, str, str, str], client_for: Client, settings: Settings) -> None:
    sender, sender_key, receiver, receiver_key = pair
    clinic, agency = client_for(sender_key), client_for(receiver_key)
    before = utcnow().isoformat().replace("+00:00", "Z")
    first, second, third = (task_id(posted(clinic, referral_bundle(sender, receiver)))
                            for _ in range(3))
    gateway_marks_delivered(settings, second)
    ok(agency.patch(f"/fhir/Task/{second}", headers=JSON_PATCH, json=[
        {"op": "replace", "path": "/status", "value": "accepted"}]))
    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions.begin() as session:
        session.add(TrackedDeadline(
            referral_id=third, state="submitted", name="acknowledge", policy_id="p",
            calendar_id="c", started_at=utcnow(), due_at=utcnow().replace(year=2030),
            next_alert_at=None))

    def found(client: httpx.Client, query: str) -> Bundle:
        return Bundle.model_validate(ok(client.get(f"/fhir/Task?{query}")))

    mine = found(agency, f"owner=Organization/{receiver}&_lastUpdated=ge{before}")
    assert [e.resource.id for e in mine.entry] == [first, third, second]
    by_status = found(clinic, f"requester={sender}&status=accepted&_include=Task:focus")
    assert [(e.resource.get_resource_type(), e.resource.id, e.search.mode)
            for e in by_status.entry] == [("Task", second, "match"),
                                          ("ServiceRequest", second, "include")]
    page = found(agency, f"owner={receiver}&_count=2")
    assert len(page.entry) == 2 and page.link[1].relation == "next"
    rest = Bundle.model_validate(ok(agency.get(page.link[1].url)))
    assert [e.resource.id for e in rest.entry] == [second]
    due = [e.resource for e in mine.entry if e.resource.id == third][0]
    assert due.restriction.period.end.year == 2030
    assert found(agency, f"_lastUpdated=lt{before}").entry is None
    bad = refused(agency.get("/fhir/Task?patient=Patient/1&status=done"), 400)
    assert [i.extension[0].valueString for i in bad.issue[1:]] == ["/patient", "/status"]


def test_every_refusal_is_an_operation_outcome(
        pair: tuple[str, str, str, str], client_for: Client, gateway: Any,
        new_partner: Callable[..., tuple[str, str]], settings: Settings) -> None:
    sender, sender_key, receiver, receiver_key = pair
    referral_id = task_id(posted(client_for(sender_key), referral_bundle(sender, receiver)))
    with httpx.Client(base_url=gateway.url) as anonymous:
        assert refused(anonymous.get(f"/fhir/Task/{referral_id}"), 401).issue[0].code == "login"
        assert refused(anonymous.get("/fhir/Nothing/here"), 404).issue[0].code == "not-found"
        assert ok(anonymous.get("/fhir/metadata"))["resourceType"] == "CapabilityStatement"
    stranger, stranger_key = new_partner(agreement=False)
    outsider = client_for(stranger_key)
    assert refused(outsider.get(f"/fhir/Patient/{referral_id}"), 404).issue[0].code \
        == "not-found"
    assert [a for a, _ in audit_actions(settings, stranger)] == ["referral.deny"]
    assert refused(outsider.delete(f"/fhir/Task/{referral_id}"), 405).issue[0].code \
        == "not-supported"
    assert refused(outsider.get("/fhir/metadata?_format=xml"), 406)
    assert refused(outsider.post("/fhir", content=b"{", headers=FHIR_JSON), 400)
