"""Cases: `/api/v2/cases` list, read, create, update, disable.

A case is one JSON document with Primero's field names. The server keeps the ids
(`case_id` = `unique_identifier`, `short_id`, `case_id_display`), the owner's agency and
groups, `associated_user_names`, `record_state` (rendered as `enabled`) and the
timestamps; a client may choose the UUID `id` (answer 204, no body; 409 if taken).
What a user sees follows their role's `group_permission` over the case's associated
users (the owner and the assigned users): `self` (cases they are associated with),
`group` (cases of their user groups), `agency` (cases of their agency) or `all`.

This deployment adds custom fields for CaseBridge: `casebridge_referral_id`, the id of the
CaseBridge referral or transfer a case was created for, filterable like any field
(`GET /api/v2/cases?casebridge_referral_id=…`); `casebridge_sender_partner|unit|user`, who
sent a case that arrived through CaseBridge; and `casebridge_new_owner_partner|provider|
unit|user`, who holds a case transferred out through CaseBridge at the receiving end.
Like any text field of a Primero form, they are stored as given.
"""

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import Connection

from sandboxes.primero import lookups, search
from sandboxes.primero.auth import CurrentUser, InstanceDep
from sandboxes.primero.errors import CONFLICT, FORBIDDEN, INVALID_RECORD_JSON, NOT_FOUND, error
from sandboxes.primero.store import Store, now_iso

EXTERNAL_REFERENCE = "casebridge_referral_id"
SERVER_FIELDS = frozenset({
    "case_id", "unique_identifier", "short_id", "case_id_display", "created_at",
    "created_by", "last_updated_at", "last_updated_by", "owned_by_agency_id",
    "owned_by_groups", "previously_owned_by", "transfer_status", "record_state", "enabled",
    "associated_user_names", "associated_user_agencies", "associated_user_groups",
    "reassigned_transferred_on", "flagged",
})
SHORT_FIELDS = ("id", "case_id_display", "name", "age", "sex", "registration_date",
                "owned_by", "owned_by_agency_id", "status", "module_id", "record_state",
                "created_at", "last_updated_at", EXTERNAL_REFERENCE)

Data = Annotated[dict[str, Any], Body(embed=True)]
router = APIRouter(prefix="/api/v2", tags=["cases"])


def can_read(user: dict[str, Any], case: dict[str, Any]) -> bool:
    """Whether the user's role scope covers the case, through its associated users."""
    scope = user["group_permission"]
    if scope == "all" or user["user_name"] in case.get("associated_user_names", []):
        return True
    if scope == "agency":
        return user["agency_id"] in case.get("associated_user_agencies", [])
    groups = set(user.get("user_group_unique_ids", []))
    return scope == "group" and bool(groups & set(case.get("associated_user_groups", [])))


def readable_case(store: Store, db: Connection, user: dict[str, Any],
                  case_id: str) -> dict[str, Any]:
    """The case, or 404 if there is none, or 403 if the user may not see it."""
    case = store.case(db, case_id)
    if case is None:
        raise error(404, NOT_FOUND, f"Couldn't find Child with 'id'={case_id}")
    if not can_read(user, case):
        raise error(403, FORBIDDEN)
    return case


def render(case: dict[str, Any], fields: str | None = None) -> dict[str, Any]:
    """A case as the API shows it: `enabled` from `record_state`, optionally cut to fields."""
    shown = {**case, "enabled": case.get("record_state", True)}
    if fields == "short":
        return {k: shown[k] for k in SHORT_FIELDS if k in shown}
    if fields:
        wanted = {"id", *fields.split(",")}
        return {k: v for k, v in shown.items() if k in wanted}
    return shown


def touch(case: dict[str, Any], user_name: str, now: str) -> None:
    """Mark the case changed now by `user_name`, as every Primero save does."""
    case["last_updated_at"] = now
    case["last_updated_by"] = user_name


def set_owner(store: Store, db: Connection, case: dict[str, Any], owner: str) -> None:
    """Make `owner` the owner and recompute the derived ownership fields (`Ownable`)."""
    user = store.user(db, owner)
    if case.get("owned_by") and case["owned_by"] != owner:
        case["previously_owned_by"] = case["owned_by"]
        case["previously_owned_by_agency"] = case.get("owned_by_agency_id")
    case["owned_by"] = owner
    case["owned_by_agency_id"] = user["agency_id"] if user else None
    case["owned_by_groups"] = list(user.get("user_group_unique_ids", [])) if user else []
    refresh_associations(store, db, case)


def refresh_associations(store: Store, db: Connection, case: dict[str, Any]) -> None:
    """`associated_user_*`: the owner and every assigned user, with their agencies."""
    names = list(dict.fromkeys([case.get("owned_by"), *case.get("assigned_user_names", [])]))
    people = [store.user(db, n) for n in names if n]
    case["associated_user_names"] = [n for n in names if n]
    case["associated_user_agencies"] = sorted({p["agency_id"] for p in people if p})
    case["associated_user_groups"] = sorted({g for p in people if p
                                             for g in p.get("user_group_unique_ids", [])})


