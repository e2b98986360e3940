"""Flags on a case: `GET/POST /api/v2/cases/{id}/flags`, `PATCH …/flags/{flag_id}`.

As in Primero (`flags_controller.rb`, `flag.rb`, `concerns/flaggable.rb` at 4b95bf9):

- A flag is `{id (integer), record_id, record_type: "cases", date, message, flagged_by,
  removed, unflag_message, created_at, system_generated_followup, unflagged_by,
  unflagged_date, record_uuid}` plus the case's `name` (masked for a hidden name),
  `short_id`, `owned_by`, `owned_by_agency_id` and `record_access_denied`; on create and
  update also `record`, the case fields the flag changed. Nulls are kept.
- `POST {"data": {"message", "date"?}}` flags the case (answer 200): `date` defaults to
  today; without a message the answer is a 422 naming `message`
  (`errors.models.flags.message`), a date that is not a date one naming `date`.
- `PATCH {"data": {"unflag_message"}}` resolves the flag (`removed`, `unflagged_by`,
  `unflagged_date` today); `PATCH {"data": {"message"?, "date"?}}` edits it. A flag of
  another case, or none, is a 404.
- The case's `flagged` is true while it has a flag not removed; each flag or unflag saves
  the case (`last_updated_at`).
- Permissions: `flag` to list and flag the cases one can read; resolving takes `flag` or
  `resolve_any_flag`, editing `flag_update`. Anything else is a 403.
"""

import copy
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body
from sqlalchemy import Connection

from sandboxes.primero.auth import CurrentUser, InstanceDep
from sandboxes.primero.cases import readable_case, touch
from sandboxes.primero.errors import FORBIDDEN, NOT_FOUND, error, invalid_fields
from sandboxes.primero.store import Store, now_iso
from sandboxes.primero.transitions import changed_fields

FLAG, FLAG_UPDATE, RESOLVE_ANY = "flag", "flag_update", "resolve_any_flag"
HIDDEN_NAME = "*******"

Data = Annotated[dict[str, Any], Body(embed=True)]
router = APIRouter(prefix="/api/v2", tags=["flags"])


def _allowed(user: dict[str, Any], *actions: str) -> None:
    if not set(actions) & set(user["permissions"]):
        raise error(403, FORBIDDEN)


def _date(value: Any) -> str | None:
    """Rails' cast of a date parameter: blank is today, garbage is nil."""
    if value in (None, ""):
        return datetime.now(UTC).date().isoformat()
    try:
        return date.fromisoformat(str(value)[:10]).isoformat()
    except ValueError:
        return None


def _check(flag: dict[str, Any]) -> None:
    problems: dict[str, str] = {}
    if not isinstance(flag.get("message"), str) or not flag["message"].strip():
        problems["message"] = "errors.models.flags.message"
    if flag.get("date") is None:
        problems["date"] = "errors.models.flags.date"
    if problems:
        raise invalid_fields(problems)


def _refresh(store: Store, db: Connection, case: dict[str, Any], user_name: str) -> None:
    """`calculate_flagged` and the save of the case that every flag change makes."""
    case["flagged"] = any(not f["removed"] for f in store.flags_of(db, case["id"]))
    touch(case, user_name, now_iso())
    store.save_case(db, case)


def render(flag: dict[str, Any], case: dict[str, Any],
           record: dict[str, Any] | None = None) -> dict[str, Any]:
    """A flag as the API shows it, with the case fields `_flag.json.jbuilder` adds."""
    shown = {**flag, "record_type": "cases",
             "name": HIDDEN_NAME if case.get("hidden_name") else case.get("name"),
             "short_id": case.get("short_id"), "owned_by": case.get("owned_by"),
             "owned_by_agency_id": case.get("owned_by_agency_id"),
             "record_access_denied": False}
    if record is not None:
        shown["record"] = record
    return shown


def _flag_of(store: Store, db: Connection, case: dict[str, Any], flag_id: str
             ) -> dict[str, Any]:
    found = next((f for f in store.flags_of(db, case["id"]) if str(f["id"]) == flag_id), None)
    if found is None:
        raise error(404, NOT_FOUND, f"Couldn't find Flag with 'id'={flag_id}")
    return found


@router.get("/cases/{case_id}/flags")
async def list_flags(case_id: str, sandbox: InstanceDep, user: CurrentUser) -> dict[str, Any]:
    """Every flag of the case, resolved ones too, by id."""
    _allowed(user, FLAG)
    with sandbox.store.reading() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        return {"data": [render(f, case) for f in sandbox.store.flags_of(db, case_id)]}


@router.post("/cases/{case_id}/flags")
async def add_flag(case_id: str, data: Data, sandbox: InstanceDep, user: CurrentUser
             ) -> dict[str, Any]:
    """Flag the case with a reason (`message`) and a date."""
    _allowed(user, FLAG)
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        before = copy.deepcopy(case)
        flag = {"record_id": case_id, "record_type": "Child", "date": _date(data.get("date")),
                "message": data.get("message"), "flagged_by": user["user_name"],
                "removed": False, "unflag_message": None, "created_at": now_iso(),
                "system_generated_followup": False, "unflagged_by": None,
                "unflagged_date": None, "record_uuid": case_id}
        _check(flag)
        flag = sandbox.store.insert_flag(db, flag)
        _refresh(sandbox.store, db, case, user["user_name"])
    return {"data": render(flag, case, changed_fields(before, case))}


@router.patch("/cases/{case_id}/flags/{flag_id}")
async def update_flag(case_id: str, flag_id: str, data: Data, sandbox: InstanceDep,
                user: CurrentUser) -> dict[str, Any]:
    """Resolve the flag (`unflag_message`), or change its reason or date."""
    resolving = bool(data.get("unflag_message"))
    _allowed(user, *((FLAG, RESOLVE_ANY) if resolving else (FLAG_UPDATE,)))
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        before = copy.deepcopy(case)
        flag = _flag_of(sandbox.store, db, case, flag_id)
        if resolving:
            flag.update(unflag_message=data["unflag_message"], removed=True,
                        unflagged_by=user["user_name"],
                        unflagged_date=datetime.now(UTC).date().isoformat())
        else:
            if "message" in data:
                flag["message"] = data["message"]
            if "date" in data:
                flag["date"] = _date(data["date"])
            _check(flag)
        sandbox.store.save_flag(db, flag)
        _refresh(sandbox.store, db, case, user["user_name"])
    return {"data": render(flag, case, changed_fields(before, case))}
