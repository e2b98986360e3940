"""Typed dependencies: the request's database session, the calling partner, the contracts."""

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from gateway.api.openapi import declare
from gateway.api.ratelimit import RateLimited, RateLimiter
from gateway.contracts import Contracts
from gateway.directory.registry import DirectoryRegistry
from gateway.errors import NotAuthenticated
from gateway.partners import authenticate
from gateway.protection.agreements import AgreementRegistry
from gateway.settings import Settings
from gateway.store.group_commit import once_per_group
from gateway.store.models import Partner

log = structlog.get_logger()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request: committed when the view returns, rolled back on error.

    async: making a session touches no database, and a view that committed itself leaves
    nothing to end but the object, so neither takes a turn on a worker thread (each turn
    costs about as much CPU as a small query); a transaction still open is ended on one,
    shielded from cancellation and with its own limit, as FastAPI ends a plain one.
    """
    session: Session = request.app.state.sessions()
    try:
        yield session
    except BaseException:
        await _end_in_thread(session, commit=False)
        raise
    if session.in_transaction():
        await _end_in_thread(session, commit=True)
    else:
        session.close()


async def _end_in_thread(session: Session, *, commit: bool) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(_end, session, commit, limiter=anyio.CapacityLimiter(1))


def _end(session: Session, commit: bool) -> None:
    with session:
        if not commit:
            session.rollback()
            return
        try:
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


async def get_directory(request: Request) -> DirectoryRegistry:
    directory: DirectoryRegistry = request.app.state.directory
    return directory


# scope="function": the session commits before the answer is sent (FastAPI's default runs
# the teardown after it), so a 2xx means the change and its audit entry are stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]
AgreementsDep = Annotated[AgreementRegistry, Depends(get_agreements)]
DirectoryDep = Annotated[DirectoryRegistry, Depends(get_directory)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ContractsDep = Annotated[Contracts, Depends(get_contracts)]


# auto_error=False: a missing key is refused by `get_credentials`, a wrong one by
# `authenticate`, both as problem+json;
# the classes declare the schemes in the OpenAPI and read the scheme case-insensitively.
partner_bearer = HTTPBearer(auto_error=False, scheme_name="PartnerToken",
                            description="An API key or an access token from /oauth/token.")
partner_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="PartnerApiKey",
                               description="An API key, for systems that cannot send Bearer.")


async def get_credentials(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(partner_bearer)],
    api_key: Annotated[str | None, Depends(partner_api_key)],
) -> str:
    """The API key or access token presented, from `Authorization: Bearer …` or
    `X-API-Key`; none at all is refused here, a wrong one by `authenticated`."""
    presented = bearer.credentials if bearer else api_key
    if not presented:
        raise NotAuthenticated()
    return presented


def authenticated(request: Request, session: Session, credentials: str) -> Partner:
    """The partner system owning `credentials`, within its rate limit."""
    partner = once_per_group(session, ("caller", credentials),
                             lambda: authenticate(session=session, api_key=credentials))
    within_rate_limit(request, partner)
    return partner


def get_partner(request: Request, session: SessionDep,
                credentials: Annotated[str, Depends(get_credentials)]) -> Partner:
    """The partner system calling (a dependency: one turn on a worker thread)."""
    return authenticated(request, session, credentials)


def within_rate_limit(request: Request, partner: Partner) -> None:
    """Take one of the partner's tokens, or refuse with 429 (gateway.api.ratelimit); once
    a request, also when its work runs again alone after its group commit split."""
    if getattr(request.state, "rate_token_taken", False):
        return
    settings: Settings = request.app.state.settings
    limiter: RateLimiter = request.app.state.rate_limiter
    try:
        limiter.take(partner.id, rate=partner.rate_per_second or settings.partner_rate_per_second,
                     burst=partner.rate_burst or settings.partner_rate_burst)
    except RateLimited as refused:
        log.info("partner_rate_limited", partner=partner.id,
                 retry_after=refused.extensions["retry_after"])
        raise
    request.state.rate_token_taken = True


declare(get_partner, 401, 429)
declare(get_credentials, 401, 429)
PartnerDep = Annotated[Partner, Depends(get_partner)]
# For a view that authenticates on its own worker-thread turn (`authenticated`).
CredentialsDep = Annotated[str, Depends(get_credentials)]
