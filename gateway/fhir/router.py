"""Routes of /fhir: the FHIR R4 face of the gateway (docs/fhir.md).

Views are thin, as elsewhere: a referral posted as a transaction Bundle goes through
`submit_referral` (contract, consent gate, agreement, need-to-know), a Task update through
`record_status_event` (the lifecycle), and every read goes through `visible_referral` and
is audited like a read of /v1/referrals. Answers are `application/fhir+json`; every
refusal is an OperationOutcome (`gateway.fhir.outcome`), also for paths under /fhir that
do not exist.

The routes are left out of the OpenAPI document: FHIR clients read the CapabilityStatement
at /fhir/metadata, which a test holds to these routes.
"""

import traceback
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.resource import Resource
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException
from structlog.contextvars import bind_contextvars

from gateway.api.body import json_body
from gateway.api.deps import (
    AgreementsDep,
    ContractsDep,
    PartnerDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
)
from gateway.api.referrals import visible_or_denied
from gateway.casework import list_referrals, role_of
from gateway.errors import (
    CaseBridgeError,
    ConsentProblem,
    FieldError,
    MalformedRequest,
    NotFound,
    UnsupportedMediaType,
)
from gateway.fhir import capability, changes, resources, search, subscription
from gateway.fhir.outcome import informational, outcome_of
from gateway.fhir.patch import apply as apply_patch
from gateway.json_pointer import pointer
from gateway.logs import CORRELATION_HEADER
from gateway.mapping.translator import MappingTranslator
from gateway.protection import audit
from gateway.protection.disclosures import refusal_facts
from gateway.store.models import Partner, Referral

log = structlog.get_logger()
FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
FORMATS = ("json", FHIR_JSON, "application/json")
JsonBody = Annotated[Any, Depends(json_body)]


class FhirRoute(APIRoute):
    """A route whose every refusal, of the view or of FastAPI, is an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except CaseBridgeError as error:  # its headers, if any: Retry-After on a 429
                return refused(request, error, getattr(error, "headers", None))
            except RequestValidationError as error:
                return refused(request, _parameter_problem(error))
            except StarletteHTTPException as error:
                return refused(request, _http_problem(request, error), error.headers)
            except Exception as error:  # the FHIR face's own 500, logged like the API's
                frames = [f"{f.filename}:{f.lineno}"
                          for f in traceback.extract_tb(error.__traceback__)]
                log.error("request_failed", error_type=type(error).__name__,
                          frames=frames[-5:])
                return refused(request, CaseBridgeError(
                    detail="The gateway failed to handle this request; it is logged under "
                           "the correlation id in the X-Correlation-ID header."))

        return handle


router = APIRouter(prefix="/fhir", route_class=FhirRoute, include_in_schema=False,
                   tags=["fhir"])


def install(app: FastAPI) -> None:
    """Mount /fhir, and answer paths under it that match no route with an OperationOutcome."""
    app.include_router(router)
    answer_others: Callable[[Request, Exception], Awaitable[Response]] = \
        app.exception_handlers[StarletteHTTPException]  # type: ignore[assignment]

    async def http_error(request: Request, error: Exception) -> Response:
        if request.url.path == "/fhir" or request.url.path.startswith("/fhir/"):
            assert isinstance(error, StarletteHTTPException)
            return refused(request, _http_problem(request, error), error.headers)
        return await answer_others(request, error)

    app.add_exception_handler(StarletteHTTPException, http_error)


def refused(request: Request, error: CaseBridgeError,
            headers: Mapping[str, str] | None = None) -> Response:
    """The OperationOutcome answer to `error`."""
    log.info("request_refused", status=error.status, problem=error.slug)
    root = getattr(request.state, "fhir_root", None)
    return respond(outcome_of(error, root=root), status=error.status, headers=headers)


def _parameter_problem(error: RequestValidationError) -> MalformedRequest:
    errors = []
    for item in error.errors():
        _, *path = item["loc"]
        errors.append(FieldError(pointer(path), item["type"], item["msg"]))
    return MalformedRequest("A parameter is not valid.", slug="invalid-parameter",
                            errors=errors)


def _http_problem(request: Request, error: StarletteHTTPException) -> CaseBridgeError:
    slug = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
    return CaseBridgeError(detail=f"{request.method} {request.url.path}: {error.detail}",
                           status=error.status_code, slug=slug, title=str(error.detail))


def respond(resource: Resource, *, status: int = 200,
            headers: Mapping[str, str] | None = None) -> Response:
    return Response(resource.model_dump_json(exclude_none=True), status_code=status,
                    media_type=FHIR_JSON, headers=headers)


async def get_translator(request: Request) -> MappingTranslator:
    """The mappings of the FHIR face, loaded on first use and refreshed like a worker's."""
    translator: MappingTranslator | None = getattr(request.app.state, "fhir_translator", None)
    if translator is None:
        translator = MappingTranslator(request.app.state.settings.mappings_dir,
                                       contracts=request.app.state.contracts,
                                       system=resources.SYSTEM)
        request.app.state.fhir_translator = translator
    return translator


