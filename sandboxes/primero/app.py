"""The Primero sandbox application (`casebridge sandbox primero`)."""

from pathlib import Path

from fastapi import FastAPI

from sandboxes import faults as fault_injection
from sandboxes.primero import auth, cases, errors, flags, reference, transitions
from sandboxes.primero.auth import Instance
from sandboxes.primero.seed import seed as seed_store
from sandboxes.primero.store import Store


def create_app(*, database: Path, seed: bool = True,
               faults: fault_injection.Faults | None = None, instance: str = "cpims-ssd",
               agency: str | None = None, token_ttl: float = 3600.0) -> FastAPI:
    """A Primero v2 stand-in on its own SQLite file.

    `instance` names the deployment (two may run at once, e.g. `cpims-ssd` and
    `cpims-uga` for a cross-border transfer); `agency` is the unique_id of its lead
    agency (default `agency-<instance>`); `token_ttl` is the lifetime of a login token in
    seconds. `seed` fills an empty store with fictional users and cases.
    """
    store = Store(database)
    lead_agency = agency or f"agency-{instance}"
    if seed and store.is_empty():
        seed_store(store, instance=instance, agency=lead_agency)
    app = FastAPI(title=f"Primero sandbox ({instance})", version="2",
                  summary="A stand-in of the Primero v2 REST API with fictional data.")
    app.state.primero = Instance(store=store, name=instance, agency=lead_agency,
                                 token_ttl=token_ttl)
    errors.install(app)
    for router in (auth.router, cases.router, transitions.router, flags.router,
                   reference.router, auth.sandbox_router):
        app.include_router(router)
    fault_injection.install(app, error_body=errors.fault_body, faults=faults)
    return app
