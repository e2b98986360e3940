"""The proGres v4 adapter: referrals and transfers as Dataverse rows of proGres.

A referral is a `progres_interoperabilityreferral` row (entity set
`progres_interoperabilityreferrals`), a transfer a `progres_datatransferrequest` row
(`progres_datatransferrequests`). Rows travel as the Dataverse Web API shows them: option
sets as integers (125080000 …) with `<field>@OData.Community.Display.V1.FormattedValue`
labels, lookups as `_<name>_value` GUIDs (with FormattedValue and
`@Microsoft.Dynamics.CRM.lookuplogicalname`), dates `YYYY-MM-DD`, date-times
`YYYY-MM-DDThh:mm:ssZ`, plus `@odata.etag`, `statecode`, `statuscode`, `createdon`,
`modifiedon`, `_modifiedby_value`.

Native records (what the mapping files in `mappings/progres/` read and write):

- **create** input — kind `referral`: ::

    {"referral": {progres_interoperabilityreferralrouteto, progres_urgency,
                  progres_duedate, progres_referraldate, progres_reasonforreferral,
                  progres_referralnotes,
                  progres_individualreference, progres_givenname, progres_middlename,
                  progres_familyname, progres_dateofbirth, progres_sex,
                  progres_primaryphonenumber,                      # the person as sent
                  progres_consentobtained, progres_consentdate, progres_consentgivenby,
                  progres_consentform, progres_childassent,
                  progres_sendingorganization, progres_sendername, progres_senderemail,
                  progres_senderphone, statuscode?,
                  "progres_interventiontype@odata.bind": "/progres_interventiontypes(<guid>)",
                  "progres_partnerid@odata.bind" | "progres_assignedunitid@odata.bind" |
                  "progres_assigneduserid@odata.bind": "/<set>(<guid>)", ...},
     "individual": {"progres_id": "DAD-00005708"} | {"progres_individualid": "<guid>"}}

  kind `transfer`: ``{"transfer": {progres_transferreason, progres_duedate,
  progres_transferrelatedchildprotectioncases, progres_transferrelatedrsdcases,
  progres_transferrelatedfraudcases (booleans), the same person / consent / sender
  columns, "progres_partnerid@odata.bind"?, ...}, "individual": {...}}``.

  The adapter adds `progres_orgreferralid` (the gateway's referral id) and
  `progres_direction` 125080001 (Incoming) unless given, and binds
  `progres_individualid` (and `progres_registrationgroupid`) when `individual` names a
  registered person; an unknown person leaves the lookup empty for a proGres reviewer to
  match or reject ("Individual Not Found"). proGres itself starts an incoming referral
  at Pending Acknowledgement and an incoming request at Pending Decision, and accepts
  only intervention types enabled for interoperability.

- **read** output, and the record of a `referral` / `transfer` change: ::

    {"referral": <row>, "individual": <progres_individuals row> | None,
     "case": <progres_cases row> | None,
     "source_record": <progres_sgbvincidents | progres_bestinterestsassessments |
                       progres_lpinterventions row> | None}
    {"transfer": <row>, "individual": <row> | None, "case": <row> | None}

  The source record is the referral's `regardingobjectid`; which table it is in, is the
  row's `_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname`.

- **update_status** input: the columns to set, e.g. ``{"statuscode": 125080003}``;
  ``{"statuscode": 125080007, "progres_interoperabiltyreferralrejectionreason":
  125080001, "progres_interoperabilityreferralrejectionomment": "…"}`` (sic, both
  misspelt as in proGres; a reason is required to reject);
  ``{"statuscode": 125080006, "progres_outcome": 125080000, "progres_outcomenotes": "…"}``;
  for a transfer ``{"statuscode": 125080003, "progres_rejectionreason": 125080001,
  "progres_decisioncomment": "…"}`` or ``{"statuscode": 125080005,
  "progres_failurereason": "…"}``. `statecode` follows from `statuscode`. The adapter
  also writes the gateway's referral id into `progres_orgreferralid` when the row has
  none (an outgoing proGres referral the gateway picked up); an empty status record only
  does that. A status the row already has is not written again.

- **discover** output (`NativeChange`), from rows of both tables changed since the
  cursor (`modifiedon ge …`, ordered by `modifiedon`):
  - `referral` / `transfer` (`referral_id` None, record as **read**): an outgoing row
    (`progres_direction` 125080000) without `progres_orgreferralid` that reached the
    partner-facing status — referral Pending Acknowledgement routed to a Partner or a
    Service Provider (not to a Unit or User: those stay inside proGres); transfer
    Pending Decision. A row edited again before the gateway stamped it is reported
    again: the gateway de-duplicates by `native_id`.
  - `status` with `referral_id` = `progres_orgreferralid` (record ``{"referral": row}``
    or ``{"transfer": row}``): any change of a row carrying a gateway referral id, unless
    the adapter's own user made it (`_modifiedby_value` = WhoAmI's UserId) — an echo of
    the gateway's own write.
  - `status` with `referral_id` None: a later status of an outgoing row the gateway has
    not stamped yet (e.g. proGres cancelled it); the gateway finds it by `native_id`.
  A status is reported whenever the row changed, so a repeat is possible and idempotent.
  - a `referral` / `transfer` whose row or related records proGres refuses to give (a
    4xx such as a missing read privilege) comes with `problem` set and the bare row as
    its record: the gateway dead-letters it and reads it again when it is re-driven.
  The cursor is opaque JSON: the newest `modifiedon` seen (Dataverse keeps whole
  seconds) and the `id@version` of the rows seen in the last `cursor_overlap` seconds
  before it, so equal timestamps and late commits are neither missed nor reported twice.

- **alert** (`contracts/alert.json`) shows as a Dataverse **task** (an activity in the
  `tasks` table) regarding the referral or DTR row: due (`scheduledend`) when the deadline
  fell due, owned by the row's assigned user (else its owner) so that it is in their
  activities, `prioritycode` Normal for `overdue` and High for `escalated`, `subject` and
  `description` the alert's message, `category` "CaseBridge deadline" and `subcategory`
  the alert's mark (`adapters.alerts`). Its `activityid` is derived from the alert id, so
  a second delivery is refused as a duplicate key and changes nothing. `cleared`
  completes (statecode 1, statuscode 5 Completed) the deadline's tasks still open, its
  message added to their description.

- **native id**: ``"progres_interoperabilityreferrals(<guid>)"`` or
  ``"progres_datatransferrequests(<guid>)"`` — the path in the `OData-EntityId` header.

- **External reference**: `progres_orgreferralid` (an alternate key in the sandbox).
  Create looks it up (``$filter=progres_orgreferralid eq '<referral id>'``) before
  creating, and again when proGres answers 0x80040237 (duplicate key), so a retry after
  an answer that never arrived finds the row made the first time.

Status codes (`statuscode` → label → canonical state; 125080000… values are the
sandbox's [GUESS], see `shared/reference/progres-ndelius.md` §2.3):

  referral                        statecode  canonical
  125080000 Pending Recommendation   0       — (inside proGres, nothing has left)
  125080001 Pending Review           0       — (inside proGres, nothing has left)
  125080002 Pending Acknowledgement  0       delivered
  125080003 Pending Action           0       acknowledged
  125080004 Accepted                 0       accepted
  125080005 In Progress              0       in_progress
  125080006 Completed                1       completed (progres_outcome 125080000 ok /
                                             125080001 not successful)
  125080007 Rejected                 1       rejected (progres_interoperabiltyreferral…
                                             rejectionreason, review decision 125080001)
  125080008 Cancelled                1       withdrawn
  125080009 Delivery Failed          1       failed

  Data Transfer Request
  125080000 Pending Submission       0       — (inside proGres)
  125080001 Pending Decision         0       delivered
  125080002 Pending Transfer         0       accepted
  125080003 Request Rejected         1       rejected (progres_rejectionreason)
  125080004 Transferred              1       completed
  125080005 Transfer failed          1       failed
  125080006 Cancelled                1       withdrawn
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from adapters.alerts import Alert, read_alert, shortened
from adapters.base import ChangeKind, Discovery, NativeChange
from adapters.progres.client import DUPLICATE, ProgresClient
from gateway.errors import PermanentDeliveryError, TransientDeliveryError

log = structlog.get_logger()

REFERRALS = "progres_interoperabilityreferrals"
TRANSFERS = "progres_datatransferrequests"
EXTERNAL_REFERENCE = "progres_orgreferralid"
LOGICAL_NAME = "@Microsoft.Dynamics.CRM.lookuplogicalname"

OUTGOING, INCOMING = 125080000, 125080001  # progres_direction
ROUTE_TO_PARTNER, ROUTE_TO_SERVICE_PROVIDER = 125080000, 125080003
REFERRAL_PENDING_ACKNOWLEDGEMENT = 125080002
REFERRAL_INTERNAL = frozenset({125080000, 125080001})  # Pending Recommendation / Review
TRANSFER_PENDING_SUBMISSION, TRANSFER_PENDING_DECISION = 125080000, 125080001

TASKS = "tasks"
ALERT_CATEGORY = "CaseBridge deadline"
TASK_NAMESPACE = uuid.UUID("2b7f9e14-6a3c-4d58-9e0b-7c1d5f3a8e62")
NORMAL_PRIORITY, HIGH_PRIORITY = 1, 2  # task prioritycode
OPEN, COMPLETED, COMPLETED_REASON = 0, 1, 5  # task statecode, statuscode
SUBJECT_LIMIT, DESCRIPTION_LIMIT = 200, 2000

_SETS = {"referral": (REFERRALS, "referral"), "transfer": (TRANSFERS, "transfer")}
_SECTIONS = {REFERRALS: "referral", TRANSFERS: "transfer"}
_SOURCE_SETS = {"progres_sgbvincident": "progres_sgbvincidents",
                "progres_bestinterestsassessment": "progres_bestinterestsassessments",
                "progres_lpintervention": "progres_lpinterventions"}
_NATIVE_ID = re.compile(rf"^({REFERRALS}|{TRANSFERS})\(([0-9a-fA-F-]{{36}})\)$")
_ETAG = re.compile(r'^W/"(.*)"$')
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _literal(text: str) -> str:
    """An OData string literal."""
    return "'" + text.replace("'", "''") + "'"


def _timestamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def parse_native_id(native_id: str) -> tuple[str, str]:
    """(entity set, GUID) of a native id."""
    match = _NATIVE_ID.match(native_id)
    if match is None:
        raise PermanentDeliveryError("not a proGres referral or transfer id",
                                     partner_code="bad_native_id")
    return match[1], match[2].lower()


@dataclass
class _Cursor:
    newest: datetime | None = None
    seen: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, text: str) -> "_Cursor":
        try:
            data = json.loads(text)
            newest = _moment(data["modifiedon"]) if data.get("modifiedon") else None
            return cls(newest=newest, seen={str(k) for k in data.get("seen", [])})
        except (ValueError, TypeError, KeyError, AttributeError):
            raise PermanentDeliveryError("the proGres discovery cursor is not readable",
                                         partner_code="bad_cursor") from None

    def dump(self) -> str:
        return json.dumps({"modifiedon": _timestamp(self.newest) if self.newest else None,
                           "seen": sorted(self.seen)}, separators=(",", ":"))


def _version_key(row: dict[str, Any], entity_set: str) -> str:
    """`<guid>@<row version>`: a row changed again within one second gets a new key."""
    match = _ETAG.match(str(row.get("@odata.etag", "")))
    return f"{row[_key(entity_set)]}@{match[1] if match else row.get('modifiedon')}"


def _key(entity_set: str) -> str:
    """The primary key column of an entity set (`progres_cases` → `progres_caseid`)."""
    return f"{entity_set.removesuffix('s')}id"


class ProgresAdapter:
    """The `PartnerAdapter` of proGres v4 (see the module docstring for the records)."""

    system = "progres"
    channel = None
    shows_alerts = True

    def __init__(self, base_url: str, *, client_id: str, client_secret: str,
                 timeout: float = 10.0, page_size: int = 500,
                 transport: httpx.BaseTransport | None = None, token_url: str | None = None,
                 scope: str | None = None, cursor_overlap: float = 5.0) -> None:
        self.client = ProgresClient(base_url, client_id=client_id, client_secret=client_secret,
                                    token_url=token_url, scope=scope, timeout=timeout,
                                    page_size=page_size, transport=transport)
        self.cursor_overlap = timedelta(seconds=cursor_overlap)
        self._user_id: str | None = None

    def close(self) -> None:
        """Release connections."""
        self.client.close()

    # -- create ---------------------------------------------------------------------------

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        """Create the referral or DTR, or return the one made before for `referral_id`."""
        if kind not in _SETS:
            raise PermanentDeliveryError(f"proGres takes referrals and transfers, not {kind!r}",
                                         partner_code="unsupported_kind")
        entity_set, section = _SETS[kind]
        found = self.find(entity_set, referral_id)
        if found is not None:
            return found
        body = dict(record.get(section) or {})
        body[EXTERNAL_REFERENCE] = referral_id
        body.setdefault("progres_direction", INCOMING)
        if "progres_individualid@odata.bind" not in body:
            self._bind_individual(body, record.get("individual"))
        try:
            guid = self.client.create(entity_set, body, f"create {entity_set}")
        except PermanentDeliveryError as e:
            # Another attempt (or worker) made it between our look-up and our create.
            if e.partner_code == DUPLICATE:
                found = self.find(entity_set, referral_id)
                if found is not None:
                    return found
            raise
        return f"{entity_set}({guid.lower()})"

    def find(self, entity_set: str, referral_id: str) -> str | None:
        """The native id of the row carrying this gateway referral id, if there is one."""
        key = _key(entity_set)
        rows = self.client.rows(entity_set, f"find {entity_set} by external reference", params={
            "$select": key, "$filter": f"{EXTERNAL_REFERENCE} eq {_literal(referral_id)}",
            "$top": "2"})
        if len(rows) > 1:
            raise PermanentDeliveryError(f"proGres holds several {entity_set} rows for one "
                                         f"referral id", partner_code="duplicate_reference")
        return f"{entity_set}({rows[0][key]})" if rows else None

    def _bind_individual(self, body: dict[str, Any], individual: Any) -> None:
        if not isinstance(individual, dict):
            return
        guid = individual.get("progres_individualid")
        group = None
        if not guid and individual.get("progres_id"):
            rows = self.client.rows("progres_individuals", "find progres_individuals", params={
                "$select": "progres_individualid,_progres_registrationgroupid_value",
                "$filter": f"progres_id eq {_literal(str(individual['progres_id']))}",
                "$top": "1"})
            if rows:
                guid, group = rows[0]["progres_individualid"], rows[0].get(
                    "_progres_registrationgroupid_value")
        if isinstance(guid, str) and _GUID.match(guid):
            body["progres_individualid@odata.bind"] = f"/progres_individuals({guid})"
            if group and "progres_registrationgroupid@odata.bind" not in body:
                body["progres_registrationgroupid@odata.bind"] = \
                    f"/progres_registrationgroups({group})"

    # -- status ---------------------------------------------------------------------------

    def update_status(self, *, native_id: str, referral_id: str, status: dict[str, Any]) -> None:
        """Set the status columns of a row, stamping the gateway's referral id if missing."""
        entity_set, guid = parse_native_id(native_id)
        path = f"{entity_set}({guid})"
        plain = [k for k in status if "@" not in k]
        select = ",".join(dict.fromkeys([EXTERNAL_REFERENCE, "statuscode", *plain]))
        row = self.client.get(path, f"read {path}", params={"$select": select},
                              annotations=False)
        if not isinstance(row, dict):
            raise TransientDeliveryError(f"proGres sent an unreadable answer to read {path}")
        body = dict(status)
        reference = row.get(EXTERNAL_REFERENCE)
        if not reference:
            body[EXTERNAL_REFERENCE] = referral_id
        elif str(reference).lower() != referral_id.lower():
            raise PermanentDeliveryError(f"{path} carries another referral id",
                                         partner_code="other_reference")
        if all(not k.endswith("@odata.bind") and row.get(k) == v for k, v in body.items()):
            return  # already there: a retry after a lost answer, or a repeated event
        self.client.update(path, body, f"update status of {path}",
                           if_match=str(row.get("@odata.etag") or "*"))

    # -- alerts ---------------------------------------------------------------------------

    def alert(self, *, native_id: str, referral_id: str, alert: dict[str, Any]) -> None:
        """A task regarding the row (overdue, escalated), or the deadline's tasks completed."""
        entity_set, guid = parse_native_id(native_id)
        shown = read_alert(alert)
        if not shown.raised:
            self._complete_tasks(guid, shown, referral_id)
            return
        path = f"{entity_set}({guid})"
        select = "_ownerid_value" + (",_progres_assigneduserid_value"
                                     if entity_set == REFERRALS else "")
        row = self.client.get(path, f"read {path}", params={"$select": select},
                              annotations=False)
        if not isinstance(row, dict):
            raise TransientDeliveryError(f"proGres sent an unreadable answer to read {path}")
        task_id = str(uuid.uuid5(TASK_NAMESPACE, shown.alert_id))
        body: dict[str, Any] = {
            "activityid": task_id, "subject": shortened(shown.message, SUBJECT_LIMIT),
            "description": shortened(shown.message, DESCRIPTION_LIMIT),
            "scheduledend": _timestamp(shown.due_at),
            "prioritycode": HIGH_PRIORITY if shown.flag == "escalated" else NORMAL_PRIORITY,
            "category": ALERT_CATEGORY, "subcategory": str(shown.mark),
            f"regardingobjectid_{entity_set.removesuffix('s')}_task@odata.bind": f"/{path}"}
        owner = row.get("_progres_assigneduserid_value") or row.get("_ownerid_value")
        if isinstance(owner, str) and _GUID.match(owner):
            body["ownerid@odata.bind"] = f"/systemusers({owner})"
        try:
            self.client.create(TASKS, body, "create the alert task")
        except PermanentDeliveryError as e:
            if e.partner_code == DUPLICATE:
                return  # made by an earlier delivery of this alert
            raise
        log.info("progres_alert_task_created", referral_id=referral_id, task_id=task_id,
                 flag=shown.flag)

    def _complete_tasks(self, guid: str, shown: Alert, referral_id: str) -> None:
        """Complete the open tasks of the alert's deadline on the row `guid`."""
        tasks = self.client.rows(TASKS, "find the deadline's open tasks", params={
            "$select": "activityid,description",
            "$filter": f"_regardingobjectid_value eq {guid} and statecode eq {OPEN} and "
                       f"startswith(subcategory,{_literal(shown.mark.of_deadline)})"})
        for task in tasks:
            said = "\n".join(t for t in (task.get("description"), shown.message)
                             if isinstance(t, str) and t)
            self.client.update(f"{TASKS}({task['activityid']})", {
                "statecode": COMPLETED, "statuscode": COMPLETED_REASON,
                "description": shortened(said, DESCRIPTION_LIMIT)},
                "complete the alert task", if_match=str(task.get("@odata.etag") or "*"))
            log.info("progres_alert_task_completed", referral_id=referral_id,
                     task_id=task["activityid"])

    # -- read -----------------------------------------------------------------------------

    def read(self, *, native_id: str) -> dict[str, Any]:
        """The row and the individual, case and source record it points to."""
        entity_set, guid = parse_native_id(native_id)
        row = self._row(f"{entity_set}({guid})")
        record: dict[str, Any] = {
            _SECTIONS[entity_set]: row,
            "individual": self._related("progres_individuals",
                                        row.get("_progres_individualid_value")),
            "case": self._related("progres_cases", row.get("_progres_caseid_value")),
        }
        if entity_set == REFERRALS:
            source_set = _SOURCE_SETS.get(str(row.get(f"_regardingobjectid_value{LOGICAL_NAME}")))
            record["source_record"] = self._related(source_set,
                                                    row.get("_regardingobjectid_value"))
        return record

    def _row(self, path: str) -> dict[str, Any]:
        row = self.client.get(path, f"read {path}")
        if not isinstance(row, dict):
            raise TransientDeliveryError(f"proGres sent an unreadable answer to read {path}")
        row.pop("@odata.context", None)
        return row

    def _related(self, entity_set: str | None, guid: Any) -> dict[str, Any] | None:
        if entity_set is None or not isinstance(guid, str):
            return None
        return self._row(f"{entity_set}({guid})")

    # -- discover -------------------------------------------------------------------------

    def discover(self, *, cursor: str | None) -> Discovery:
        """Outgoing referrals and transfers and status changes since `cursor` (None: now)."""
        if cursor is None:
            start = _Cursor(newest=self._latest_change())
            _, after = self._poll(start, report=False)
            return Discovery(changes=[], cursor=after.dump())
        changes, after = self._poll(_Cursor.load(cursor), report=True)
        return Discovery(changes=changes, cursor=after.dump())

    def _latest_change(self) -> datetime | None:
        newest: datetime | None = None
        for entity_set in (REFERRALS, TRANSFERS):
            rows = self.client.rows(entity_set, f"read latest {entity_set}", params={
                "$select": "modifiedon", "$orderby": "modifiedon desc", "$top": "1"})
            if rows:
                moment = _moment(rows[0]["modifiedon"])
                newest = moment if newest is None else max(newest, moment)
        return newest

    def _poll(self, cursor: _Cursor, *, report: bool) -> tuple[list[NativeChange], _Cursor]:
        params = {"$orderby": "modifiedon asc"}
        if cursor.newest is not None:
            params["$filter"] = f"modifiedon ge {_timestamp(cursor.newest - self.cursor_overlap)}"
        rows = [(entity_set, row) for entity_set in (REFERRALS, TRANSFERS)
                for row in self.client.get_all(entity_set, f"discover {entity_set}",
                                               params=params)]
        rows.sort(key=lambda pair: str(pair[1]["modifiedon"]))
        newest = cursor.newest
        for _, row in rows:
            moment = _moment(row["modifiedon"])
            newest = moment if newest is None else max(newest, moment)
        changes: list[NativeChange] = []
        seen: set[str] = set()
        for entity_set, row in rows:
            key = _version_key(row, entity_set)
            if newest is not None and _moment(row["modifiedon"]) >= newest - self.cursor_overlap:
                seen.add(key)
            if not report or key in cursor.seen:
                continue
            change = self._change(entity_set, row)
            if change is not None:
                changes.append(change)
        return changes, _Cursor(newest=newest, seen=seen)

    def _me(self) -> str:
        """The adapter's own Dataverse user (its writes are not news to the gateway)."""
        if self._user_id is None:
            who = self.client.get("WhoAmI", "WhoAmI", annotations=False)
            if not isinstance(who, dict) or not who.get("UserId"):
                raise TransientDeliveryError("proGres sent an unreadable answer to WhoAmI")
            self._user_id = str(who["UserId"]).lower()
        return self._user_id

    def _change(self, entity_set: str, row: dict[str, Any]) -> NativeChange | None:
        guid = row[_key(entity_set)]
        native_id = f"{entity_set}({guid})"
        section = _SECTIONS[entity_set]
        changed_at = str(row["modifiedon"])
        reference = row.get(EXTERNAL_REFERENCE)
        if reference:
            if str(row.get("_modifiedby_value", "")).lower() == self._me():
                return None
            return NativeChange(kind="status", native_id=native_id, record={section: row},
                                referral_id=str(reference), changed_at=changed_at)
        if row.get("progres_direction") != OUTGOING:
            return None
        status = row.get("statuscode")
        kind: ChangeKind
        if entity_set == REFERRALS:
            routed_out = row.get("progres_interoperabilityreferralrouteto") in (
                ROUTE_TO_PARTNER, ROUTE_TO_SERVICE_PROVIDER)
            if status in REFERRAL_INTERNAL or not routed_out:
                return None
            kind = "referral" if status == REFERRAL_PENDING_ACKNOWLEDGEMENT else "status"
        else:
            if status == TRANSFER_PENDING_SUBMISSION:
                return None
            kind = "transfer" if status == TRANSFER_PENDING_DECISION else "status"
        if kind == "status":
            return NativeChange(kind=kind, native_id=native_id, record={section: row},
                                changed_at=changed_at)
        try:
            record = self.read(native_id=native_id)
        except PermanentDeliveryError as error:
            # One row proGres will not let us read whole (a table taken out of the
            # gateway's security role, a broken lookup) must not hold up every later row.
            return NativeChange(kind=kind, native_id=native_id, record={section: row},
                                changed_at=changed_at,
                                problem=f"the {kind} could not be read: {error.detail}")
        return NativeChange(kind=kind, native_id=native_id, record=record, referral_id=None,
                            changed_at=changed_at)
