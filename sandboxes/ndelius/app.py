"""The nDelius sandbox app: one probation provider's view of a national Delius.

Run it with `casebridge sandbox ndelius --port 9003`, or build it in a test with
`create_app(database=path, provider="N03")`. Clients (HTTP Basic on the token endpoint):
`casebridge` / `casebridge-sandbox-secret` (the gateway), `delius-ui` /
`delius-ui-sandbox-secret` (probation staff; pass `username=<staff code>`), and the
read-only `probation-reporting` / `reporting-sandbox-secret`.

    POST /auth/oauth/token?grant_type=client_credentials[&username=]  token (HMPPS Auth style)
    GET  /reference-data                                               code sets, NSI workflow
    GET  /providers, /providers/{code}, /teams/{code}                  organisation
    GET  /person?page=&size=          POST /person                     people
    GET  /person/{crn}   /person/{crn}/contacts?nsiId=&externalReference=
    GET  /person/{crn}/managers
    PUT  /person/{crn}/manager                                         re-allocate in provider
    POST /nsi            GET /nsi?externalReference=&crn=&type=&status=&intendedProvider=
    GET  /nsi/{id}       PATCH /nsi/{id}        PUT /nsi/{id}/status   PUT /nsi/{id}/manager
    POST /nsi/{id}/actions                       PUT /nsi/{id}/actions/{actionId}
    POST /contact        GET /contact/{id}      PATCH /contact/{id}    contacts, alerts
    GET  /events?after=&size=&eventType=                               domain event feed
    GET  /health         GET|PUT /_sandbox/faults     POST /_sandbox/tokens/revoke
"""

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi import Path as PathParam

from sandboxes import faults as fault_injection
from sandboxes.faults import Faults
from sandboxes.ndelius import codes, contacts, events, nsis, organisation, people
from sandboxes.ndelius.auth import DEFAULT_CLIENTS, Principal, Reader, TokenIssuer, Writer
from sandboxes.ndelius.auth import router as auth_router
from sandboxes.ndelius.errors import ErrorStyle, error_body
from sandboxes.ndelius.errors import install as install_errors
from sandboxes.ndelius.organisation import Context
from sandboxes.ndelius.schemas import (
    CRN_PATTERN,
    ActionUpdate,
    Allocation,
    ContactPatch,
    ManagerRef,
    NewAction,
    NewContact,
    NewNsi,
    NewPerson,
    NsiPatch,
    StatusChange,
)
from sandboxes.ndelius.seed import NATIONAL_PROVIDERS, seed_organisation, seed_people
from sandboxes.ndelius.store import Store

CrnPath = Annotated[str, PathParam(pattern=CRN_PATTERN)]
Page = Annotated[int, Query(ge=0)]
Size = Annotated[int, Query(ge=1, le=100)]


def create_app(*, database: Path, seed: bool = True, faults: Faults | None = None,
               provider: str = "N07", provider_name: str | None = None,
               clients: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
               token_lifetime: int = 1200, feed: events.FeedShape | None = None,
               errors: ErrorStyle = "community-api") -> FastAPI:
    """The sandbox for `provider`, storing in `database` (SQLite); `feed` shapes the event
    feed (SNS-wrapped by default, see events.py), `errors` the error bodies (errors.py)."""
    store = Store(database)
    national = dict(NATIONAL_PROVIDERS)
    if provider not in national or provider_name:
        pdus = national.get(provider, ("", ("PDU A", "PDU B")))[1]
        national[provider] = (provider_name or f"Provider {provider}", pdus)
    with store.write() as session:
        seed_organisation(session, national)
        if seed:
            seed_people(session, provider)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.dispose()

    app = FastAPI(title=f"nDelius sandbox ({provider})", version="1.0", lifespan=lifespan)
    app.state.store = store
    app.state.provider = provider
    app.state.feed = feed or events.FeedShape()
    app.state.issuer = TokenIssuer(clients or DEFAULT_CLIENTS, token_lifetime)
    install_errors(app, errors)
    fault_injection.install(app, error_body=lambda status, message: error_body(
                                status, message, style=errors),
                            faults=faults)
    app.include_router(auth_router)
    app.include_router(routes)
    return app


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


