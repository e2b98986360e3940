"""Typed dependencies: the request's database session, the calling partner, the contracts."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker

from gateway.contracts import Contracts
from gateway.partners import authenticate
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.models import Partner


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the view returns, rolled back on error."""
    with request.app.state.sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# async: FastAPI would run a plain function on a worker thread for nothing.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_contracts(request: Request) -> Contracts:
    contracts: Contracts = request.app.state.contracts
    return contracts


async def get_sessions(request: Request) -> sessionmaker[Session]:
    """The session factory, for what must be written apart from the request's transaction."""
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


async def get_agreements(request: Request) -> AgreementRegistry:
    agreements: AgreementRegistry = request.app.state.agreements
    return agreements


# scope="function": the session commits before the answer is sent (FastAPI's default runs
# the teardown after it), so a 2xx means the change and its audit entry are stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
AgreementsDep = Annotated[AgreementRegistry, Depends(get_agreements)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ContractsDep = Annotated[Contracts, Depends(get_contracts)]


def get_partner(
    session: SessionDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Partner:
    """The partner system calling, from `Authorization: Bearer <API key or access token>`
    or `X-API-Key`."""
    key = x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    return authenticate(session=session, api_key=key)


PartnerDep = Annotated[Partner, Depends(get_partner)]
