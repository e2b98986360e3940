"""The FHIR R4 resources of a referral, and a posted transaction Bundle read back into one.

Rendering starts from the receiver's copy (`Referral.content`: only what the consent and the
data-sharing agreement let leave) and its status events, runs them through the mappings in
`mappings/fhir/` and adds what a mapping cannot say: ids, references between the
resources, meta, the Task's fixed elements and dates. Every resource is validated by its
`fhir.resources.R4B` model before it leaves; FHIR R4 and R4B are the same for Task,
ServiceRequest, Patient, Consent, Organization and Subscription.

A referral's resources share its id: Task/<id> tracks ServiceRequest/<id>, for Patient/<id>
(the person as this referral shows them), under Consent/<id>. Task version n is the
referral after its n-th status event.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.delivery.translate import Translator
from gateway.errors import CaseBridgeError, ConfigurationError, FieldError, MalformedRequest
from gateway.lifecycle import State
from gateway.mapping.model import Rule
from gateway.mapping.paths import FieldPath, Step
from gateway.mapping.produce import conditions
from gateway.store.models import Partner, Referral, StatusEvent, TrackedDeadline

SYSTEM = "fhir"  # the mappings/ folder of the FHIR face
BASE = "https://casebridge.org/fhir"
SID_PARTNER = f"{BASE}/sid/partner"
SID_REFERRAL = f"{BASE}/sid/referral"
CODE_SYSTEM = f"{BASE}/CodeSystem"
CONFIDENTIAL = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "code": "R", "display": "restricted"}
FULFIL = {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]}
# ServiceRequest.status by canonical state: the request stands until it is done or dropped.
SERVICE_REQUEST_STATUS = {
    State.SUBMITTED: "active", State.DELIVERED: "active", State.ACKNOWLEDGED: "active",
    State.ACCEPTED: "active", State.IN_PROGRESS: "active", State.CHALLENGED: "on-hold",
    State.COMPLETED: "completed", State.REJECTED: "revoked", State.WITHDRAWN: "revoked",
    State.FAILED: "active"}
# The parts of a referral, by the key the mapping in mappings/fhir/referral.yaml uses.
PARTS = {"Task": "task", "ServiceRequest": "service_request", "Patient": "patient",
         "Consent": "consent"}

R = TypeVar("R", bound=Resource)


class Gone(CaseBridgeError):
    """A data-subject request restricted or erased the referral: no partner sees it now."""

    def __init__(self, why: str) -> None:
        super().__init__(
            detail=f"The person's data in this referral was {why} by a data-subject request; "
                   "it is shown to no partner.", status=410, slug=why, title="No longer shown")


def instant(moment: datetime) -> str:
    """A FHIR instant: UTC, seconds, `Z`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def organization_reference(partner_id: str) -> dict[str, Any]:
    return {"reference": f"Organization/{partner_id}",
            "identifier": {"system": SID_PARTNER, "value": partner_id}}


def emit(model: type[R], resource: dict[str, Any]) -> R:
    """Validate a resource the gateway made with its FHIR model; a failure is the
    gateway's (its mappings), not the partner's, and names the element."""
    try:
        return model.model_validate(resource)
    except ValidationError as error:
        where = ", ".join(_pointer(e["loc"]) for e in error.errors()[:5])
        raise ConfigurationError(
            f"mappings/{SYSTEM} gave a {model.__name__} that FHIR does not accept "
            f"(at {where}): check the mapping files") from None


# --- rendering ----------------------------------------------------------------------------

def parts_of(referral: Referral, translator: Translator) -> dict[str, Any]:
    """The four parts the referral mapping gives for the receiver's copy."""
    if referral.erased_at is not None:
        raise Gone("erased")
    if referral.restricted_at is not None:
        raise Gone("restricted")
    native, _ = translator.outbound(SYSTEM, referral.kind, referral.content)
    return native


def status_part(referral: Referral, event: StatusEvent, translator: Translator
                ) -> dict[str, Any]:
    """The Task's status elements after `event`, from mappings/fhir/task-status.yaml."""
    details = {} if referral.restricted_at or referral.erased_at else event.content
    return translator.status_out(SYSTEM, referral.kind, {"status": event.to_state, **details})


def task_status_of(state: str, kind: str, translator: Translator) -> str:
    """The Task.status a canonical state is shown as."""
    status: str = translator.status_out(SYSTEM, kind, {"status": state})["status"]
    return status