Db = Annotated[Store, Depends(_store)]


@contextmanager
def change(request: Request, who: Principal) -> Iterator[Context]:
    """One write to the sandbox's store on behalf of the caller, committed on leaving."""
    store: Store = request.app.state.store
    with store.write() as session:
        yield Context(session=session, user=who.user, client_id=who.client_id,
                      base_url=str(request.base_url), provider=request.app.state.provider)


routes = APIRouter()


@routes.get("/health", tags=["ops"])
def health() -> dict[str, str]:
    return {"status": "UP"}


@routes.get("/reference-data", tags=["organisation"])
def reference_data(_: Reader) -> dict[str, object]:
    return codes.reference_data()


# --- organisation ------------------------------------------------------------------------
@routes.get("/providers", tags=["organisation"])
def list_providers(_: Reader, store: Db, request: Request) -> list[dict[str, Any]]:
    with store.read() as session:
        return organisation.providers_json(session, home=request.app.state.provider)


@routes.get("/providers/{code}", tags=["organisation"])
def read_provider(code: str, _: Reader, store: Db) -> dict[str, Any]:
    with store.read() as session:
        return organisation.provider_json(session, code)


@routes.get("/teams/{code}", tags=["organisation"])
def read_team(code: str, _: Reader, store: Db) -> dict[str, Any]:
    with store.read() as session:
        return organisation.team_json(session, code)


# --- people ------------------------------------------------------------------------------
@routes.get("/person", tags=["people"])
def list_people(_: Reader, store: Db, page: Page = 0, size: Size = 20) -> dict[str, Any]:
    with store.read() as session:
        return people.people_page(session, page=page, size=size)


@routes.post("/person", tags=["people"], status_code=201)
def create_person(body: NewPerson, who: Writer, request: Request,
                  response: Response) -> dict[str, Any]:
    with change(request, who) as ctx:
        person = people.create_person(ctx, body)
        response.headers["Location"] = f"/person/{person.crn}"
        return people.person_json(ctx.session, person)


@routes.get("/person/{crn}", tags=["people"])
def read_person(crn: CrnPath, _: Reader, store: Db) -> dict[str, Any]:
    with store.read() as session:
        return people.person_json(session, people.find_person(session, crn))


@routes.get("/person/{crn}/managers", tags=["people"])
def manager_history(crn: CrnPath, _: Reader, store: Db) -> list[dict[str, Any]]:
    with store.read() as session:
        return people.manager_history_json(session, people.find_person(session, crn))


@routes.get("/person/{crn}/contacts", tags=["contacts"])
def person_contacts(
    crn: CrnPath, _: Reader, store: Db,
    nsi_id: Annotated[int | None, Query(alias="nsiId")] = None,
    external_reference: Annotated[str | None, Query(alias="externalReference")] = None,
) -> list[dict[str, Any]]:
    with store.read() as session:
        return contacts.contacts_json(session, crn, nsi_id=nsi_id,
                                      external_reference=external_reference)


