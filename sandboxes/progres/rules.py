"""proGres workflow rules run inside every create and update, as Dataverse plug-ins would.

- statecode/statuscode: a status reason belongs to one state (an invalid pair is refused);
  setting only statecode picks that state's default reason; a move must be one the table's
  status machine allows (repeating the current status is a no-op, so retries are safe).
- numbering: `REF-IOP-DAD-000000112`, `DTR-DAD-000000021`, `DAD-00005708` …
- referrals: an incoming referral (from a partner) starts Pending Acknowledgement and must
  ask for an intervention type enabled for interoperability; acknowledgement, review
  decision, review date and reviewer are stamped as the status moves; rejecting needs a
  rejection reason.
- Data Transfer Requests: an incoming request starts Pending Decision; request, decision and
  transfer dates and the decision maker are stamped; rejecting needs a rejection reason.
- tasks: a task is created Open; completing or cancelling it stamps `actualend`.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from sandboxes.progres.errors import BUSINESS_RULE, INVALID_ARGUMENT, ODataError
from sandboxes.progres.schema import (
    BY_LOGICAL,
    DIRECTION,
    REVIEW_DECISION,
    Entity,
    ReferralStatus,
    TransferStatus,
)
from sandboxes.progres.store import Store

OUTGOING, INCOMING = tuple(DIRECTION)
ACCEPTED_DECISION, REJECTED_DECISION = tuple(REVIEW_DECISION)


class Change:
    """One write under way: the row before (None on create) and the values being set."""

    def __init__(self, entity: Entity, before: dict[str, Any] | None, values: dict[str, Any],
                 *, user_id: str, now: datetime) -> None:
        self.entity = entity
        self.before = before
        self.values = values
        self.user_id = user_id
        self.now = now

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        return self.before.get(name) if self.before else None

    def default(self, name: str, value: Any) -> None:
        if self.get(name) is None:
            self.values[name] = value

    @property
    def status_changed(self) -> bool:
        if "statuscode" not in self.values:
            return False
        return self.before is None or self.before["statuscode"] != self.values["statuscode"]


def apply(store: Store, conn: Connection, change: Change, *, office: str) -> None:
    """Run every rule of the table on a create or update; raise `ODataError` to refuse it."""
    if change.before is None:
        _number(store, conn, change, office=office)
    if change.entity.logical == "progres_interoperabilityreferral":
        _referral_defaults(change)
    elif change.entity.logical == "progres_datatransferrequest":
        _transfer_defaults(change)
    _status(change)
    if change.entity.logical == "progres_interoperabilityreferral":
        _referral(store, conn, change)
    elif change.entity.logical == "progres_datatransferrequest":
        _transfer(change)
    elif change.entity.logical == "task" and change.status_changed \
            and change.values["statecode"] != 0:
        change.default("actualend", change.now)


def _number(store: Store, conn: Connection, change: Change, *, office: str) -> None:
    if change.entity.autonumber is None:
        return
    column, pattern = change.entity.autonumber
    if change.values.get(column):
        return
    n = store.next_value(conn, f"autonumber:{change.entity.logical}")
    change.values[column] = pattern.format(office=office, yy=f"{change.now:%y}", n=n)


def _status(change: Change) -> None:
    model = change.entity.status
    statuscode = change.values.get("statuscode")
    statecode = change.values.get("statecode")
    if statuscode is not None:
        state = model.state_of(statuscode)
        if statecode is not None and statecode != state:
            raise ODataError(400, INVALID_ARGUMENT,
                             f"{statuscode} is not a valid status code for state code "
                             f"{change.entity.logical}State.{statecode}.")
    elif statecode is not None:
        statuscode = model.defaults[statecode]
    elif change.before is None:
        statuscode = model.defaults[0]
    else:
        return
    state = model.state_of(statuscode)
    if change.before is None:
        if state != 0:
            raise ODataError(400, INVALID_ARGUMENT,
                             f"A {change.entity.logical} cannot be created inactive "
                             f"(statuscode {statuscode}).")
    else:
        current = change.before["statuscode"]
        allowed = model.transitions.get(current) if model.transitions else None
        if statuscode != current and allowed is not None and statuscode not in allowed:
            raise ODataError(400, INVALID_ARGUMENT,
                             f"The status of {change.entity.logical} cannot move from "
                             f"'{model.reasons[current][1]}' ({current}) to "
                             f"'{model.reasons[statuscode][1]}' ({statuscode}).")
    change.values["statuscode"] = statuscode
    change.values["statecode"] = state


def _referral_defaults(change: Change) -> None:
    if change.before is not None:
        return
    change.default("progres_direction", OUTGOING)
    change.default("progres_referraldate", change.now)
    if change.get("progres_direction") == INCOMING:
        change.default("statuscode", ReferralStatus.PENDING_ACKNOWLEDGEMENT)
        if change.values["statuscode"] != ReferralStatus.PENDING_ACKNOWLEDGEMENT:
            raise ODataError(400, BUSINESS_RULE,
                             "An incoming referral is created Pending Acknowledgement.")


def _referral(store: Store, conn: Connection, change: Change) -> None:
    if change.get("progres_direction") == INCOMING and (
            change.before is None or "_progres_interventiontype_value" in change.values):
        _check_interop_type(store, conn, change.get("_progres_interventiontype_value"))
    if not change.status_changed:
        return
    status = change.values["statuscode"]
    if status == ReferralStatus.PENDING_ACTION:
        change.default("progres_acknowledgedon", change.now)
    elif status == ReferralStatus.ACCEPTED:
        change.values.setdefault("progres_reviewdecision", ACCEPTED_DECISION)
        _reviewed(change)
    elif status == ReferralStatus.REJECTED:
        if change.get("progres_interoperabiltyreferralrejectionreason") is None:
            raise ODataError(400, BUSINESS_RULE,
                             "A rejection reason is required to reject a referral.")
        change.values.setdefault("progres_reviewdecision", REJECTED_DECISION)
        _reviewed(change)
    if change.values["statecode"] == 1:
        change.values.setdefault("progres_closedon", change.now)


def _reviewed(change: Change) -> None:
    change.values.setdefault("progres_reviewdate", change.now)
    change.values.setdefault("_progres_reviewby_value", change.user_id)


def _check_interop_type(store: Store, conn: Connection, type_id: str | None) -> None:
    """Only intervention types enabled for interoperability may be asked of proGres."""
    if type_id is None:
        raise ODataError(400, BUSINESS_RULE,
                         "An incoming referral needs an intervention type "
                         "(progres_interventiontype).")
    entity = BY_LOGICAL["progres_interventiontype"]
    row = store.get(conn, entity, type_id)
    if row is None or not row["progres_interopenabled"]:
        raise ODataError(400, BUSINESS_RULE,
                         f"The intervention type {type_id} is not enabled for "
                         "interoperability referrals.")


def _transfer_defaults(change: Change) -> None:
    if change.before is not None:
        return
    change.default("progres_direction", OUTGOING)
    if change.get("progres_direction") == INCOMING:
        change.default("statuscode", TransferStatus.PENDING_DECISION)
        if change.values["statuscode"] != TransferStatus.PENDING_DECISION:
            raise ODataError(400, BUSINESS_RULE,
                             "An incoming data transfer request is created Pending Decision.")


def _transfer(change: Change) -> None:
    if not change.status_changed:
        return
    status = change.values["statuscode"]
    if status == TransferStatus.PENDING_DECISION:
        change.default("progres_requestdate", change.now)
    elif status in (TransferStatus.PENDING_TRANSFER, TransferStatus.REQUEST_REJECTED):
        if (status == TransferStatus.REQUEST_REJECTED
                and change.get("progres_rejectionreason") is None):
            raise ODataError(400, BUSINESS_RULE,
                             "A rejection reason is required to reject a data transfer "
                             "request.")
        change.values.setdefault("progres_decisiondate", change.now)
        change.values.setdefault("_progres_decisionby_value", change.user_id)
    elif status == TransferStatus.TRANSFERRED:
        change.values.setdefault("progres_transferdate", change.now)
    if change.values["statecode"] == 1:
        change.values.setdefault("progres_closedon", change.now)