def states_shown_as(statuses: Iterable[str], translator: Translator) -> list[str]:
    """The canonical states shown as any of these Task statuses."""
    wanted = set(statuses)
    return [s.value for s in State if task_status_of(s.value, "referral", translator) in wanted]


def due_of(session: Session, referral: Referral) -> datetime | None:
    """When the current step is due: the earliest open deadline, else the referral's due."""
    due: datetime | None = session.scalar(select(func.min(TrackedDeadline.due_at)).where(
        TrackedDeadline.referral_id == referral.id, TrackedDeadline.met_at.is_(None),
        TrackedDeadline.cleared_at.is_(None)))
    if due is not None and due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due or referral.due_at


def task(referral: Referral, translator: Translator, *, version: int | None = None,
         due: datetime | None = None) -> Task:
    """Task/<id> at `version` (its n-th status event; default the latest)."""
    events = referral.events[:version] if version else referral.events
    last = events[-1]
    shown = referral.restricted_at is None and referral.erased_at is None
    parts = parts_of(referral, translator).get("task", {}) if shown else {}
    status = status_part(referral, last, translator)
    resource: dict[str, Any] = {
        "resourceType": "Task", "id": referral.id,
        "meta": {"versionId": str(len(events)), "lastUpdated": instant(last.recorded_at)},
        "identifier": [*parts.get("identifier", []),
                       {"system": SID_REFERRAL, "value": referral.id}],
        **{k: v for k, v in status.items() if k != "note"},
        "intent": "order", "code": FULFIL,
        "focus": {"reference": f"ServiceRequest/{referral.id}"},
        "for": {"reference": f"Patient/{referral.id}"},
        "authoredOn": instant(referral.created_at), "lastModified": instant(last.recorded_at),
        "requester": organization_reference(referral.sender_id),
        "owner": organization_reference(referral.receiver_id),
    }
    if "priority" in parts:
        resource["priority"] = parts["priority"]
    if due is not None and version in (None, len(referral.events)):
        resource["restriction"] = {"period": {"end": instant(due)}}
    period = _execution(events)
    if period:
        resource["executionPeriod"] = period
    notes = _notes(referral, events, translator) if shown else []
    if notes:
        resource["note"] = notes
    return emit(Task, resource)


def _execution(events: list[StatusEvent]) -> dict[str, str]:
    """When the service started (in progress) and ended (completed)."""
    period = {}
    for event in events:
        if event.to_state == State.IN_PROGRESS and "start" not in period:
            period["start"] = instant(event.occurred_at)
        if event.to_state == State.COMPLETED:
            period["end"] = instant(event.occurred_at)
    return period


def _notes(referral: Referral, events: list[StatusEvent], translator: Translator
           ) -> list[dict[str, Any]]:
    """Every note the status events carried, each with its time and author."""
    notes = []
    for event in events:
        for note in status_part(referral, event, translator).get("note", []):
            author = ({"authorReference": organization_reference(event.actor_partner_id)}
                      if event.actor_partner_id else {"authorString": "CaseBridge"})
            notes.append({**note, **author, "time": instant(event.occurred_at)})
    return notes


def service_request(referral: Referral, translator: Translator) -> ServiceRequest:
    """ServiceRequest/<id>: the services asked for, why, how soon."""
    part = parts_of(referral, translator).get("service_request", {})
    return emit(ServiceRequest, {
        **part, "resourceType": "ServiceRequest", "id": referral.id,
        "meta": {"lastUpdated": instant(referral.created_at), "security": [CONFIDENTIAL]},
        "identifier": [{"system": SID_REFERRAL, "value": referral.id}],
        "status": SERVICE_REQUEST_STATUS[State(referral.status)], "intent": "order",
        "subject": {"reference": f"Patient/{referral.id}"},
        "authoredOn": instant(referral.created_at),
        "requester": organization_reference(referral.sender_id),
        "performer": [organization_reference(referral.receiver_id)],
        "supportingInfo": [{"reference": f"Consent/{referral.id}"}],
    })


def patient(referral: Referral, translator: Translator) -> Patient:
    """Patient/<id>: the person as the receiver's copy of this referral shows them."""
    part = parts_of(referral, translator).get("patient", {})
    return emit(Patient, {
        **part, "resourceType": "Patient", "id": referral.id,
        "meta": {"lastUpdated": instant(referral.created_at), "security": [CONFIDENTIAL]}})