@routes.put("/person/{crn}/manager", tags=["people"])
def allocate_person(crn: CrnPath, body: Allocation, who: Writer,
                    request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return people.person_json(ctx.session, people.allocate(ctx, crn, body))


# --- NSIs --------------------------------------------------------------------------------
@routes.post("/nsi", tags=["nsi"], status_code=201)
def create_nsi(body: NewNsi, who: Writer, request: Request,
               response: Response) -> dict[str, Any]:
    with change(request, who) as ctx:
        nsi = nsis.create_nsi(ctx, body)
        response.headers["Location"] = f"/nsi/{nsi.nsi_id}"
        return nsis.nsi_json(ctx.session, nsi)


@routes.get("/nsi", tags=["nsi"])
def search_nsis(
    _: Reader,
    store: Db,
    external_reference: Annotated[str | None, Query(alias="externalReference")] = None,
    crn: Annotated[str | None, Query(pattern=CRN_PATTERN)] = None,
    nsi_type: Annotated[str | None, Query(alias="type")] = None,
    status: str | None = None,
    intended_provider: Annotated[str | None, Query(alias="intendedProvider")] = None,
    page: Page = 0, size: Size = 20,
) -> dict[str, Any]:
    with store.read() as session:
        return nsis.search(session, external_reference=external_reference, crn=crn,
                           nsi_type=nsi_type, status=status,
                           intended_provider=intended_provider, page=page, size=size)


@routes.get("/nsi/{nsi_id}", tags=["nsi"])
def read_nsi(nsi_id: int, _: Reader, store: Db) -> dict[str, Any]:
    with store.read() as session:
        return nsis.nsi_json(session, nsis.find_nsi(session, nsi_id))


@routes.patch("/nsi/{nsi_id}", tags=["nsi"])
def patch_nsi(nsi_id: int, body: NsiPatch, who: Writer, request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return nsis.nsi_json(ctx.session, nsis.patch_nsi(ctx, nsi_id, body))


@routes.put("/nsi/{nsi_id}/status", tags=["nsi"])
def change_status(nsi_id: int, body: StatusChange, who: Writer,
                  request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return nsis.nsi_json(ctx.session, nsis.change_status(ctx, nsi_id, body))


@routes.put("/nsi/{nsi_id}/manager", tags=["nsi"])
def allocate_nsi(nsi_id: int, body: ManagerRef, who: Writer,
                 request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return nsis.nsi_json(ctx.session, nsis.allocate_nsi(ctx, nsi_id, body))


@routes.post("/nsi/{nsi_id}/actions", tags=["nsi"], status_code=201)
def add_action(nsi_id: int, body: NewAction, who: Writer,
               request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return nsis.nsi_json(ctx.session, nsis.add_action(ctx, nsi_id, body))


@routes.put("/nsi/{nsi_id}/actions/{action_id}", tags=["nsi"])
def update_action(nsi_id: int, action_id: int, body: ActionUpdate, who: Writer,
                  request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return nsis.nsi_json(ctx.session, nsis.update_action(ctx, nsi_id, action_id, body))


# --- contacts ----------------------------------------------------------------------------
@routes.post("/contact", tags=["contacts"], status_code=201)
def create_contact(body: NewContact, who: Writer, request: Request,
                   response: Response) -> dict[str, Any]:
    with change(request, who) as ctx:
        contact = contacts.create_contact(ctx, body)
        response.headers["Location"] = f"/contact/{contact.contact_id}"
        return contacts.contact_json(ctx.session, contact)


@routes.get("/contact/{contact_id}", tags=["contacts"])
def read_contact(contact_id: int, _: Reader, store: Db) -> dict[str, Any]:
    with store.read() as session:
        return contacts.contact_json(session, contacts.find_contact(session, contact_id))


@routes.patch("/contact/{contact_id}", tags=["contacts"])
def patch_contact(contact_id: int, body: ContactPatch, who: Writer,
                  request: Request) -> dict[str, Any]:
    with change(request, who) as ctx:
        return contacts.contact_json(ctx.session,
                                     contacts.patch_contact(ctx, contact_id, body))


# --- events ------------------------------------------------------------------------------
@routes.get("/events", tags=["events"])
def event_feed(_: Reader, store: Db, request: Request, after: Annotated[int, Query(ge=0)] = 0,
               size: Annotated[int, Query(ge=1, le=500)] = 100,
               event_type: Annotated[list[str] | None, Query(alias="eventType")] = None,
               ) -> dict[str, Any]:
    with store.read() as session:
        return events.feed(session, after=after, size=size, event_types=event_type or [],
                           shape=request.app.state.feed)

