"""Routes of /v1/referrals: submit, read, list, post status events."""

import functools
import re
from datetime import date
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from structlog.contextvars import bind_contextvars

from gateway.api.body import json_document, parse_configured, raw_json_document
from gateway.api.deps import (
    ContractsDep,
    CredentialsDep,
    PartnerDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    authenticated,
)
from gateway.api.openapi import problems
from gateway.api.params import PARTNER_ID_PATTERN, DateTime
from gateway.api.schemas import ReferralOut, ReferralPage, ReferralSummary
from gateway.casework import (
    CURSOR_PATTERN,
    is_referral_id,
    list_referrals,
    record_status_event,
    role_of,
    submit_referral,
    visible_referral,
    withdraw_consent,
)
from gateway.contracts import Contracts
from gateway.deadlines.timeline import Timeline, referral_timeline
from gateway.directory.registry import DirectoryRegistry
from gateway.errors import (
    CaseBridgeError,
    ConsentProblem,
    FieldError,
    NotFound,
    ServiceNotOffered,
    ValidationProblem,
)
from gateway.lifecycle import Kind, State
from gateway.logs import CORRELATION_HEADER
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.consent import latest_today
from gateway.protection.disclosures import refusal_facts
from gateway.store.group_commit import GroupCommit
from gateway.store.models import Partner, Referral

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])
ReferralBody = Annotated[bytes, Depends(raw_json_document("referral"))]
StatusEventBody = Annotated[Any, Depends(json_document("status-event"))]
WithdrawalBody = Annotated[Any, Depends(json_document(schema={
    "type": "object", "required": ["withdrawn_date"], "properties": {"withdrawn_date": {
        "type": "string", "format": "date", "description": "The day the person withdrew "
        "consent: today or earlier (a later day is refused with 422, rule not-future)"}}}))]
ReferralId = Annotated[str, Path(description="A referral id (a UUID, as `id` and `Location` "
                                             "give it); any other is answered 404")]
log = structlog.get_logger()
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

_BY_ID = {"referral_id": "$response.body#/id"}
LINKS = {
    "GetReferral": {"operationId": "get_referral", "parameters": _BY_ID},
    "PostEvent": {"operationId": "post_event", "parameters": _BY_ID},
    "PostConsentWithdrawal": {"operationId": "post_consent_withdrawal", "parameters": _BY_ID},
}
CHANGED = {"description": "The state changed: the referral with its new event",
           "model": ReferralOut, "links": LINKS}


@router.post(
    "", status_code=201, response_model=ReferralOut, summary="Submit a referral or transfer",
    operation_id="post_referral",
    responses={201: {"description": "Stored (or, for a repeated Idempotency-Key with the same "
                     "body, stored before)", "links": LINKS, "headers": {
        "Location": {"description": "/v1/referrals/{id}", "schema": {"type": "string"}},
        "Idempotent-Replayed": {"description": "`true` when this answers a repeat of an earlier "
                                "request with the same Idempotency-Key and body",
                                "schema": {"type": "string", "enum": ["true"]}}}},
        **problems(403, 409, 422, s403="The sender named is not the caller.",
                   s409="This Idempotency-Key was used with another body.")})
async def post_referral(
    request: Request, credentials: CredentialsDep, body: ReferralBody,
    idempotency_key: Annotated[str, Header(
        min_length=1, max_length=200,
        description="Unique per referral; a retry of the same submission reuses it")],
) -> Response:
    """Submit a canonical referral (`kind: referral`) or transfer (`kind: transfer`).

    The same Idempotency-Key with the same body returns the first result; with another body it
    is refused with 409. A service the receiver does not offer in the person's area, or has
    suspended, is refused with 422 `service-not-offered` and the alternatives the service
    directory lists; a waiting list is accepted, with a warning in `warnings`.
    """
    # The intake bench's hottest path: authentication, the body's JSON, the work and its
    # answer are one work of a group commit (gateway/store/group_commit.py): the
    # submissions of one moment share a worker-thread turn and a transaction.
    # (The registries come from the application's state, not as dependencies: each
    # dependency costs the event loop a turn of FastAPI's solver on every request.)
    state = request.app.state
    writes: GroupCommit = state.intake
    answer = await writes.run(functools.partial(
        _post_referral, request, credentials, state.contracts, state.agreements,
        state.directory, body, idempotency_key))
    if isinstance(answer, CaseBridgeError):
        raise answer
    return answer