def consent(referral: Referral, translator: Translator) -> Consent:
    """Consent/<id>: what the person agreed to, for which purposes, to whom, which data."""
    part = parts_of(referral, translator).get("consent", {})
    scope = referral.content.get("consent", {}).get("scope", {})
    provision = {
        **part.get("provision", {}), "type": "permit",
        "purpose": [{"system": f"{CODE_SYSTEM}/purpose", "code": p}
                    for p in scope.get("purposes", [])],
        "actor": [{"role": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP", "display": "information recipient"}]},
            "reference": organization_reference(r)} for r in scope.get("receivers", [])],
        "securityLabel": [{"system": f"{CODE_SYSTEM}/data-category", "code": c}
                          for c in scope.get("data_categories", [])],
        "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                                "code": "disclose"}]}],
    }
    changed = referral.consent_withdrawn_at or referral.created_at
    return emit(Consent, {
        **part, "resourceType": "Consent", "id": referral.id,
        "meta": {"lastUpdated": instant(changed), "security": [CONFIDENTIAL]},
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                  "code": "IDSCL"}]}],
        "patient": {"reference": f"Patient/{referral.id}"},
        "organization": [organization_reference(referral.sender_id)],
        **({"policyRule": {"text": f"CaseBridge data-sharing agreement {referral.agreement_id}"}}
           if referral.agreement_id else {}),
        "provision": provision,
    })


def organization(partner: Partner) -> Organization:
    """Organization/<partner id>: a partner of the gateway (no personal data)."""
    return emit(Organization, {
        "resourceType": "Organization", "id": partner.id, "active": partner.active,
        "identifier": [{"system": SID_PARTNER, "value": partner.id}], "name": partner.name})


# --- a posted transaction Bundle ----------------------------------------------------------

@dataclass(frozen=True)
class Posted:
    """The resources of a referral Bundle, as the mapping reads them, and where each was."""

    native: dict[str, dict[str, Any]]
    entries: dict[str, int]
    idempotency_key: str

    def pointer(self, path: list[str | int]) -> str:
        """The JSON Pointer into the Bundle of a path into `native` (part first)."""
        part, *rest = path
        return f"/entry/{self.entries[str(part)]}/resource" + "".join(f"/{p}" for p in rest)


def read_transaction(body: Any) -> Posted:
    """The Task, ServiceRequest, Patient and Consent of a transaction Bundle, checked for
    shape and for referring to each other; MalformedRequest names each fault."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise MalformedRequest("Post a transaction Bundle.", errors=[FieldError(
            "/resourceType", "bundle", "a Bundle of type transaction")])
    try:
        bundle = Bundle.model_validate(body)
    except ValidationError as error:
        raise invalid("The Bundle is not valid FHIR.", error) from None
    if bundle.type != "transaction":
        raise MalformedRequest("The Bundle must be a transaction.", errors=[
            FieldError("/type", "bundle-type", "transaction")])
    entries: dict[str, int] = {}
    native: dict[str, dict[str, Any]] = {}
    full_urls: dict[str, str] = {}
    errors: list[FieldError] = []
    for index, entry in enumerate(bundle.entry or []):
        resource = entry.resource
        kind = resource.get_resource_type() if resource is not None else None
        part = PARTS.get(kind or "")
        if part is None:
            errors.append(FieldError(f"/entry/{index}/resource", "resource-type",
                                     "only a Task, ServiceRequest, Patient and Consent"))
        elif part in entries:
            errors.append(FieldError(f"/entry/{index}/resource", "one-each",
                                     f"a second {kind}: a referral has one"))
        else:
            assert resource is not None
            entries[part] = index
            native[part] = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
            full_urls[part] = entry.fullUrl or ""
        if entry.request is None or entry.request.method != "POST":
            errors.append(FieldError(f"/entry/{index}/request/method", "transaction-method",
                                     "POST: each resource is new"))
    errors += [FieldError("/entry", "one-each", f"a {kind} is missing")
               for kind, part in PARTS.items() if part not in entries]
    if errors:
        raise MalformedRequest("The Bundle is not a referral.", errors=errors)
    posted = Posted(native, entries, "")
    errors = _links(posted, full_urls)
    task_ = native["task"]
    if task_.get("status") != "requested":
        errors.append(FieldError(posted.pointer(["task", "status"]), "task-status",
                                 "a new referral Task is requested"))
    if task_.get("intent") != "order":
        errors.append(FieldError(posted.pointer(["task", "intent"]), "task-intent", "order"))
    identifier = (task_.get("identifier") or [{}])[0]
    key = f"fhir:{identifier.get('system', '')}|{identifier.get('value', '')}"
    if not identifier.get("value") or len(key) > 200:
        errors.append(FieldError(posted.pointer(["task", "identifier"]), "placer-identifier",
                                 "your own identifier of the Task (system and value, up to "
                                 "190 characters): a repeated post of it is answered, not "
                                 "stored twice"))
    if errors:
        raise MalformedRequest("The Bundle is not a referral.", errors=errors)
    return Posted(native, entries, key)


# (part, element, the part it must point at) for the references inside a referral Bundle.
_LINKS = (("task", "focus", "service_request"), ("task", "for", "patient"),
          ("service_request", "subject", "patient"), ("consent", "patient", "patient"))


def _links(posted: Posted, full_urls: dict[str, str]) -> list[FieldError]:
    errors = []
    for part, element, target in _LINKS:
        reference = (posted.native[part].get(element) or {}).get("reference")
        if not reference or reference != full_urls[target]:
            errors.append(FieldError(posted.pointer([part, element, "reference"]), "reference",
                                     f"the fullUrl of the Bundle's {type_of(target)}"))
    return errors


def type_of(part: str) -> str:
    """The resource type of a part of the referral mapping (`service_request` …)."""
    return next(kind for kind, name in PARTS.items() if name == part)


def invalid(detail: str, error: ValidationError, prefix: str = "") -> MalformedRequest:
    """A pydantic ValidationError of a FHIR model as a problem naming each element."""
    return MalformedRequest(detail, errors=[
        FieldError(prefix + _pointer(e["loc"]), "fhir", e["msg"]) for e in error.errors()[:20]])


def _pointer(loc: tuple[Any, ...]) -> str:
    """A JSON Pointer from a pydantic location, without the validators' own steps."""
    steps = [str(p) for p in loc if isinstance(p, int) or (p != "root" and "[" not in str(p))]
    return "".join(f"/{s.removesuffix('_fhir')}" for s in steps)