TranslatorDep = Annotated[MappingTranslator, Depends(get_translator)]


def format_accepted(format_: Annotated[str | None, Query(alias="_format")] = None) -> None:
    """JSON only: `_format` may ask for nothing else."""
    if format_ is not None and format_ not in FORMATS:
        raise CaseBridgeError(detail="Only JSON is served: _format=json.", status=406,
                              slug="not-acceptable", title="Format not served")


Formatted = Depends(format_accepted)


def base_url(request: Request) -> str:
    """Where this FHIR face is reached: the setting, else the address of this request."""
    configured: str | None = request.app.state.settings.fhir_base_url
    return (configured or f"{str(request.base_url).rstrip('/')}/fhir").rstrip("/")


def _audit_read(session: Session, partner: Partner, referral: Referral, *kinds: str,
                **detail: Any) -> None:
    bind_contextvars(correlation_id=referral.correlation_id, referral_id=referral.id)
    audit.record(session, actor=f"partner:{partner.id}", action="referral.read",
                 partner_id=partner.id, referral_id=referral.id,
                 correlation_id=referral.correlation_id,
                 detail={"role": str(role_of(partner, referral)), "via": "fhir",
                         "resources": list(kinds), **detail})


# --- the CapabilityStatement ----------------------------------------------------------------

@router.get("/metadata", dependencies=[Formatted])
def metadata(request: Request) -> Response:
    """What this FHIR face offers; no credentials needed to read it."""
    return respond(capability.statement(base_url(request),
                                        software_version=request.app.version))


# --- posting a referral ---------------------------------------------------------------------

@router.post("", dependencies=[Formatted])
def transaction(request: Request, session: SessionDep, sessions: SessionsDep,
                partner: PartnerDep, contracts: ContractsDep, agreements: AgreementsDep,
                translator: TranslatorDep, body: JsonBody) -> Response:
    """A transaction Bundle of one referral: Task, ServiceRequest, Patient, Consent."""
    posting = _submit(request, session, sessions, partner, contracts, agreements, translator,
                      body)
    referral = posting.referral
    entries = []
    for _, part in sorted((index, part) for part, index in posting.posted.entries.items()):
        kind = resources.type_of(part)
        response: dict[str, Any] = {
            "status": "200 OK" if posting.replayed else "201 Created",
            "location": f"{kind}/{referral.id}" + ("/_history/1" if kind == "Task" else ""),
            "lastModified": resources.instant(referral.created_at)}
        if kind == "Task":
            response["etag"] = 'W/"1"'
            if posting.withheld:
                response["outcome"] = informational(
                    "Stored without these elements (need to know).", posting.withheld,
                    root="Bundle")
        entries.append({"response": response})
    bundle = resources.emit(Bundle, {"resourceType": "Bundle", "type": "transaction-response",
                                     "entry": entries})
    return respond(bundle, headers={CORRELATION_HEADER: referral.correlation_id})


@router.post("/Task", dependencies=[Formatted])
def create_task(request: Request, session: SessionDep, sessions: SessionsDep,
                partner: PartnerDep, contracts: ContractsDep, agreements: AgreementsDep,
                translator: TranslatorDep, body: JsonBody) -> Response:
    """The same transaction Bundle posted to [base]/Task: answered with the Task made."""
    posting = _submit(request, session, sessions, partner, contracts, agreements, translator,
                      body)
    referral = posting.referral
    task = resources.task(referral, translator, due=resources.due_of(session, referral))
    return respond(task, status=200 if posting.replayed else 201, headers={
        "Location": f"{base_url(request)}/Task/{referral.id}/_history/1", "ETag": 'W/"1"',
        CORRELATION_HEADER: referral.correlation_id})


