"""The FastAPI application: wiring of store, contracts, middleware, routes and problems."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.api import (
    alerts,
    directory,
    disclosures,
    health,
    metrics,
    oauth,
    openapi,
    operations,
    problems,
    progres_dtp,
    referrals,
    reports,
)
from gateway.api.correlation import CorrelationMiddleware
from gateway.api.ratelimit import RateLimiter
from gateway.console.app import install_console
from gateway.contracts import Contracts
from gateway.directory.registry import DirectoryRegistry
from gateway.fhir import router as fhir
from gateway.logs import (
    ensure_logging,
)
from gateway.mapping.registry import MappingRegistry
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.crypto import Keyring, use_keyring
from gateway.settings import Settings, get_settings
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.group_commit import GroupCommit


def create_app(settings: Settings | None = None) -> FastAPI:
    """A gateway API bound to the configured store and contracts."""
    settings = settings or get_settings()
    ensure_logging(level=settings.log_level, json=settings.log_json)
    use_keyring(Keyring.from_settings(settings))  # no key: no gateway

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.engine.dispose()

    app = FastAPI(
        title="CaseBridge partner API",
        version="1",
        summary="Referrals and transfers between case-management systems, with their status.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.sessions = make_sessionmaker(app.state.engine)
    app.state.contracts = Contracts(settings.contracts_dir)
    app.state.mappings = MappingRegistry(settings.mappings_dir, app.state.contracts)
    app.state.agreements = AgreementRegistry(settings.agreements_dir, app.state.contracts)
    app.state.directory = DirectoryRegistry(settings.directory_dir, app.state.contracts,
                                            calendars_dir=settings.calendars_dir)
    app.state.rate_limiter = RateLimiter()
    # Submissions are written in groups (gateway/store/group_commit.py), one group at a
    # time: while one is written the next gathers. On SQLite more would only wait on its
    # one writer; on PostgreSQL more made the groups smaller and cost more CPU per
    # referral (bench/intake.py, PostgreSQL: 440/s with one, 355/s with two, fewer with five).
    app.state.intake = GroupCommit(app.state.sessions, turns=1)

    app.add_middleware(CorrelationMiddleware)
    problems.install(app)
    app.include_router(referrals.router)
    app.include_router(alerts.router)
    app.include_router(directory.router)
    app.include_router(oauth.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(operations.router)
    app.include_router(disclosures.router)
    app.include_router(reports.router)
    app.include_router(progres_dtp.router)
    fhir.install(app)  # /fhir: the FHIR R4 face, its errors as OperationOutcome
    install_console(app, settings)
    openapi.install(app)

    @app.get("/v1/noop", include_in_schema=False)
    def noop() -> dict[str, str]:
        """The benchmark's baseline: the same server, no work."""
        return {"status": "ok"}

    return app
