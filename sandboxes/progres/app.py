"""The proGres v4 sandbox over HTTP: a Dataverse-style Web API at `/api/data/v9.2/`.

    POST /oauth2/v2.0/token                    client-credentials token (also /<tenant>/…)
    GET  /api/data/v9.2/                       service document (the entity sets)
    GET  /api/data/v9.2/$metadata              CSDL of the tables
    GET  /api/data/v9.2/WhoAmI                 the caller's user, business unit, organisation
    GET  /api/data/v9.2/<set>                  query: $select $filter $orderby $top $count,
                                               Prefer: odata.maxpagesize=N → @odata.nextLink
    GET  /api/data/v9.2/<set>(<guid>)          one row; also (<alternate key>='…')
    POST /api/data/v9.2/<set>                  create → 204 + OData-EntityId
                                               (201 + row with Prefer: return=representation)
    PATCH /api/data/v9.2/<set>(<key>)          update (If-Match: * or an etag); no If-Match
                                               and no row: upsert
    DELETE /api/data/v9.2/<set>(<guid>)
    GET/DELETE/PUT /_sandbox/tokens            tokens issued; revoke all; change lifetime
    PUT /_sandbox/privileges                   tables the gateway's user may not read
    GET/PUT /_sandbox/faults                   fault injection (`sandboxes.faults`)

and, beside it, the integration layer's messages (`dtp`): `POST /dtp/<request type>` with
an `Ocp-Apim-Subscription-Key`, and pushes to a partner's inbox (`/_sandbox/dtp/…`).

Clients (client id → secret → the user it acts as): `casebridge` / `sandbox-secret` (the
gateway's application user; configurable), `progres-caseworker` / `caseworker-secret` and
`progres-reviewer` / `reviewer-secret` (proGres staff, for demos and tests that act as a
proGres user would).
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandboxes import faults as fault_injection
from sandboxes.faults import Faults
from sandboxes.progres import dtp, records
from sandboxes.progres.auth import Client, Principal, RateLimiter, TokenError, TokenIssuer
from sandboxes.progres.errors import (
    BAD_PAYLOAD,
    BAD_PROPERTY,
    NO_PRIVILEGE,
    RESOURCE_NOT_FOUND,
    UNEXPECTED,
    ODataError,
    error_body,
    fault_body,
    not_found,
)
from sandboxes.progres.odata import MAX_PAGE_SIZE, parse_select
from sandboxes.progres.records import Annotations
from sandboxes.progres.schema import BY_LOGICAL, BY_SET, ENTITIES, Entity, Kind
from sandboxes.progres.seed import (
    CASEWORKER_USER,
    INTEGRATION_USER,
    ORGANIZATION_ID,
    REVIEWER_USER,
    ROOT_UNIT,
    seed_demo,
    seed_reference,
)
from sandboxes.progres.store import Store

API = "/api/data/v9.2"
ODATA_JSON = "application/json; odata.metadata=minimal"
DEFAULT_CLIENT_ID = "casebridge"
DEFAULT_CLIENT_SECRET = "sandbox-secret"
STAFF_CLIENTS = (("progres-caseworker", "caseworker-secret", CASEWORKER_USER),
                 ("progres-reviewer", "reviewer-secret", REVIEWER_USER))

_SEGMENT = re.compile(r"^(?P<set>[A-Za-z_]+)(?:\((?P<key>.+)\))?$")
_PREFERENCE = re.compile(r'\s*(?P<name>[A-Za-z][\w.-]*)\s*(?:=\s*(?P<value>"[^"]*"|[^,]*))?\s*,?')


@dataclass
class Sandbox:
    store: Store
    issuer: TokenIssuer
    limiter: RateLimiter
    office: str
    # Tables the gateway's application user may not read: what a proGres administrator
    # does by taking a table out of the interoperability security role.
    read_denied: set[str] = field(default_factory=set)


def create_app(*, database: Path, seed: bool = True, faults: Faults | None = None,
               client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
               token_lifetime: float = 3599, rate_limit: int = 6000, rate_window: float = 300,
               office: str = "DAD",
               subscription_key: str = dtp.DEFAULT_SUBSCRIPTION_KEY) -> FastAPI:
    """The proGres sandbox app over the SQLite file `database` (created if missing)."""
    store = Store(database)
    _seed(store, demo=seed, office=office)
    clients = {client_id: Client(client_id, client_secret, INTEGRATION_USER)}
    clients.update({cid: Client(cid, secret, user) for cid, secret, user in STAFF_CLIENTS})
    sandbox = Sandbox(store=store, issuer=TokenIssuer(clients, lifetime=token_lifetime),
                      limiter=RateLimiter(limit=rate_limit, window=rate_window), office=office)
    app = FastAPI(title="proGres v4 sandbox (Dataverse Web API)", openapi_url=None)
    app.state.sandbox = sandbox
    _install_error_handlers(app)
    for router in (_token, _api, _sandbox):
        app.include_router(router)
    dtp.install(app, store=store, office=office, subscription_key=subscription_key,
                limiter=sandbox.limiter)
    fault_injection.install(app, error_body=fault_body, faults=faults)
    return app


def _seed(store: Store, *, demo: bool, office: str) -> None:
    seed_reference(store, office=office)
    if demo:
        seed_demo(store, office=office)


def odata(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(content=json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type=ODATA_JSON, headers={"OData-Version": "4.0", **(headers or {})})


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ODataError)
    async def odata_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ODataError)
        return odata(exc.body(), exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            segment = request.url.path.rsplit("/", 1)[-1]
            return odata(error_body(RESOURCE_NOT_FOUND,
                                    f"Resource not found for the segment '{segment}'."), 404)
        return odata(error_body(BAD_PROPERTY, str(exc.detail)), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if request.url.path.startswith("/_sandbox"):
            return await request_validation_exception_handler(request, exc)
        return odata(error_body(BAD_PAYLOAD, "The request could not be read."), 400)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        return odata(error_body(UNEXPECTED, "An unexpected error occurred."), 500)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _sandbox_of(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(_sandbox_of)]


def _principal(request: Request, sandbox: SandboxDep) -> Principal:
    base = str(request.base_url).rstrip("/")
    challenge = (f"Bearer authorization_uri={base}/oauth2/authorize, "
                 f"resource_id={base}/")
    caller = sandbox.issuer.verify(request.headers.get("authorization"), challenge=challenge)
    sandbox.limiter.check(caller.client_id)
    return caller


Caller = Annotated[Principal, Depends(_principal)]


_token = APIRouter(tags=["Microsoft Entra ID (fake)"])


def _answer(sandbox: Sandbox, body: bytes) -> Response:
    try:
        token = sandbox.issuer.issue(dict(parse_qsl(body.decode())))
    except TokenError as e:
        return JSONResponse({"error": e.error, "error_description": e.description},
                            status_code=e.status)
    return JSONResponse(token, headers={"Cache-Control": "no-store"})


@_token.post("/oauth2/v2.0/token")
def token(sandbox: SandboxDep, body: RawBody) -> Response:
    return _answer(sandbox, body)


@_token.post("/{tenant}/oauth2/v2.0/token")
def tenant_token(tenant: str, sandbox: SandboxDep, body: RawBody) -> Response:
    return _answer(sandbox, body)


_api = APIRouter(prefix=API, tags=["Dataverse Web API"])


@_api.get("/")
def service_document(request: Request, _: Caller) -> Response:
    return odata({"@odata.context": f"{_root(request)}/$metadata",
                  "value": [{"name": e.set_name, "kind": "EntitySet", "url": e.set_name}
                            for e in ENTITIES]})


@_api.get("/{segment}")
def get(segment: str, request: Request, caller: Caller, sandbox: SandboxDep) -> Response:
    if segment == "$metadata":
        return Response(metadata_xml(), media_type="application/xml",
                        headers={"OData-Version": "4.0"})
    if segment in ("WhoAmI", "WhoAmI()"):
        return odata(_who_am_i(request, caller))
    entity, key = _resolve(segment)
    if entity.set_name in sandbox.read_denied and caller.user_id == INTEGRATION_USER:
        raise ODataError(403, NO_PRIVILEGE, f"Principal user (Id={caller.user_id}, "
                                            f"type=8) is missing prvRead{entity.logical} "
                                            f"privilege")
    prefs = preferences(request.headers.get("prefer"))
    annotations = _annotations(prefs)
    params = dict(request.query_params)
    applied = []
    if "odata.include-annotations" in prefs:
        applied.append(f'odata.include-annotations={prefs["odata.include-annotations"]}')
    if key is not None:
        row = records.read_record(sandbox.store, entity, key, select_text=params.get("$select"),
                                  annotations=annotations)
        select = parse_select(params.get("$select"), entity)
        return odata({"@odata.context": _context(request, entity, select) + "/$entity",
                      **row}, headers=_applied(applied))
    page_size = _page_size(prefs)
    if page_size is not None:
        applied.append(f"odata.maxpagesize={page_size}")
    page = records.query_records(sandbox.store, entity, params,
                                 page_size=page_size or MAX_PAGE_SIZE,
                                 annotations=annotations)
    body: dict[str, Any] = {
        "@odata.context": _context(request, entity, parse_select(params.get("$select"),
                                                                 entity))}
    if page.count is not None:
        body["@odata.count"] = page.count
    body["value"] = page.rows
    if page.skiptoken is not None:
        body["@odata.nextLink"] = _next_link(request, entity, params, page.skiptoken)
    return odata(body, headers=_applied(applied))


@_api.post("/{segment}")
def create(segment: str, request: Request, caller: Caller, sandbox: SandboxDep,
           raw: RawBody) -> Response:
    entity, key = _resolve(segment)
    if key is not None:
        raise ODataError(405, BAD_PROPERTY, "POST is not allowed on a single record.")
    row = records.create_record(sandbox.store, entity, _json(raw), principal=caller,
                                office=sandbox.office)
    return _written(request, entity, row, status_created=201)


@_api.patch("/{segment}")
def patch(segment: str, request: Request, caller: Caller, sandbox: SandboxDep,
          raw: RawBody) -> Response:
    entity, key = _resolve(segment)
    if key is None:
        raise ODataError(405, BAD_PROPERTY, "PATCH needs a single record: <set>(<key>).")
    body = _json(raw)
    if_match = request.headers.get("if-match")
    with sandbox.store.reading() as conn:
        guid = records.find_key(sandbox.store, conn, entity, key)
    if guid is None:  # an alternate key that names no row yet: upsert creates it
        if if_match is not None:
            raise not_found(entity.logical, key)
        name, _, value = key.partition("=")
        if isinstance(body, dict):
            body = {**body, name: value.strip("'").replace("''", "'")}
        row = records.create_record(sandbox.store, entity, body, principal=caller,
                                    office=sandbox.office)
        return _written(request, entity, row, status_created=201, status_plain=204)
    row, _created = records.update_record(sandbox.store, entity, guid, body, principal=caller,
                                          office=sandbox.office, if_match=if_match)
    return _written(request, entity, row, status_created=200)


@_api.delete("/{segment}")
def delete(segment: str, _: Caller, sandbox: SandboxDep) -> Response:
    entity, key = _resolve(segment)
    if key is None:
        raise ODataError(405, BAD_PROPERTY, "DELETE needs a single record: <set>(<guid>).")
    with sandbox.store.reading() as conn:
        guid = records.find_key(sandbox.store, conn, entity, key)
    if guid is None:
        raise not_found(entity.logical, key)
    records.delete_record(sandbox.store, entity, guid)
    return Response(status_code=204, headers={"OData-Version": "4.0"})


def _written(request: Request, entity: Entity, row: dict[str, Any], *,
             status_created: int, status_plain: int = 204) -> Response:
    store = request.app.state.sandbox.store
    entity_id = f"{_root(request)}/{entity.set_name}({row[entity.key]})"
    headers = {"OData-EntityId": entity_id}
    prefs = preferences(request.headers.get("prefer"))
    if prefs.get("return") == "representation":
        select = parse_select(request.query_params.get("$select"), entity)
        shaped = records.shape_one(store, entity, row, annotations=_annotations(prefs))
        if select is not None:
            shaped = {k: v for k, v in shaped.items()
                      if k == "@odata.etag" or k.split("@")[0] in (*select, entity.key)}
        headers["Preference-Applied"] = "return=representation"
        return odata({"@odata.context": _context(request, entity, select) + "/$entity",
                      **shaped}, status_created, headers)
    return Response(status_code=status_plain, headers={"OData-Version": "4.0", **headers})


class Privileges(BaseModel):
    read_denied: list[str] = Field(default_factory=list,
                                   description="entity sets the gateway's user may not read")


class TokenSettings(BaseModel):
    lifetime: float = Field(gt=0, description="seconds a new token lives")


_sandbox = APIRouter(prefix="/_sandbox", tags=["sandbox"])


@_sandbox.get("/tokens")
def tokens(sandbox: SandboxDep) -> dict[str, Any]:
    return {"issued": sandbox.issuer.issued, "lifetime": sandbox.issuer.lifetime}


@_sandbox.delete("/tokens", status_code=204)
def revoke(sandbox: SandboxDep) -> None:
    sandbox.issuer.revoke_all()


@_sandbox.put("/tokens")
def set_lifetime(settings: TokenSettings, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.issuer.lifetime = settings.lifetime
    return {"issued": sandbox.issuer.issued, "lifetime": sandbox.issuer.lifetime}


@_sandbox.put("/privileges")
def set_privileges(privileges: Privileges, sandbox: SandboxDep) -> dict[str, Any]:
    sandbox.read_denied = set(privileges.read_denied)
    return {"read_denied": sorted(sandbox.read_denied)}


def _resolve(segment: str) -> tuple[Entity, str | None]:
    match = _SEGMENT.match(segment)
    entity = BY_SET.get(match["set"]) if match else None
    if match is None or entity is None:
        name = match["set"] if match else segment
        raise ODataError(404, RESOURCE_NOT_FOUND, f"Resource not found for the segment '{name}'.")
    return entity, match["key"]


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ODataError(400, BAD_PAYLOAD, "The request body is not valid JSON.") from None


def preferences(header: str | None) -> dict[str, str]:
    """`Prefer` header preferences by name (values keep their quotes)."""
    prefs: dict[str, str] = {}
    for match in _PREFERENCE.finditer(header or ""):
        if match["name"]:
            prefs[match["name"]] = (match["value"] or "").strip()
    return prefs


def _annotations(prefs: dict[str, str]) -> Annotations:
    wanted = prefs.get("odata.include-annotations", "").strip('"')
    return Annotations(frozenset(w.strip() for w in wanted.split(",") if w.strip()))


def _page_size(prefs: dict[str, str]) -> int | None:
    value = prefs.get("odata.maxpagesize", "")
    if not value.isdigit() or int(value) < 1:
        return None
    return min(int(value), MAX_PAGE_SIZE)


def _applied(applied: list[str]) -> dict[str, str]:
    return {"Preference-Applied": ",".join(applied)} if applied else {}


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + API


def _context(request: Request, entity: Entity, select: tuple[str, ...] | None) -> str:
    suffix = f"({','.join(select)})" if select else ""
    return f"{_root(request)}/$metadata#{entity.set_name}{suffix}"


def _next_link(request: Request, entity: Entity, params: dict[str, str], token: str) -> str:
    query = {k: v for k, v in params.items() if k != "$skiptoken"}
    query["$skiptoken"] = token
    encoded = urlencode(query, quote_via=quote, safe="$,'()")
    return f"{_root(request)}/{entity.set_name}?{encoded}"


def _who_am_i(request: Request, caller: Principal) -> dict[str, Any]:
    store = request.app.state.sandbox.store
    with store.reading() as conn:
        user = store.get(conn, BY_LOGICAL["systemuser"], caller.user_id)
    return {"@odata.context": f"{_root(request)}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": user["_businessunitid_value"] if user else ROOT_UNIT,
            "UserId": caller.user_id, "OrganizationId": ORGANIZATION_ID}


def metadata_xml() -> str:
    """A CSDL document of the tables, enough for a client to check names and types."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
             "<edmx:DataServices>",
             '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" '
             'xmlns="http://docs.oasis-open.org/odata/ns/edm">']
    for entity in ENTITIES:
        lines.append(f"<EntityType Name={quoteattr(entity.logical)}>"
                     f'<Key><PropertyRef Name="{entity.key}"/></Key>')
        for column in entity.all_columns().values():
            length = (f' MaxLength="{column.max_length}"'
                      if column.max_length and column.kind == Kind.STRING else "")
            lines.append(f'<Property Name="{column.name}" Type="{column.kind.edm}"{length}/>')
        for lookup in entity.all_lookups().values():
            lines.append(f'<Property Name="{lookup.attribute}" Type="Edm.Guid"/>')
            for navprop, target in lookup.navprops.items():
                lines.append(f'<NavigationProperty Name="{navprop}" Type="mscrm.{target}"/>')
        lines.append("</EntityType>")
    lines.append('<EntityContainer Name="System">')
    lines.extend(f'<EntitySet Name="{e.set_name}" EntityType="mscrm.{e.logical}"/>'
                 for e in ENTITIES)
    lines.extend(["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"])
    return "\n".join(lines)