def _submit(request: Request, session: Session, sessions: sessionmaker[Session],
            partner: Partner, contracts: ContractsDep, agreements: AgreementsDep,
            translator: MappingTranslator, body: Any) -> changes.Posting:
    """Submit the Bundle; a consent refusal is put on record apart, as for /v1."""
    request.state.fhir_root = "Bundle"
    try:
        posting = changes.submit_bundle(
            session=session, contracts=contracts, agreements=agreements,
            translator=translator, sender=partner, body=body,
            correlation_id=request.state.correlation_id)
    except ConsentProblem as refusal:
        session.rollback()
        audit.record_apart(sessions, actor=f"partner:{partner.id}", action="referral.refuse",
                           partner_id=partner.id, correlation_id=request.state.correlation_id,
                           detail={**refusal_facts(refusal), "via": "fhir"})
        raise
    session.commit()  # a 2xx means it is stored
    bind_contextvars(correlation_id=posting.referral.correlation_id,
                     referral_id=posting.referral.id)
    return posting


# --- reading --------------------------------------------------------------------------------

@router.get("/Task/{task_id}", dependencies=[Formatted])
def read_task(task_id: str, session: SessionDep, sessions: SessionsDep, partner: PartnerDep,
              translator: TranslatorDep) -> Response:
    """A referral as a Task, at its latest version."""
    referral = visible_or_denied(session, sessions, partner, task_id)
    _audit_read(session, partner, referral, "Task")
    task = resources.task(referral, translator, due=resources.due_of(session, referral))
    return respond(task, headers={"ETag": changes.version_tag(referral),
                                  "Last-Modified": format_datetime(
                                      referral.events[-1].recorded_at, usegmt=True)})


@router.get("/Task/{task_id}/_history", dependencies=[Formatted])
def task_history(request: Request, task_id: str, session: SessionDep, sessions: SessionsDep,
                 partner: PartnerDep, translator: TranslatorDep) -> Response:
    """Every version of a Task, one for each status event, newest first."""
    referral = visible_or_denied(session, sessions, partner, task_id)
    _audit_read(session, partner, referral, "Task", history=True)
    base, due = base_url(request), resources.due_of(session, referral)
    entries = []
    for version in range(len(referral.events), 0, -1):
        task = resources.task(referral, translator, version=version, due=due)
        entries.append({
            "fullUrl": f"{base}/Task/{referral.id}", "resource": task,
            "request": {"method": "POST" if version == 1 else "PUT",
                        "url": "Task" if version == 1 else f"Task/{referral.id}"},
            "response": {"status": "201" if version == 1 else "200",
                         "etag": f'W/"{version}"',
                         "lastModified": resources.instant(
                             referral.events[version - 1].recorded_at)}})
    return respond(resources.emit(Bundle, {"resourceType": "Bundle", "type": "history",
                                           "total": len(entries), "entry": entries}))


@router.get("/Task/{task_id}/_history/{version_id}", dependencies=[Formatted])
def read_task_version(task_id: str, version_id: str, session: SessionDep,
                      sessions: SessionsDep, partner: PartnerDep,
                      translator: TranslatorDep) -> Response:
    """One version of a Task: the referral after that status event."""
    referral = visible_or_denied(session, sessions, partner, task_id)
    if not version_id.isdigit() or not 1 <= int(version_id) <= len(referral.events):
        raise NotFound("version of this Task")
    _audit_read(session, partner, referral, "Task", version=int(version_id))
    task = resources.task(referral, translator, version=int(version_id),
                          due=resources.due_of(session, referral))
    return respond(task, headers={"ETag": f'W/"{version_id}"'})


@router.get("/ServiceRequest/{request_id}", dependencies=[Formatted])
def read_service_request(request_id: str, session: SessionDep, sessions: SessionsDep,
                         partner: PartnerDep, translator: TranslatorDep) -> Response:
    referral = visible_or_denied(session, sessions, partner, request_id)
    _audit_read(session, partner, referral, "ServiceRequest")
    return respond(resources.service_request(referral, translator))