# --- naming what a partner sent, from a canonical field ------------------------------------

def source_paths(rules: list[Rule], canonical: str, native: dict[str, Any]
                 ) -> list[list[str | int]]:
    """Where in `native` (the partner's own record) the inbound rules read the canonical
    field at pointer `canonical` from: the rule writing it (or a field holding it), else
    every rule writing inside it whose source was sent, else the part it comes from."""
    for rule in rules:
        to = rule.to.pointer()
        if rule.each is not None:
            if canonical.startswith(to + "/"):
                index, _, inner = canonical[len(to) + 1:].partition("/")
                base = _walk(rule.each, native)
                if index.isdigit():
                    items = _value_at(native, base)
                    item = items[int(index)] if isinstance(items, list) and int(index) < len(
                        items) else {}
                    deeper = source_paths(rule.rules, "/" + inner, item) if inner else []
                    return [[*base, int(index), *path] for path in deeper or [[]]]
            continue
        if not (canonical == to or canonical.startswith(to + "/")) or not rule.sources:
            continue
        test = conditions(rule.when)
        if test is None or test(native, native):
            return [_walk(rule.sources[0], native)]
    below = [r for r in rules if r.to.pointer().startswith(canonical + "/") and r.sources]
    sent = [path for path in (_walk(r.sources[0], native) for r in below)
            if _value_at(native, path) is not None]
    if sent:
        return sent
    return [[below[0].sources[0].steps[0].key]] if below else []


def _walk(path: FieldPath, native: Any) -> list[str | int]:
    """The steps of `path` in `native` with list items by position, as far as they exist."""
    found: list[str | int] = []
    node = native
    for step in path.steps:
        found.append(step.key)
        node = node.get(step.key) if isinstance(node, dict) else None
        if step.in_list:
            index = _item(step, node)
            if index is None:
                return found
            found.append(index)
            node = node[index] if isinstance(node, list) else None
    return found


def _item(step: Step, items: Any) -> int | None:
    if not isinstance(items, list):
        return None
    if step.index is not None:
        return step.index if step.index < len(items) else None
    assert step.match is not None
    key, wanted = step.match
    return next((i for i, item in enumerate(items)
                 if isinstance(item, dict) and item.get(key) == wanted), None)


def _value_at(native: Any, path: list[str | int]) -> Any:
    for step in path:
        if isinstance(step, int):
            native = native[step] if isinstance(native, list) and step < len(native) else None
        else:
            native = native.get(step) if isinstance(native, dict) else None
    return native