def _post_referral(
    request: Request, credentials: str, contracts: Contracts, agreements: AgreementRegistry,
    directory: DirectoryRegistry, body: bytes, idempotency_key: str, session: Session,
) -> Response | ConsentProblem | ServiceNotOffered:
    """The answer to a submission; a refusal is returned (its audit entry written in
    `session`), not raised, so that the entry commits."""
    partner = authenticated(request, session, credentials)
    document = parse_configured(request, body)
    try:
        result = submit_referral(session=session, contracts=contracts, agreements=agreements,
                                 sender=partner, document=document,
                                 idempotency_key=idempotency_key,
                                 correlation_id=request.state.correlation_id,
                                 directory=directory)
    except (ConsentProblem, ServiceNotOffered) as refusal:  # refused before any write
        audit.record(session, actor=f"partner:{partner.id}", action="referral.refuse",
                     partner_id=partner.id, correlation_id=request.state.correlation_id,
                     detail=refusal_facts(refusal))
        return refusal
    referral = result.referral
    headers = {"Location": f"/v1/referrals/{referral.id}",
               CORRELATION_HEADER: referral.correlation_id,
               **({"Idempotent-Replayed": "true"} if result.replayed else {})}
    # Sent as it is: FastAPI would check it against its model again.
    return Response(ReferralOut.of(referral, warnings=result.warnings).model_dump_json(),
                    status_code=201, headers=headers, media_type="application/json")


@router.get("", response_model=ReferralPage, summary="List referrals you sent or received",
            operation_id="get_referrals")