@router.get("/Patient/{patient_id}", dependencies=[Formatted])
def read_patient(patient_id: str, session: SessionDep, sessions: SessionsDep,
                 partner: PartnerDep, translator: TranslatorDep) -> Response:
    referral = visible_or_denied(session, sessions, partner, patient_id)
    _audit_read(session, partner, referral, "Patient")
    return respond(resources.patient(referral, translator))


@router.get("/Consent/{consent_id}", dependencies=[Formatted])
def read_consent(consent_id: str, session: SessionDep, sessions: SessionsDep,
                 partner: PartnerDep, translator: TranslatorDep) -> Response:
    referral = visible_or_denied(session, sessions, partner, consent_id)
    _audit_read(session, partner, referral, "Consent")
    return respond(resources.consent(referral, translator))


@router.get("/Organization/{organization_id}", dependencies=[Formatted])
def read_organization(organization_id: str, session: SessionDep, partner: PartnerDep
                      ) -> Response:
    """A partner of the gateway, as the requester or owner of a Task names it."""
    found = session.get(Partner, organization_id)
    if found is None:
        raise NotFound("Organization")
    return respond(resources.organization(found))


# --- searching ------------------------------------------------------------------------------

@router.get("/Task", dependencies=[Formatted])
def search_tasks(
    request: Request, session: SessionDep, partner: PartnerDep, settings: SettingsDep,
    translator: TranslatorDep,
    owner: Annotated[str | None, Query(description="Organization/<partner id>")] = None,
    requester: Annotated[str | None, Query(description="Organization/<partner id>")] = None,
    status: Annotated[str | None, Query(description="Task status codes, comma-separated")
                      ] = None,
    id_: Annotated[str | None, Query(alias="_id")] = None,
    last_updated: Annotated[list[str] | None, Query(
        alias="_lastUpdated", description="gt|ge|lt|le followed by an instant")] = None,
    include: Annotated[list[str] | None, Query(alias="_include")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=300)] = None,
) -> Response:
    """The Tasks of the referrals the partner sent or received, oldest change first."""
    controls = {"_include", "_count", "_cursor", "_format"}
    query = search.parse([(k, v) for k, v in request.query_params.multi_items()
                          if k not in controls],
                         allowed=search.PARAMETERS)
    wanted = set(include or [])
    unknown = wanted - {"Task:focus", "Task:patient"}
    if unknown:
        raise MalformedRequest("An _include is not offered.", slug="invalid-parameter",
                               errors=[FieldError("/_include", "include",
                                                  "Task:focus or Task:patient")])
    page = list_referrals(
        session=session, partner=partner, cursor=cursor,
        limit=min(count, settings.page_size_max),
        where=query.conditions(lambda statuses: resources.states_shown_as(statuses,
                                                                          translator)))
    audit.record(session, actor=f"partner:{partner.id}", action="referral.list",
                 partner_id=partner.id, detail={"count": len(page.items), "via": "fhir"})
    base = base_url(request)
    entries: list[dict[str, Any]] = []
    for referral in page.items:
        kinds = ["Task"]
        entries.append({"fullUrl": f"{base}/Task/{referral.id}",
                        "resource": resources.task(referral, translator,
                                                   due=resources.due_of(session, referral)),
                        "search": {"mode": "match"}})
        shown = referral.restricted_at is None and referral.erased_at is None
        for name, kind, render in (("Task:focus", "ServiceRequest", resources.service_request),
                                   ("Task:patient", "Patient", resources.patient)):
            if name in wanted and shown:
                kinds.append(kind)
                entries.append({"fullUrl": f"{base}/{kind}/{referral.id}",
                                "resource": render(referral, translator),
                                "search": {"mode": "include"}})
        _audit_read(session, partner, referral, *kinds, search=True)
    links = [{"relation": "self", "url": str(request.url)}]
    if page.next_cursor:
        following = [(k, v) for k, v in request.query_params.multi_items() if k != "_cursor"]
        links.append({"relation": "next", "url": f"{base}/Task?" + urlencode(
            [*following, ("_cursor", page.next_cursor)])})
    return respond(resources.emit(Bundle, {"resourceType": "Bundle", "type": "searchset",
                                           "link": links, "entry": entries}))