def create_case(*, store: Store, db: Connection, user: dict[str, Any],
                fields: dict[str, Any]) -> dict[str, Any]:
    """Check and store a new case for `user`; the server fills the ids and ownership."""
    fields = dict(fields)
    case_uuid = str(fields.pop("id", None) or uuid.uuid4())
    try:
        case_uuid = str(uuid.UUID(case_uuid))
    except ValueError:
        raise error(422, INVALID_RECORD_JSON, ["/id"]) from None
    if store.case(db, case_uuid) is not None:
        raise error(409, CONFLICT)
    case = {k: v for k, v in fields.items() if k not in SERVER_FIELDS}
    missing = [f"/{f}" for f in ("module_id", "sex") if not case.get(f)]
    bad = missing + lookups.invalid_pointers(case)
    if bad:
        raise error(422, INVALID_RECORD_JSON, bad)
    unique = str(uuid.uuid4())
    now = now_iso()
    case.update(id=case_uuid, unique_identifier=unique, case_id=unique, short_id=unique[-7:],
                case_id_display=unique[-7:], record_state=True, created_at=now,
                created_by=user["user_name"], created_organization=user["agency_id"])
    case.setdefault("status", "open")
    case.setdefault("assigned_user_names", [])
    case.setdefault("registration_date", now[:10])
    _fill_derived(case)
    owner = case.get("owned_by")
    set_owner(store, db, case, owner if owner and store.user(db, owner) else user["user_name"])
    case.pop("previously_owned_by", None)
    case.pop("previously_owned_by_agency", None)
    touch(case, user["user_name"], now)
    store.insert_case(db, case)
    return case


def update_case(*, store: Store, db: Connection, user: dict[str, Any],
                case: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """Merge `fields` into the case (subform rows by `unique_id`), check it, store it."""
    changes = {k: v for k, v in fields.items()
               if k not in SERVER_FIELDS and k not in ("id", "owned_by", "record_action")}
    rows = changes.pop("services_section", None)
    merged = {**case, **changes}
    if rows is not None:
        if not isinstance(rows, list):
            raise error(422, INVALID_RECORD_JSON, ["/services_section"])
        merged["services_section"] = _merge_rows(case.get("services_section", []), rows)
    bad = lookups.invalid_pointers(merged)
    if bad:
        raise error(422, INVALID_RECORD_JSON, bad)
    _fill_derived(merged)
    touch(merged, user["user_name"], now_iso())
    store.save_case(db, merged)
    return merged


def _merge_rows(current: list[dict[str, Any]], given: list[Any]) -> list[dict[str, Any]]:
    rows = {r["unique_id"]: dict(r) for r in current}
    for row in given:
        if not isinstance(row, dict):
            raise error(422, INVALID_RECORD_JSON, ["/services_section"])
        key = row.get("unique_id") or str(uuid.uuid4())
        rows[key] = {**rows.get(key, {}), **row, "unique_id": key}
    return list(rows.values())


def _fill_derived(case: dict[str, Any]) -> None:
    if not case.get("name"):
        parts = [case.get(f) for f in ("name_first", "name_middle", "name_last")]
        if any(parts):
            case["name"] = " ".join(p for p in parts if p)
    if case.get("age") is None and case.get("date_of_birth"):
        born = date.fromisoformat(case["date_of_birth"])
        today = date.today()
        case["age"] = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if case.get("module_id") == lookups.MODULE_GBV:
        case["hidden_name"] = True
    for row in case.get("services_section") or []:
        row.setdefault("unique_id", str(uuid.uuid4()))
        row.setdefault("service_implemented", "not_implemented")


@router.get("/cases")
async def list_cases(request: Request, sandbox: InstanceDep, user: CurrentUser) -> dict[str, Any]:
    """Cases the user can see, filtered, ordered and paged."""
    params = request.query_params
    page, per = search.paging(params.get("page"), params.get("per"))
    filters = search.conditions(list(params.multi_items()))
    reference = filters.get(EXTERNAL_REFERENCE)
    with sandbox.store.reading() as db:
        every = (sandbox.store.cases_with_reference(db, reference) if isinstance(reference, str)
                 else sandbox.store.all_cases(db))
    found = [c for c in every
             if can_read(user, c) and search.matches(c, filters, params.get("query"))]
    ordered = search.order(found, params.get("order_by"), params.get("order"))
    shown, metadata = search.page_of(ordered, page, per)
    return {"data": [render(c, params.get("fields")) for c in shown], "metadata": metadata}


@router.get("/cases/{case_id}")
async def read_case(case_id: str, sandbox: InstanceDep, user: CurrentUser,
              fields: str | None = None) -> dict[str, Any]:
    """One case by its UUID."""
    with sandbox.store.reading() as db:
        return {"data": render(readable_case(sandbox.store, db, user, case_id), fields)}


@router.post("/cases", response_model=None)
async def post_case(data: Data, sandbox: InstanceDep,
                    user: CurrentUser) -> dict[str, Any] | Response:
    """Create a case; with a client-chosen `id` the answer is 204 and has no body."""
    with sandbox.store.writing() as db:
        case = create_case(store=sandbox.store, db=db, user=user, fields=data)
    if data.get("id"):
        return Response(status_code=204)
    return {"data": render(case)}


@router.patch("/cases/{case_id}")
async def patch_case(case_id: str, data: Data, sandbox: InstanceDep,
               user: CurrentUser) -> dict[str, Any]:
    """Merge changes into a case."""
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        case = update_case(store=sandbox.store, db=db, user=user, case=case, fields=data)
    return {"data": render(case)}


@router.delete("/cases/{case_id}")
async def disable_case(case_id: str, sandbox: InstanceDep, user: CurrentUser) -> dict[str, Any]:
    """Disable a case (`record_state` false); Primero never deletes records."""
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        case["record_state"] = False
        touch(case, user["user_name"], now_iso())
        sandbox.store.save_case(db, case)
    return {"data": {"id": case_id}}
