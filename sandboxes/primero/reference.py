"""Reference data: the instance, agencies, lookups and who may receive a transition."""

from typing import Any

from fastapi import APIRouter, Request

from sandboxes.primero import lookups, search
from sandboxes.primero.auth import CurrentUser, InstanceDep
from sandboxes.primero.transitions import ASSIGN, REFERRAL, TRANSFER, can_receive

router = APIRouter(prefix="/api/v2", tags=["reference"])


@router.get("/primero")
async def about(sandbox: InstanceDep, _user: CurrentUser) -> dict[str, Any]:
    """The instance: its name, lead agency, modules and locales."""
    return {"data": {"instance": sandbox.name, "agency": sandbox.agency,
                     "modules": [{"unique_id": k, "name": {"en": v}}
                                 for k, v in lookups.MODULES.items()],
                     "locales": ["en"], "default_locale": "en", "sandbox": True}}


@router.get("/agencies")
async def list_agencies(request: Request, sandbox: InstanceDep,
                        _user: CurrentUser) -> dict[str, Any]:
    """Agencies of this instance, paged."""
    page, per = search.paging(request.query_params.get("page"),
                              request.query_params.get("per"))
    with sandbox.store.reading() as db:
        shown, metadata = search.page_of(sandbox.store.all_agencies(db), page, per)
    return {"data": shown, "metadata": metadata}


@router.get("/lookups")
async def list_lookups(request: Request, _user: CurrentUser) -> dict[str, Any]:
    """The option lists (`lookup-gender`, `lookup-service-type` …), paged."""
    page, per = search.paging(request.query_params.get("page"),
                              request.query_params.get("per"))
    shown, metadata = search.page_of(lookups.as_resources(), page, per)
    return {"data": shown, "metadata": metadata}


def _recipients(sandbox: InstanceDep, kind: str, record_module_id: str | None,
                agency: str | None) -> dict[str, Any]:
    with sandbox.store.reading() as db:
        people = [u for u in sandbox.store.all_users(db)
                  if can_receive(sandbox.store, db, u["user_name"], kind,
                                 record_module_id or u["module_unique_ids"][0])
                  and (agency is None or u["agency_id"] == agency)]
    return {"data": [{"id": u["id"], "user_name": u["user_name"], "full_name": u["full_name"],
                      "agency_id": u["agency_id"], "position": u.get("position")}
                     for u in people]}


@router.get("/users/refer-to")
async def refer_to(sandbox: InstanceDep, _user: CurrentUser, record_type: str = "case",
             record_module_id: str | None = None, agency: str | None = None) -> dict[str, Any]:
    """Users who may receive a referral."""
    return _recipients(sandbox, REFERRAL, record_module_id, agency)


@router.get("/users/transfer-to")
async def transfer_to(sandbox: InstanceDep, _user: CurrentUser, record_type: str = "case",
                record_module_id: str | None = None, agency: str | None = None
                ) -> dict[str, Any]:
    """Users who may receive a transfer."""
    return _recipients(sandbox, TRANSFER, record_module_id, agency)


@router.get("/users/assign-to")
async def assign_to(sandbox: InstanceDep, _user: CurrentUser, record_type: str = "case",
              record_module_id: str | None = None, agency: str | None = None
              ) -> dict[str, Any]:
    """Users a case may be assigned to."""
    return _recipients(sandbox, ASSIGN, record_module_id, agency)
