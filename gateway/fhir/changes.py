"""What a FHIR partner changes: a referral posted as a transaction Bundle, a Task moved on.

Both go the one way every referral and status event goes (`submit_referral`,
`record_status_event`: contract, consent gate, agreement, need-to-know, lifecycle). This
module reads the FHIR into what those take, through the mappings, and names each refusal
at the element the partner sent (`Bundle.entry[2].resource.name[0].given`) rather than at
the canonical field, by the rule of the mapping that read it.
"""

from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.task import Task
from pydantic import ValidationError
from sqlalchemy.orm import Session

from gateway.casework import record_status_event, role_of, submit_referral
from gateway.contracts import Contracts
from gateway.errors import (
    CaseBridgeError,
    ConsentProblem,
    FieldError,
    MalformedRequest,
    MappingError,
    ValidationProblem,
)
from gateway.fhir import resources
from gateway.mapping.model import Rule
from gateway.mapping.translator import MappingTranslator
from gateway.protection.agreements import AgreementRegistry
from gateway.store.models import Partner, Referral, StatusEvent

# What a partner may change in a Task it updates; the rest is the referral's own.
CHANGEABLE = ("status", "statusReason", "businessStatus", "output", "note", "lastModified",
              "meta", "text")
REMOVED = "removed: the consent or the data-sharing agreement does not let it reach the receiver"


@dataclass(frozen=True)
class Posting:
    """A referral posted as a Bundle: stored now, or before (`replayed`), and the elements
    of the Bundle the need-to-know filter removed, as (JSON Pointer, why)."""

    referral: Referral
    replayed: bool
    posted: resources.Posted
    withheld: list[tuple[str, str]]


def submit_bundle(*, session: Session, contracts: Contracts, agreements: AgreementRegistry,
                  translator: MappingTranslator, sender: Partner, body: Any,
                  correlation_id: str) -> Posting:
    """Read a referral Bundle and submit it as any referral; a refusal names the elements
    of the Bundle (a ConsentProblem stays one, for the caller to put on record)."""
    posted = resources.read_transaction(body)
    mapping = translator.mapping_for(resources.SYSTEM, "referral", "referral", "inbound")
    rules = mapping.mapping.blocks["inbound"].rules

    def located(errors: list[FieldError]) -> list[FieldError]:
        return _located(errors, rules, posted.native, posted.pointer)

    try:
        document = mapping.inbound(posted.native)
    except MappingError as error:
        raise ValidationProblem("The Bundle cannot be read as a referral.",
                                located([_mapping_error(error)])) from None
    try:
        result = submit_referral(session=session, contracts=contracts, agreements=agreements,
                                 sender=sender, document=document,
                                 idempotency_key=posted.idempotency_key,
                                 correlation_id=correlation_id)
    except ConsentProblem as refusal:
        located_refusal = ConsentProblem(refusal.detail, located(refusal.errors),
                                         title=refusal.title, slug=refusal.slug,
                                         status=refusal.status, agreement=refusal.agreement)
        located_refusal.receiver = refusal.receiver
        raise located_refusal from None
    except ValidationProblem as problem:
        raise ValidationProblem(problem.detail, located(problem.errors)) from None
    except CaseBridgeError as error:  # the sender named is not the caller, say
        errors = error.extensions.get("errors")
        if errors:
            error.extensions["errors"] = [e.as_dict() for e in located(
                [FieldError(e["pointer"], e["rule"], e["detail"]) for e in errors])]
        raise
    withheld = [(posted.pointer(path), REMOVED) for removed in result.referral.withheld
                for path in resources.source_paths(rules, removed, posted.native)]
    return Posting(result.referral, result.replayed, posted, withheld)


def version_tag(referral: Referral) -> str:
    """The ETag of the Task: its version, the number of status events."""
    return f'W/"{len(referral.events)}"'