# --- changing a Task ------------------------------------------------------------------------

@router.put("/Task/{task_id}", dependencies=[Formatted])
def update_task(request: Request, task_id: str, session: SessionDep, sessions: SessionsDep,
                partner: PartnerDep, contracts: ContractsDep, translator: TranslatorDep,
                body: JsonBody, if_match: Annotated[str | None, Header()] = None) -> Response:
    """The Task sent whole, its status changed: the owner moves the referral on, the
    requester cancels it."""
    referral = visible_or_denied(session, sessions, partner, task_id, for_update=True)
    request.state.fhir_root = "Task"
    changes.check_version(referral, if_match)
    current = changes.current_task(session, translator, referral)
    return _changed(session, partner, contracts, translator, referral, body, current)


@router.patch("/Task/{task_id}", dependencies=[Formatted])
def patch_task(request: Request, task_id: str, session: SessionDep, sessions: SessionsDep,
               partner: PartnerDep, contracts: ContractsDep, translator: TranslatorDep,
               body: JsonBody, if_match: Annotated[str | None, Header()] = None) -> Response:
    """A JSON Patch of the Task (`application/json-patch+json`), read as an update."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != JSON_PATCH:
        raise UnsupportedMediaType(media, JSON_PATCH)
    referral = visible_or_denied(session, sessions, partner, task_id, for_update=True)
    changes.check_version(referral, if_match)
    current = changes.current_task(session, translator, referral)
    patched = apply_patch(current, body)  # its errors point into the patch document
    request.state.fhir_root = "Task"
    return _changed(session, partner, contracts, translator, referral, patched, current)


def _changed(session: Session, partner: Partner, contracts: ContractsDep,
             translator: MappingTranslator, referral: Referral, body: Any,
             current: dict[str, Any]) -> Response:
    bind_contextvars(correlation_id=referral.correlation_id, referral_id=referral.id)
    changes.change_task(session=session, contracts=contracts, translator=translator,
                        partner=partner, referral=referral, body=body, current=current)
    session.commit()
    task = resources.task(referral, translator, due=resources.due_of(session, referral))
    return respond(task, headers={"ETag": changes.version_tag(referral),
                                  CORRELATION_HEADER: referral.correlation_id})


# --- subscriptions --------------------------------------------------------------------------

@router.post("/Subscription", dependencies=[Formatted])
def create_subscription(request: Request, session: SessionDep, partner: PartnerDep,
                        body: JsonBody) -> Response:
    """A rest-hook Subscription to changes of the Tasks the partner sent or owns."""
    request.state.fhir_root = "Subscription"
    made = subscription.subscribe(session=session, partner=partner, body=body)
    session.commit()
    return respond(subscription.resource_of(made), status=201,
                   headers={"Location": f"{base_url(request)}/Subscription/{made.id}"})


@router.get("/Subscription", dependencies=[Formatted])
def search_subscriptions(request: Request, session: SessionDep, partner: PartnerDep
                         ) -> Response:
    """The partner's own subscriptions."""
    base = base_url(request)
    return respond(resources.emit(Bundle, {
        "resourceType": "Bundle", "type": "searchset",
        "link": [{"relation": "self", "url": str(request.url)}],
        "entry": [{"fullUrl": f"{base}/Subscription/{s.id}",
                   "resource": subscription.resource_of(s), "search": {"mode": "match"}}
                  for s in subscription.of_partner(session=session, partner=partner)]}))


@router.get("/Subscription/{subscription_id}", dependencies=[Formatted])
def read_subscription(subscription_id: str, session: SessionDep, partner: PartnerDep
                      ) -> Response:
    """One of the partner's subscriptions: its status says whether notifications get
    through (error, with the last failure, while they do not)."""
    return respond(subscription.resource_of(subscription.owned(
        session=session, partner=partner, subscription_id=subscription_id)))


@router.delete("/Subscription/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: str, session: SessionDep, partner: PartnerDep
                        ) -> Response:
    """No more notifications for this subscription."""
    subscription.unsubscribe(session=session, partner=partner,
                             subscription_id=subscription_id)
    session.commit()
    return Response(status_code=204)
