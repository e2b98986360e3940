"""The resources of a referral, each valid FHIR R4 (R4B models), and the lifecycle table:
each canonical state shown as the Task status and businessStatus issue 15 asks for."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from gateway import ROOT
from gateway.contracts import Contracts
from gateway.fhir import resources
from gateway.fhir.resources import Gone
from gateway.mapping.translator import MappingTranslator
from gateway.store.models import Referral, StatusEvent

TRANSLATOR = MappingTranslator(ROOT / "mappings", contracts=Contracts(ROOT / "contracts"),
                               system="fhir")
CS = "https://casebridge.org/fhir/CodeSystem"
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

# canonical state → (Task.status, ServiceRequest.status), the table of issue 15.
LIFECYCLE = {
    "submitted": ("requested", "active"), "delivered": ("received", "active"),
    "acknowledged": ("received", "active"), "accepted": ("accepted", "active"),
    "rejected": ("rejected", "revoked"), "in_progress": ("in-progress", "active"),
    "completed": ("completed", "completed"), "withdrawn": ("cancelled", "revoked"),
    "failed": ("failed", "active"), "challenged": ("on-hold", "on-hold"),
}
# What the status event into each state carries, as partners send it.
DETAILS: dict[str, dict[str, Any]] = {
    "rejected": {"reason": {"code": "lack_of_capacity", "text": "No place this month."}},
    "challenged": {"reason": {"code": "risk_concerns", "text": "Risk not assessed yet."}},
    "completed": {"outcome": {"result": "successful"}, "note": "Three sessions held."},
    "withdrawn": {"note": "The family moved away."},
}


def referral_in(state: str, document: dict[str, Any], *, kind: str = "referral",
                **fields: Any) -> Referral:
    """A stored referral (not in a database) whose last status event moved it to `state`."""
    referral = Referral(id="7d0c6f2e-8b1a-4f5e-9c7d-2a1b0c9d8e7f", kind=kind,
                        sender_id="clinic-juba", receiver_id="primero-ssd", status=state,
                        content=document, withheld=[], agreement_id="isp-test",
                        created_at=T0, updated_at=T0 + timedelta(days=2), **fields)
    states = ["submitted", "delivered"] + ([state] if state not in ("submitted", "delivered")
                                           else [])
    referral.events = [
        StatusEvent(id=f"e{seq}", seq=seq, from_state=None, to_state=to, actor="receiver",
                    actor_partner_id="primero-ssd" if seq > 2 else None,
                    content=DETAILS.get(to, {}) if to == state else {},
                    occurred_at=T0 + timedelta(days=seq), recorded_at=T0 + timedelta(days=seq))
        for seq, to in enumerate(states[:states.index(state) + 1], start=1)]
    return referral


@pytest.fixture
def document(make_referral: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_referral("clinic-juba", "primero-ssd")


@pytest.mark.parametrize("state", list(LIFECYCLE))
def test_each_state_is_shown_as_the_task_status_of_the_lifecycle_table(
        state: str, document: dict[str, Any]) -> None:
    kind = "transfer" if state == "challenged" else "referral"
    if kind == "transfer":
        document = {**{k: v for k, v in document.items() if k != "services"},
                    "kind": "transfer", "transfer": {"include_related": ["child_protection"]}}
    referral = referral_in(state, document, kind=kind)
    task = Task.model_validate_json(resources.task(referral, TRANSLATOR).model_dump_json())
    assert task.status == LIFECYCLE[state][0]
    assert [(c.system, c.code) for c in task.businessStatus.coding] == [
        (f"{CS}/referral-status", state)]
    assert (task.intent, task.code.coding[0].code) == ("order", "fulfill")
    assert task.meta.versionId == str(len(referral.events))
    service = ServiceRequest.model_validate_json(
        resources.service_request(referral, TRANSLATOR).model_dump_json())
    assert service.status == LIFECYCLE[state][1]

    if state in ("rejected", "challenged"):
        assert task.statusReason.coding[0].code == DETAILS[state]["reason"]["code"]
        assert task.statusReason.text == DETAILS[state]["reason"]["text"]
    elif state == "withdrawn":
        assert task.statusReason.text == "The family moved away."
    else:
        assert task.statusReason is None
    if state == "completed":
        [output] = task.output
        assert (output.type.coding[0].code, output.valueCodeableConcept.coding[0].code) == (
            "outcome", "successful")
        assert [(n.text, n.authorReference.reference) for n in task.note] == [
            ("Three sessions held.", "Organization/primero-ssd")]
        assert task.executionPeriod.end is not None
    else:
        assert task.output is None


@pytest.mark.parametrize(("task_status", "business", "state"), [
    ("received", None, "acknowledged"), ("received", "acknowledged", "acknowledged"),
    ("accepted", None, "accepted"), ("rejected", None, "rejected"),
    ("in-progress", None, "in_progress"), ("completed", None, "completed"),
    ("cancelled", None, "withdrawn"),
])
def test_a_task_status_a_partner_sets_comes_in_as_its_canonical_state(
        task_status: str, business: str | None, state: str) -> None:
    native: dict[str, Any] = {"status": task_status}
    if business:
        native["businessStatus"] = {"coding": [{"system": f"{CS}/referral-status",
                                                "code": business}]}
    assert TRANSLATOR.status_in("fhir", "referral", native)["status"] == state


def test_the_task_shows_the_version_asked_for_and_its_due_date_only_when_latest(
        document: dict[str, Any]) -> None:
    referral = referral_in("accepted", document)
    due = T0 + timedelta(days=10)
    latest = resources.task(referral, TRANSLATOR, due=due)
    first = resources.task(referral, TRANSLATOR, version=1, due=due)
    assert (latest.meta.versionId, latest.status, latest.restriction.period.end) == (
        "3", "accepted", due)
    assert (first.meta.versionId, first.status, first.restriction) == ("1", "requested", None)
    assert first.lastModified == T0 + timedelta(days=1)
    assert [i.system for i in latest.identifier] == [
        None, "https://casebridge.org/fhir/sid/referral"]
    assert latest.identifier[0].value == document["external_reference"]


def test_patient_and_consent_show_the_receivers_copy_and_nothing_more(
        document: dict[str, Any]) -> None:
    without_contact = {**document, "subject": {k: v for k, v in document["subject"].items()
                                               if k != "contact"}}
    referral = referral_in("delivered", without_contact)
    person = Patient.model_validate_json(resources.patient(referral, TRANSLATOR)
                                         .model_dump_json())
    assert (person.name[0].given, person.name[0].family, person.birthDate.isoformat()) == (
        ["Zawadi"], "Fictionalson", "2014-03-09")
    assert person.telecom is None and person.address is None
    assert person.meta.security[0].code == "R"
    consent = Consent.model_validate_json(resources.consent(referral, TRANSLATOR)
                                          .model_dump_json())
    assert consent.status == "active" and consent.patient.reference == f"Patient/{referral.id}"
    assert [a.reference.reference for a in consent.provision.actor] == [
        "Organization/primero-ssd"]
    assert [p.code for p in consent.provision.purpose] == ["referral"]
    assert [s.code for s in consent.provision.securityLabel] == document["consent"]["scope"][
        "data_categories"]


def test_a_withdrawn_consent_is_inactive_from_the_day_it_was_withdrawn(
        document: dict[str, Any]) -> None:
    document["consent"] |= {"withdrawn": True, "withdrawn_date": "2026-11-25"}
    referral = referral_in("withdrawn", document, consent_withdrawn_at=T0 + timedelta(days=5))
    consent = resources.consent(referral, TRANSLATOR)
    assert consent.status == "inactive"
    assert consent.provision.period.end.isoformat() == "2026-11-25"


def test_a_restricted_referral_shows_its_status_only_and_none_of_its_content(
        document: dict[str, Any]) -> None:
    referral = referral_in("completed", document, restricted_at=T0 + timedelta(days=9))
    task = resources.task(referral, TRANSLATOR)
    assert task.status == "completed"
    assert (task.note, task.output, task.priority) == (None, None, None)
    for render in (resources.patient, resources.consent, resources.service_request):
        with pytest.raises(Gone) as gone:
            render(referral, TRANSLATOR)
        assert (gone.value.status, gone.value.slug) == (410, "restricted")