def check_version(referral: Referral, if_match: str | None) -> None:
    """Refuse a change made against an older version of the Task (`If-Match`)."""
    if if_match is not None and if_match.strip() != version_tag(referral):
        raise CaseBridgeError(
            detail=f"The Task has changed since that version; it is now {version_tag(referral)}"
                   ": read it again.", status=412, slug="version-conflict",
            title="Version conflict")


def current_task(session: Session, translator: MappingTranslator, referral: Referral
                 ) -> dict[str, Any]:
    """The Task as the partner reads it now, as JSON."""
    task = resources.task(referral, translator, due=resources.due_of(session, referral))
    return task.model_dump(mode="json", by_alias=True, exclude_none=True)


def change_task(*, session: Session, contracts: Contracts, translator: MappingTranslator,
                partner: Partner, referral: Referral, body: Any, current: dict[str, Any]
                ) -> StatusEvent | None:
    """Apply a changed Task: it may differ from `current` only where a partner may change
    it; its status is read through the mapping and recorded as a status event (None when
    it repeats the current state)."""
    if not isinstance(body, dict) or body.get("resourceType") != "Task":
        raise MalformedRequest("Send the Task.", errors=[
            FieldError("/resourceType", "resource-type", "Task")])
    try:
        sent = Task.model_validate(body).model_dump(mode="json", by_alias=True,
                                                     exclude_none=True)
    except ValidationError as error:
        raise resources.invalid("The Task is not valid FHIR.", error) from None
    errors = [FieldError(f"/{key}", "read-only", "only status, statusReason, businessStatus, "
                                                 "output and a new note change here")
              for key in sorted(set(current) | set(sent))
              if key not in CHANGEABLE and current.get(key) != sent.get(key)]
    old_notes, notes = current.get("note", []), sent.get("note", [])
    if notes[:len(old_notes)] != old_notes:
        errors.append(FieldError("/note", "notes-kept", "add a note after the others; the "
                                                         "earlier ones stay as they are"))
    if errors:
        raise ValidationProblem("The Task changes what is not a partner's to change.", errors)
    # The new status, and only what this update changed (a Task sent back whole still
    # carries the reason and the time of its last change).
    native: dict[str, Any] = {
        "status": sent.get("status"), "note": notes[len(old_notes):],
        **{key: sent[key] for key in ("statusReason", "businessStatus", "output",
                                      "lastModified")
           if key in sent and sent[key] != current.get(key)}}
    mapping = translator.mapping_for(resources.SYSTEM, referral.kind, "status-event",
                                     "inbound")
    rules = mapping.mapping.blocks["inbound"].rules

    def located(errors: list[FieldError]) -> list[FieldError]:
        return _located(errors, rules, native,
                        lambda path: "".join(f"/{step}" for step in path))

    try:
        document = mapping.inbound(native)
        if document["status"] == referral.status and native["note"]:
            raise ValidationProblem("A note travels with a change of status.", [FieldError(
                "/note", "note-with-status", "change the status in the same update")])
        return record_status_event(session=session, contracts=contracts, referral=referral,
                                   actor=role_of(partner, referral), actor_partner=partner,
                                   document=document)
    except MappingError as error:
        raise ValidationProblem("The Task's status cannot be read.",
                                located([_mapping_error(error)])) from None
    except ValidationProblem as problem:
        raise ValidationProblem(problem.detail, located(problem.errors)) from None


def _mapping_error(error: MappingError) -> FieldError:
    return FieldError(str(error.extensions["path"]), "mapping",
                      str(error.extensions.get("reason", "")))


def _located(errors: list[FieldError], rules: list[Rule], native: dict[str, Any],
             pointer: Any) -> list[FieldError]:
    """Each error at the elements of what the partner sent its field was read from (the
    canonical pointer kept where no rule read it)."""
    return [FieldError(where, error.rule, error.detail) for error in errors
            for where in ([pointer(path) for path in resources.source_paths(
                rules, error.pointer, native)] or [error.pointer])]
