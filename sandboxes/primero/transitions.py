"""Referrals, transfers and assigns of a case: Primero's transitions.

State machines (`referral.rb`, `transfer.rb`, `assign.rb`):

- Referral: `in_progress` → `accepted` | `rejected` (`rejected_reason`); `accepted` →
  `done` (`rejection_note`, the provider's notes); DELETE → `revoked` from any state.
- Transfer: `in_progress` → `accepted` (the case's `owned_by` becomes the recipient,
  `previously_owned_by` keeps the old owner) | `rejected`; PATCH `revoked` from any state.
  The case's `transfer_status` mirrors the transfer.
- Assign: created `done`; the owner changes at once.

A move the machine does not allow is silently ignored: the answer is 200 with the
transition unchanged, as in Primero. A referral or transfer fails validation (422,
`detail: "consent"`) unless the case holds consent or `consent_overridden` is true:
CP referral needs `disclosure_other_orgs` and `consent_for_services`, CP transfer
`disclosure_other_orgs`, GBV either `consent_for_services`. The recipient must be a user
who may receive this type in the case's module (422, `detail: "transitioned_to"`), except
for a remote transition (`remote: true`, free-text `transitioned_to_remote` /
`transitioned_to_agency`).
"""

import copy
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body
from sqlalchemy import Connection

from sandboxes.primero.auth import CurrentUser, InstanceDep
from sandboxes.primero.cases import readable_case, refresh_associations, set_owner, touch
from sandboxes.primero.errors import FORBIDDEN, NOT_FOUND, error, invalid_fields
from sandboxes.primero.lookups import MODULE_GBV
from sandboxes.primero.store import Store, now_iso

IN_PROGRESS, ACCEPTED, REJECTED, DONE, REVOKED = (
    "in_progress", "accepted", "rejected", "done", "revoked")
REFERRAL, TRANSFER, ASSIGN = "Referral", "Transfer", "Assign"

COLUMNS = (
    "id", "type", "status", "record_id", "record_type", "transitioned_to", "transitioned_by",
    "transitioned_to_remote", "transitioned_to_agency", "notes", "rejected_reason",
    "rejection_note", "service", "service_record_id", "remote", "type_of_export",
    "consent_overridden", "consent_individual_transfer", "allow_case_creation",
    "authorized_role_unique_id", "created_at", "responded_at", "record_owned_by",
    "record_owned_by_agency", "record_owned_by_groups", "transitioned_by_user_agency",
    "transitioned_by_user_groups", "transitioned_to_user_agency", "transitioned_to_user_groups",
)
PERMITTED = {
    REFERRAL: ("transitioned_to", "transitioned_to_remote", "transitioned_to_agency", "service",
               "service_record_id", "remote", "type_of_export", "notes", "consent_overridden",
               "authorized_role_unique_id", "allow_case_creation"),
    TRANSFER: ("transitioned_to", "transitioned_to_remote", "transitioned_to_agency", "remote",
               "type_of_export", "notes", "consent_overridden", "consent_individual_transfer"),
    ASSIGN: ("transitioned_to", "notes"),
}
_PERMISSION = {REFERRAL: "referral", TRANSFER: "transfer", ASSIGN: "assign"}
_RECEIVE = {REFERRAL: "receive_referral", TRANSFER: "receive_transfer", ASSIGN: "receive_assign"}
_PATHS = {"referrals": REFERRAL, "transfers": TRANSFER, "assigns": ASSIGN}

Data = Annotated[dict[str, Any], Body(embed=True)]
router = APIRouter(prefix="/api/v2", tags=["transitions"])


def consent_given(case: dict[str, Any], kind: str) -> bool:
    """Primero's `consent_given?` for a referral or transfer of this case."""
    services = case.get("consent_for_services") is True
    if case.get("module_id") == MODULE_GBV:
        return services
    others = case.get("disclosure_other_orgs") is True
    return others and services if kind == REFERRAL else others


def can_receive(store: Store, db: Connection, user_name: Any, kind: str, module_id: Any) -> bool:
    """`UserTransitionService#can_receive?`: an active user allowed this type and module."""
    if not isinstance(user_name, str):
        return False
    user = store.user(db, user_name)
    return (user is not None and not user.get("disabled")
            and _RECEIVE[kind] in user["permissions"]
            and module_id in user["module_unique_ids"])