def get_referrals(
    session: SessionDep, partner: PartnerDep, settings: SettingsDep,
    status: State | None = None, kind: Kind | None = None,
    partner_id: Annotated[str | None, Query(
        alias="partner", pattern=PARTNER_ID_PATTERN,
        description="the other side's partner id")] = None,
    updated_since: Annotated[DateTime | None, Query(
        description="only referrals changed at or after this instant")] = None,
    identifier: Annotated[str | None, Query(
        max_length=300, description="a subject identifier `<system>:<value>` (e.g. "
        "primero_case:CP-123) or `external_reference:<value>`; matched by keyed hash")] = None,
    cursor: Annotated[str | None, Query(
        pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page, unchanged")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="largest page wanted (the gateway "
                                "may give fewer: CASEBRIDGE_PAGE_SIZE_MAX)")] = 50,
) -> ReferralPage:
    """Oldest change first, so a poller can follow `next_cursor` to the end."""
    page = list_referrals(session=session, partner=partner, status=status, kind=kind,
                          other_partner=partner_id, updated_since=updated_since,
                          identifier=identifier, cursor=cursor,
                          limit=min(limit, settings.page_size_max))
    audit.record(session, actor=f"partner:{partner.id}", action="referral.list",
                 partner_id=partner.id, detail={"count": len(page.items),
                                                "by_identifier": identifier is not None})
    return ReferralPage(items=[ReferralSummary.of(r) for r in page.items],
                        next_cursor=page.next_cursor)


@router.get("/{referral_id}", response_model=ReferralOut, summary="Read one referral",
            operation_id="get_referral")
def get_referral(referral_id: ReferralId, session: SessionDep, sessions: SessionsDep,
                 partner: PartnerDep) -> ReferralOut:
    """Sender and receiver both see the receiver's copy: all that was ever stored."""
    referral = visible_or_denied(session, sessions, partner, referral_id)
    bind_contextvars(correlation_id=referral.correlation_id, referral_id=referral.id)
    log.info("referral_read", partner=partner.id)
    audit.record(session, actor=f"partner:{partner.id}", action="referral.read",
                 partner_id=partner.id, referral_id=referral.id,
                 correlation_id=referral.correlation_id,
                 detail={"role": str(role_of(partner, referral))})
    return ReferralOut.of(referral)


@router.get("/{referral_id}/timeline", response_model=Timeline,
            summary="A referral's timeline: status changes, deadlines, deliveries")
def get_timeline(referral_id: str, session: SessionDep, sessions: SessionsDep,
                 partner: PartnerDep) -> Timeline:
    """Every status change, deadline (started, paused, met, missed, ended), overdue flag
    (raised, escalated, cleared) and delivery attempt, oldest first: to its sender and its
    receiver, as the referral itself. Codes and instants only, never the content."""
    referral = visible_or_denied(session, sessions, partner, referral_id)
    bind_contextvars(correlation_id=referral.correlation_id, referral_id=referral.id)
    audit.record(session, actor=f"partner:{partner.id}", action="referral.timeline",
                 partner_id=partner.id, referral_id=referral.id,
                 correlation_id=referral.correlation_id,
                 detail={"role": str(role_of(partner, referral))})
    return referral_timeline(session=session, referral_id=referral.id)


def visible_or_denied(session: Session, sessions: sessionmaker[Session], partner: Partner,
                      referral_id: str, *, for_update: bool = False) -> Referral:
    """The referral if `partner` sent or received it; otherwise 404, and the attempt audited."""
    try:
        return visible_referral(session=session, partner=partner, referral_id=referral_id,
                                for_update=for_update)
    except NotFound:
        session.rollback()
        # Only a well-formed id goes on the record: the path is the caller's free text.
        well_formed = is_referral_id(referral_id)
        audit.record_apart(sessions, actor=f"partner:{partner.id}", action="referral.deny",
                           partner_id=partner.id,
                           referral_id=referral_id if well_formed else None,
                           detail={"why": "not sender or receiver, or no such referral"
                                   if well_formed else "not a referral id"})
        raise


@router.post("/{referral_id}/events", response_model=ReferralOut,
             summary="Change a referral's status", operation_id="post_event",
             responses={200: {"description": "The event repeats the current state: nothing "
                              "changed"}, 201: CHANGED,
                        **problems(409, 422, s409="The lifecycle does not allow this change "
                                   "from the current state, or not by the caller.")})
def post_event(
    referral_id: ReferralId, response: Response, session: SessionDep, sessions: SessionsDep,
    partner: PartnerDep, contracts: ContractsDep, document: StatusEventBody,
) -> ReferralOut:
    """Post a status event; it is checked against the canonical lifecycle.

    201 when the state changed, 200 when the event repeats the current state.
    """
    referral = visible_or_denied(session, sessions, partner, referral_id, for_update=True)
    bind_contextvars(correlation_id=referral.correlation_id, referral_id=referral.id)
    event = record_status_event(session=session, contracts=contracts, referral=referral,
                                actor=role_of(partner, referral), actor_partner=partner,
                                document=document)
    session.commit()
    response.status_code = 201 if event else 200
    response.headers[CORRELATION_HEADER] = referral.correlation_id
    return ReferralOut.of(referral)


@router.post("/{referral_id}/consent-withdrawal", response_model=ReferralOut,
             summary="Record that the person withdrew consent",
             operation_id="post_consent_withdrawal",
             responses=problems(403, 422, s403="Only the sender records a withdrawal."))
def post_consent_withdrawal(
    referral_id: ReferralId, session: SessionDep, sessions: SessionsDep, partner: PartnerDep,
    contracts: ContractsDep, document: WithdrawalBody,
) -> ReferralOut:
    """The sender records that the person withdrew consent.

    Pending deliveries stop (nothing more is sent to the receiver), a referral still open
    is withdrawn and the receiver is told in its own vocabulary, and the withdrawal is
    audited. Repeating it changes nothing.
    """
    withdrawn_on = _withdrawn_date(document)
    referral = visible_or_denied(session, sessions, partner, referral_id, for_update=True)
    bind_contextvars(correlation_id=referral.correlation_id, referral_id=referral.id)
    withdraw_consent(session=session, contracts=contracts, referral=referral, partner=partner,
                     withdrawn_on=withdrawn_on)
    session.commit()
    return ReferralOut.of(referral)


def _withdrawn_date(document: Any) -> date:
    value = document.get("withdrawn_date") if isinstance(document, dict) else None
    try:
        withdrawn_on = (date.fromisoformat(value) if isinstance(value, str)
                        and _DATE.fullmatch(value) else None)
    except ValueError:
        withdrawn_on = None
    if withdrawn_on is None:
        raise ValidationProblem("withdrawn_date is required, as YYYY-MM-DD.", [
            FieldError("/withdrawn_date", "format", "a date, YYYY-MM-DD")])
    if withdrawn_on > latest_today():
        raise ValidationProblem("Consent cannot be withdrawn in the future.", [
            FieldError("/withdrawn_date", "not-future", "today or earlier")])
    return withdrawn_on
