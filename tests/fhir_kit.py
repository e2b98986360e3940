"""FHIR test helpers: a referral as a health partner posts it, and a notification sink.

The person is fictional (tests/fictional.py); generated identifiers are remembered so the
personal-data scans look for them too.
"""

import json
import threading
import uuid
from typing import Any

from fastapi import FastAPI, Request, Response

from fictional import remember

CASEBRIDGE = "https://casebridge.org/fhir"
EXTENSION = f"{CASEBRIDGE}/StructureDefinition"


def referral_bundle(sender: str, receiver: str, *, placer: str | None = None,
                    service: str = "psychosocial_support",
                    categories: tuple[str, ...] = ("identity", "demographics", "contact",
                                                   "protection", "case-notes"),
                    receivers: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A transaction Bundle of one referral of a fictional child from `sender` to `receiver`:
    Task, ServiceRequest, Patient and Consent, referring to each other by fullUrl."""
    case_number = f"CP-{uuid.uuid4().hex[:6]}"
    remember(case_number)
    ids = {kind: f"urn:uuid:{uuid.uuid4()}" for kind in ("task", "sr", "patient", "consent")}
    task = {
        "resourceType": "Task", "status": "requested", "intent": "order",
        "identifier": [{"system": "https://clinic.example/referrals",
                        "value": placer or f"CLN-{uuid.uuid4().hex[:10]}"}],
        "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                             "code": "fulfill"}]},
        "focus": {"reference": ids["sr"]}, "for": {"reference": ids["patient"]},
        "authoredOn": "2026-11-20T09:30:00Z",
        "requester": {"reference": f"Organization/{sender}"},
        "owner": {"reference": f"Organization/{receiver}"},
    }
    service_request = {
        "resourceType": "ServiceRequest", "status": "active", "intent": "order",
        "code": {"coding": [{"system": f"{CASEBRIDGE}/CodeSystem/service-type",
                             "code": service}]},
        "priority": "urgent", "subject": {"reference": ids["patient"]},
        "reasonCode": [{"text": "Disclosed violence at home during a clinic visit."}],
        "category": [{"coding": [{"system": f"{CASEBRIDGE}/CodeSystem/case-module",
                                  "code": "child_protection"}]}],
        "supportingInfo": [{"reference": ids["consent"]}],
    }
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": f"{CASEBRIDGE}/sid/primero_case", "value": case_number}],
        "name": [{"family": "Fictionalson", "given": ["Zawadi"]}],
        "gender": "female", "birthDate": "2014-03-09",
        "telecom": [{"system": "phone", "value": "+211 900 000 001"}],
    }
    consent = {
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                  "code": "IDSCL"}]}],
        "patient": {"reference": ids["patient"]}, "dateTime": "2026-11-20T09:00:00Z",
        "extension": [
            {"url": f"{EXTENSION}/consent-given-by", "valueCode": "caregiver"},
            {"url": f"{EXTENSION}/consent-form", "valueCode": "written"},
            {"url": f"{EXTENSION}/child-assent", "valueBoolean": True},
            {"url": f"{EXTENSION}/bia-reference", "valueString": "BIA-2026-0042"}],
        "provision": {
            "type": "permit",
            "purpose": [{"system": f"{CASEBRIDGE}/CodeSystem/purpose", "code": "referral"}],
            "actor": [{"role": {"text": "recipient"},
                       "reference": {"reference": f"Organization/{r}"}}
                      for r in (receivers if receivers is not None else (receiver,))],
            "securityLabel": [{"system": f"{CASEBRIDGE}/CodeSystem/data-category", "code": c}
                              for c in categories]},
    }
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": ids[key], "resource": resource,
         "request": {"method": "POST", "url": resource["resourceType"]}}
        for key, resource in (("task", task), ("sr", service_request),
                              ("patient", patient), ("consent", consent))]}


FHIR_JSON = {"Content-Type": "application/fhir+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


class NotificationSink:
    """A partner's rest-hook endpoint: keeps every notification, answers `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], Any]] = []
        self.status = 200
        self.lock = threading.Lock()
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            with self.lock:
                self.received.append((dict(request.headers),
                                      json.loads(body) if body else None))
            return Response(status_code=self.status)

    def notifications(self) -> list[Any]:
        with self.lock:
            return [body for _, body in self.received]

    def focus(self) -> list[tuple[str, str]]:
        """(event number, Task reference) of each id-only notification received."""
        found = []
        for body in self.notifications():
            if body is None:  # a ping
                continue
            status = body["entry"][0]["resource"]["parameter"]
            event = next(p for p in status if p["name"] == "notification-event")["part"]
            parts = {p["name"]: p for p in event}
            found.append((parts["event-number"]["valueString"],
                          parts["focus"]["valueReference"]["reference"]))
        return found