def create_transition(*, store: Store, db: Connection, user: dict[str, Any],
                      case: dict[str, Any], kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Validate and store a new transition of `case`, with its side effects on the case."""
    if _PERMISSION[kind] not in user["permissions"]:
        raise error(403, FORBIDDEN)
    given = {k: params[k] for k in PERMITTED[kind] if params.get(k) is not None}
    remote = kind != ASSIGN and _flag(given.get("remote"))
    problems: dict[str, str] = {}
    if not remote and not can_receive(store, db, given.get("transitioned_to"), kind,
                                      case.get("module_id")):
        problems["transitioned_to"] = "transition.errors.to_user_can_receive"
    overridden = _flag(given.get("consent_overridden"))
    if kind != ASSIGN and not overridden and not consent_given(case, kind):
        problems["consent"] = "transition.errors.consent"
    if problems:
        raise invalid_fields(problems)
    now = now_iso()
    to_user = store.user(db, given["transitioned_to"]) if not remote else None
    transition: dict[str, Any] = dict.fromkeys(COLUMNS)
    transition.update(given)
    transition.update(
        id=str(uuid.uuid4()), type=kind, status=DONE if kind == ASSIGN else IN_PROGRESS,
        record_id=case["id"], record_type="case", transitioned_by=user["user_name"],
        remote=remote, consent_overridden=overridden,
        consent_individual_transfer=_flag(given.get("consent_individual_transfer")),
        allow_case_creation=_flag(given.get("allow_case_creation")), created_at=now,
        record_owned_by=case.get("owned_by"),
        record_owned_by_agency=case.get("owned_by_agency_id"),
        record_owned_by_groups=case.get("owned_by_groups", []),
        transitioned_by_user_agency=user["agency_id"],
        transitioned_by_user_groups=user.get("user_group_unique_ids", []),
        transitioned_to_user_agency=to_user["agency_id"] if to_user else None,
        transitioned_to_user_groups=to_user.get("user_group_unique_ids", []) if to_user else None,
    )
    if remote:
        transition["transitioned_to"] = None
    if kind == ASSIGN:
        set_owner(store, db, case, transition["transitioned_to"])
    else:
        if not remote:
            _grant_access(case, transition["transitioned_to"])
        if kind == REFERRAL:
            _mark_service(case, transition["service_record_id"], service_status_referred=True)
        else:
            case["transfer_status"] = IN_PROGRESS
            case["reassigned_transferred_on"] = now
            if remote:
                case["status"] = "transferred"
    refresh_associations(store, db, case)
    touch(case, user["user_name"], now)
    store.insert_transition(db, transition)
    store.save_case(db, case)
    return transition


def respond(*, store: Store, db: Connection, user: dict[str, Any], case: dict[str, Any],
            transition: dict[str, Any], status: Any, rejected_reason: Any = None,
            rejection_note: Any = None) -> dict[str, Any]:
    """Apply an accept / reject / done / revoke; a move the machine forbids is a no-op."""
    kind, current = transition["type"], transition["status"]
    if status == REVOKED:
        if kind != TRANSFER or current == REVOKED:
            return transition  # a referral is revoked by DELETE only
        _check_may_revoke(user, case, transition)
    elif status in (ACCEPTED, REJECTED, DONE):
        _check_may_respond(user, transition)
    else:
        return transition
    allowed = {(IN_PROGRESS, ACCEPTED), (IN_PROGRESS, REJECTED)}
    if kind == REFERRAL:
        allowed.add((ACCEPTED, DONE))
    if status != REVOKED and (current, status) not in allowed:
        return transition
    now = now_iso()
    transition["status"] = status
    recipient = transition["transitioned_to"]
    if status in (ACCEPTED, REJECTED):
        transition["responded_at"] = now
    if status == REJECTED:
        transition["rejected_reason"] = rejected_reason
    if kind == TRANSFER and status == ACCEPTED:
        if recipient:
            set_owner(store, db, case, recipient)
            _drop_assignment(case, recipient)
        case["transfer_status"] = ACCEPTED
    elif kind == TRANSFER and status == REJECTED:
        case["transfer_status"] = REJECTED
    if kind == REFERRAL and status == DONE:
        transition["rejection_note"] = rejection_note
        _mark_service(case, transition["service_record_id"], service_implemented="implemented",
                      service_implemented_day_time=now,
                      note_on_referral_from_provider=rejection_note)
    store.save_transition(db, transition)
    if status in (REJECTED, DONE, REVOKED) and recipient:
        _remove_access(store, db, case, recipient)
    refresh_associations(store, db, case)
    touch(case, user["user_name"], now)
    store.save_case(db, case)
    return transition


def revoke_referral(*, store: Store, db: Connection, user: dict[str, Any], case: dict[str, Any],
                    transition: dict[str, Any]) -> dict[str, Any]:
    """DELETE of a referral: `revoked` from any state, the recipient's access removed."""
    _check_may_revoke(user, case, transition)
    if transition["status"] == REVOKED:
        return transition
    transition["status"] = REVOKED
    store.save_transition(db, transition)
    if transition["transitioned_to"]:
        _remove_access(store, db, case, transition["transitioned_to"])
    refresh_associations(store, db, case)
    touch(case, user["user_name"], now_iso())
    store.save_case(db, case)
    return transition


def render(transition: dict[str, Any], user: dict[str, Any],
           record: dict[str, Any] | None = None) -> dict[str, Any]:
    """A transition as the API shows it: nulls dropped, the two computed flags added."""
    shown = {k: v for k, v in transition.items() if v is not None}
    shown["record_access_denied"] = False
    shown["user_can_accept_or_reject"] = (
        transition["status"] == IN_PROGRESS and not transition["remote"]
        and transition["type"] != ASSIGN and _may_respond(user, transition))
    if record is not None:
        shown["record"] = record
    return shown


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The partial case Primero returns with a transition: what changed, plus the ids."""
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    return {**changed, "id": after["id"], "enabled": after.get("record_state", True),
            "last_updated_at": after["last_updated_at"]}


def _flag(value: Any) -> bool:
    return value is True or value == "true"


def _may_respond(user: dict[str, Any], transition: dict[str, Any]) -> bool:
    if user["user_name"] == transition["transitioned_to"]:
        return True
    if transition["remote"] and user["group_permission"] == "all":
        return True
    return (transition["type"] == TRANSFER
            and "accept_or_reject_transfer" in user["permissions"]
            and user["group_permission"] in ("agency", "all")
            and user["agency_id"] == transition["transitioned_to_user_agency"])


def _check_may_respond(user: dict[str, Any], transition: dict[str, Any]) -> None:
    if not _may_respond(user, transition):
        raise error(403, FORBIDDEN)


def _check_may_revoke(user: dict[str, Any], case: dict[str, Any],
                      transition: dict[str, Any]) -> None:
    if user["user_name"] in (transition["transitioned_by"], case.get("owned_by")):
        return
    if user["group_permission"] == "all":
        return
    if (user["group_permission"] == "agency"
            and user["agency_id"] == transition["transitioned_by_user_agency"]):
        return
    raise error(403, FORBIDDEN)


def _grant_access(case: dict[str, Any], user_name: str) -> None:
    assigned = case.setdefault("assigned_user_names", [])
    if user_name not in assigned:
        assigned.append(user_name)


def _drop_assignment(case: dict[str, Any], user_name: str) -> None:
    case["assigned_user_names"] = [u for u in case.get("assigned_user_names", [])
                                   if u != user_name]


def _remove_access(store: Store, db: Connection, case: dict[str, Any], user_name: str) -> None:
    """Take the user off the case unless another live referral or transfer keeps them."""
    for other in store.transitions_of(db, case["id"]):
        if other["transitioned_to"] != user_name:
            continue
        if ((other["type"] == REFERRAL and other["status"] in (IN_PROGRESS, ACCEPTED))
                or (other["type"] == TRANSFER and other["status"] == IN_PROGRESS)):
            return
    _drop_assignment(case, user_name)


def _mark_service(case: dict[str, Any], service_record_id: Any, **values: Any) -> None:
    if not service_record_id:
        return
    for row in case.get("services_section") or []:
        if row.get("unique_id") == service_record_id:
            for key, value in values.items():
                if key == "service_implemented_day_time" and row.get(key):
                    continue
                row[key] = value


def _transition_of(store: Store, db: Connection, case: dict[str, Any], kind: str,
                   transition_id: str) -> dict[str, Any]:
    transition = store.transition(db, transition_id)
    if transition is None or transition["record_id"] != case["id"] or transition["type"] != kind:
        raise error(404, NOT_FOUND, f"Couldn't find {kind} with 'id'={transition_id}")
    return transition


@router.get("/cases/{case_id}/transitions")
async def list_transitions(case_id: str, sandbox: InstanceDep, user: CurrentUser,
                     types: str | None = None) -> dict[str, Any]:
    """Every transition of the case, optionally only some types (`types=Referral,Transfer`)."""
    wanted = set(types.split(",")) if types else None
    with sandbox.store.reading() as db:
        readable_case(sandbox.store, db, user, case_id)
        found = sandbox.store.transitions_of(db, case_id)
    return {"data": [render(t, user) for t in found if wanted is None or t["type"] in wanted]}


def _list(kind: str, case_id: str, sandbox: InstanceDep, user: dict[str, Any]
          ) -> dict[str, Any]:
    with sandbox.store.reading() as db:
        readable_case(sandbox.store, db, user, case_id)
        found = sandbox.store.transitions_of(db, case_id)
    return {"data": [render(t, user) for t in found if t["type"] == kind]}


def _create(kind: str, case_id: str, data: dict[str, Any], sandbox: InstanceDep,
            user: dict[str, Any]) -> dict[str, Any]:
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        before = copy.deepcopy(case)
        transition = create_transition(store=sandbox.store, db=db, user=user, case=case,
                                       kind=kind, params=data)
    return {"data": render(transition, user, changed_fields(before, case))}


def _update(kind: str, case_id: str, transition_id: str, data: dict[str, Any],
            sandbox: InstanceDep, user: dict[str, Any]) -> dict[str, Any]:
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        before = copy.deepcopy(case)
        transition = _transition_of(sandbox.store, db, case, kind, transition_id)
        transition = respond(store=sandbox.store, db=db, user=user, case=case,
                             transition=transition, status=data.get("status"),
                             rejected_reason=data.get("rejected_reason"),
                             rejection_note=data.get("rejection_note"))
    return {"data": render(transition, user, changed_fields(before, case))}


@router.get("/cases/{case_id}/referrals")
async def list_referrals(case_id: str, sandbox: InstanceDep, user: CurrentUser) -> dict[str, Any]:
    """The case's referrals (not paged, as in Primero)."""
    return _list(REFERRAL, case_id, sandbox, user)


@router.post("/cases/{case_id}/referrals")
async def refer(case_id: str, data: Data, sandbox: InstanceDep,
                user: CurrentUser) -> dict[str, Any]:
    """Refer the case to a user (or, `remote: true`, to an outside agency)."""
    return _create(REFERRAL, case_id, data, sandbox, user)


@router.patch("/cases/{case_id}/referrals/{referral_id}")
async def respond_to_referral(case_id: str, referral_id: str, data: Data, sandbox: InstanceDep,
                        user: CurrentUser) -> dict[str, Any]:
    """Accept, reject or complete (`done`) a referral."""
    return _update(REFERRAL, case_id, referral_id, data, sandbox, user)


@router.delete("/cases/{case_id}/referrals/{referral_id}")
async def revoke(case_id: str, referral_id: str, sandbox: InstanceDep,
           user: CurrentUser) -> dict[str, Any]:
    """Revoke a referral."""
    with sandbox.store.writing() as db:
        case = readable_case(sandbox.store, db, user, case_id)
        before = copy.deepcopy(case)
        transition = _transition_of(sandbox.store, db, case, REFERRAL, referral_id)
        transition = revoke_referral(store=sandbox.store, db=db, user=user, case=case,
                                     transition=transition)
    return {"data": render(transition, user, changed_fields(before, case))}


@router.get("/cases/{case_id}/transfers")
async def list_transfers(case_id: str, sandbox: InstanceDep, user: CurrentUser) -> dict[str, Any]:
    """The case's transfers."""
    return _list(TRANSFER, case_id, sandbox, user)


@router.post("/cases/{case_id}/transfers")
async def transfer(case_id: str, data: Data, sandbox: InstanceDep,
             user: CurrentUser) -> dict[str, Any]:
    """Start a transfer of the case to a user (or, `remote: true`, to an outside agency)."""
    return _create(TRANSFER, case_id, data, sandbox, user)


@router.patch("/cases/{case_id}/transfers/{transfer_id}")
async def respond_to_transfer(case_id: str, transfer_id: str, data: Data, sandbox: InstanceDep,
                        user: CurrentUser) -> dict[str, Any]:
    """Accept, reject or revoke a transfer."""
    return _update(TRANSFER, case_id, transfer_id, data, sandbox, user)


@router.get("/cases/{case_id}/assigns")
async def list_assigns(case_id: str, sandbox: InstanceDep, user: CurrentUser) -> dict[str, Any]:
    """The case's assigns."""
    return _list(ASSIGN, case_id, sandbox, user)


@router.post("/cases/{case_id}/assigns")
async def assign(case_id: str, data: Data, sandbox: InstanceDep,
                 user: CurrentUser) -> dict[str, Any]:
    """Give the case to another owner now (no accept step, no consent check)."""
    return _create(ASSIGN, case_id, data, sandbox, user)
