"""The Primero v2 adapter: referrals and transfers as Primero transitions of a case.

Native records (what the mapping files in `mappings/primero/` read and write):

- **create** input, and **read** / **discover** output: the case and its transition,
  the transition under the key of its kind (`"referral"` or `"transfer"`): ::

    {"case": {...Primero case fields: module_id, name_first, name_last, sex,
              date_of_birth, age, protection_concerns, risk_level,
              consent_for_services, disclosure_other_orgs, consent_reporting,
              services_section: [{unique_id?, service_type, service_response_type, ...}],
              ...},
     "referral" | "transfer": {transitioned_to?, transitioned_to_agency?,
                               transitioned_to_remote?, remote?, service?,
                               service_record_id?, notes?, consent_overridden?,
                               consent_individual_transfer?, authorized_role_unique_id?}}

  On create the transition part may be left out. The adapter sets `case.id` (a UUID
  derived from the gateway's referral id) and `case.casebridge_referral_id`; a services
  row without `unique_id` gets a derived one; a transition without `transitioned_to`
  (and not `remote`) goes to the deployment's `intake_user`; a referral without
  `service_record_id` is linked to the first services row whose `service_type` equals
  its `service`, or, without `service`, to the first row. What read and discover
  return holds the full case and the full transition as Primero shows them (`id`,
  `type` Referral or Transfer, `status`, `transitioned_by`, `transitioned_to`,
  `transitioned_by_user_agency`, `transitioned_to_agency`, `created_at`,
  `responded_at`, `rejected_reason`, `rejection_note`, …; the case with `owned_by`,
  `previously_owned_by`, `transfer_status`, `assigned_user_names`, `last_updated_at`).

- **update_status** input: ``{"status"?: "accepted" | "rejected" | "done" | "revoked" |
  "in_progress", "rejected_reason"?: str, "rejection_note"?: str, "case"?: {...},
  "flag"?: "delivery_failed", "resolve_flag"?: "delivery_failed"}``;
  `case`, when given, is PATCHed onto the case first (e.g. the deployment's
  `casebridge_new_owner_*` fields: who holds a transferred case at the receiver). `done` (with
  `rejection_note`, Primero's name for the provider's notes) exists for referrals only;
  a referral is revoked by DELETE, a transfer by PATCH; `in_progress` is where every
  transition starts and leaves nothing to tell Primero (no call is made). Primero
  answers a move its state machine forbids with 200 and the transition unchanged; the
  adapter raises that as a `PermanentDeliveryError` (`partner_code`
  `transition_not_allowed`).
  `"flag": "delivery_failed"` (without a status: the gateway gave up delivering the
  caseworker's referral or transfer, which is no answer of the receiver's) flags the case:
  "CaseBridge could not deliver referral <id> to <agency>; operations staff are on it",
  the agency being the transition's `transitioned_to_agency` (or `transitioned_to_remote`);
  ids and names only. `"resolve_flag": "delivery_failed"` (sent with `delivered`) resolves
  that flag once a re-drive has delivered it. Both find the flag by its mark
  (`urn:casebridge:undelivered:<digest of the referral id>`), so a flag is raised once
  while one is up and resolved once. An empty record (a re-drive: submitted again)
  makes no call.

- **native id**: ``"<case uuid>/referrals/<transition uuid>"`` or
  ``"<case uuid>/transfers/<transition uuid>"`` — the transition's path under
  `/api/v2/cases/`.

- **alert** (`contracts/alert.json`) shows on the case as a Primero **flag**: `overdue`
  and `escalated` each flag the case (`POST /cases/{id}/flags`, the flag's date the day
  it went up, its reason the alert's message followed by the alert's mark, `adapters.
  alerts`, within the 255 characters Primero shows); `cleared` resolves every flag of
  that deadline still up (`PATCH /cases/{id}/flags/{flag id}` with an `unflag_message`).
  A flag already carrying the alert's mark is not made again; a resolved one is not
  resolved again.

- **External reference**: the case field `casebridge_referral_id`. A case that arrives
  through CaseBridge belongs to one referral or transfer, and its id is derived from the
  referral id: create makes the case under that id straight away (two calls for a new
  referral: the case, then its transition). A repeated attempt (an answer lost, a worker
  stopped before it recorded the delivery) is answered 409 by Primero, and then create
  looks on that case for a transition of the kind made by the adapter's own user before
  making one: never a second case or a second transition.

- **discover** reports, for each case changed since the cursor
  (`last_updated_at=<cursor>..`, ordered by `last_updated_at`): `referral` / `transfer`
  for a transition raised in this Primero to the gateway's user (or, with
  `include_remote`, any `remote: true` one), once; and `status` for every such
  transition, and every transition the adapter made on a case carrying a
  `casebridge_referral_id` (then `referral_id` is that id), whose status is not
  `in_progress`. Primero keeps no change time per transition, so a status is reported
  whenever its case changed: the gateway treats a repeated status as idempotent. The
  cursor is opaque JSON: the newest `last_updated_at` seen and what was already
  reported in the last `cursor_overlap` seconds, so that equal timestamps and late
  commits are neither missed nor reported twice.
"""

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog

from adapters.alerts import Alert, Mark, read_alert, shortened
from adapters.base import ChangeKind, Discovery, NativeChange
from adapters.primero.client import PrimeroClient, data_of, json_of, record, records
from gateway.errors import PermanentDeliveryError

log = structlog.get_logger()

EXTERNAL_REFERENCE = "casebridge_referral_id"
CASE_NAMESPACE = uuid.UUID("9f1c7a52-3a0e-4c59-8d7e-6a2b1f4c0d11")
_PATHS = {"referral": "referrals", "transfer": "transfers"}
_TYPES = {"referrals": "Referral", "transfers": "Transfer"}
_KINDS: dict[str, ChangeKind] = {"Referral": "referral", "Transfer": "transfer"}
_STATUSES = {"referrals": ("accepted", "rejected", "done", "revoked"),
             "transfers": ("accepted", "rejected", "revoked")}
# A repeated update finds the transition at or past the status asked for.
_REACHED = {"accepted": ("accepted", "done")}
_EPOCH = "1970-01-01T00:00:00.000Z"
# Primero's flag dialog shows a reason of at most this many characters.
FLAG_REASON = 255
# The flag a failed delivery raises on the sender's case (the mapping's "flag" value), and
# the mark its reason carries, followed by a digest of the referral id.
UNDELIVERED = "delivery_failed"
UNDELIVERED_MARK = "urn:casebridge:undelivered:"
# The gateway stores a partner's cursor in a column of this many characters.
MAX_CURSOR = 500


class PrimeroAdapter:
    """Referrals and transfers as transitions of a case in one Primero v2 instance."""

    system = "primero"
    channel = None
    shows_alerts = True

    def __init__(self, base_url: str, *, user: str, password: str, timeout: float = 10.0,
                 per: int = 100, transport: httpx.BaseTransport | None = None,
                 gateway_user: str | None = None, intake_user: str | None = None,
                 include_remote: bool = True, cursor_overlap: float = 2.0) -> None:
        """Connect as `user`; `gateway_user` (default `user`) is the Primero account that
        stands for CaseBridge as a recipient, `intake_user` the local user who receives
        what arrives through CaseBridge when the record names nobody."""
        self._intake_user = intake_user
        self._client = PrimeroClient(base_url, user=user, password=password, timeout=timeout,
                                     transport=transport)
        self._per = max(1, min(per, 1000))
        self._gateway_user = gateway_user or user
        self._include_remote = include_remote
        self._overlap = timedelta(seconds=cursor_overlap)

    def close(self) -> None:
        """Release connections."""
        self._client.close()

    # create, read, update

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        """Make the case and its referral or transfer, or find the ones made before."""
        path = _PATHS.get(kind)
        if path is None:
            raise PermanentDeliveryError(f"Primero has no transition for kind {kind!r}",
                                         partner_code="unsupported_kind")
        # The case's id derives from the referral id: an earlier attempt's case answers
        # the POST with 409, and no lookup by referral id is needed before making it.
        case, new = self._make_case(referral_id, dict(record.get("case") or {}))
        # A case this call made has no referral or transfer yet: nothing to look for.
        made = None if new else self._transition_by_adapter(case["id"], _TYPES[path])
        if made is not None:
            log.info("primero_record_found", referral_id=referral_id, case_id=case["id"],
                     transition_id=made["id"])
            return _native_id(case["id"], path, made["id"])
        params = self._completed(dict(record.get(kind) or {}), case, kind)
        response = self._client.request("POST", f"/cases/{case['id']}/{path}",
                                        body={"data": params})
        made = _record(data_of(response, f"POST /cases/{case['id']}/{path}"), path)
        log.info("primero_record_created", referral_id=referral_id, case_id=case["id"],
                 transition_id=made["id"])
        return _native_id(case["id"], path, made["id"])

    def read(self, *, native_id: str) -> dict[str, Any]:
        """The case and the transition as Primero holds them now."""
        case_id, path, transition_id = _parse_native_id(native_id)
        case = record(self._client.get_data(f"/cases/{case_id}"), f"GET /cases/{case_id}")
        kind = _KINDS[_TYPES[path]]
        return {"case": case, kind: self._transition(case_id, path, transition_id)}

    def update_status(self, *, native_id: str, referral_id: str, status: dict[str, Any]) -> None:
        """Accept, reject, complete or revoke the transition; flag the case when its
        delivery failed, and resolve that flag once it is delivered."""
        case_id, path, transition_id = _parse_native_id(native_id)
        target = status.get("status")
        flag, resolve = status.get("flag"), status.get("resolve_flag")
        for told in (flag, resolve):
            if told is not None and told != UNDELIVERED:
                raise PermanentDeliveryError(f"Primero adapter has no flag {told!r} to show",
                                             partner_code="unsupported_flag")
        if flag is not None:
            self._flag_undelivered(case_id, path, transition_id, referral_id)
        if resolve is not None:
            self._resolve_undelivered(case_id, path, referral_id)
        if target == "in_progress" or (target is None and (flag or resolve or not status)):
            return
        if target not in _STATUSES[path]:
            raise PermanentDeliveryError(
                f"Primero {_TYPES[path]} has no status {target!r} to set",
                partner_code="unsupported_status")
        fields = status.get("case")
        if isinstance(fields, dict) and fields:
            # First, while the gateway user can still write the case: accepting a transfer
            # moves it, and what is written here says to whom it moved at the other end.
            self._client.request("PATCH", f"/cases/{case_id}", body={"data": fields})
        where = f"/cases/{case_id}/{path}/{transition_id}"
        if path == "referrals" and target == "revoked":
            response = self._client.request("DELETE", where)
        else:
            body = {k: status[k] for k in ("status", "rejected_reason", "rejection_note")
                    if status.get(k) is not None}
            response = self._client.request("PATCH", where, body={"data": body})
        now = record(data_of(response, f"PATCH {where}"), f"PATCH {where}").get("status")
        if now not in _REACHED.get(str(target), (target,)):
            raise PermanentDeliveryError(
                f"Primero kept {_TYPES[path]} {transition_id} {now}: it does not allow "
                f"{target} from there", partner_status=response.status_code,
                partner_code="transition_not_allowed")
        log.info("primero_status_set", referral_id=referral_id, transition_id=transition_id,
                 status=target)

    def alert(self, *, native_id: str, referral_id: str, alert: dict[str, Any]) -> None:
        """Flag the case (overdue, escalated), or resolve the deadline's flags (cleared)."""
        case_id, _, _ = _parse_native_id(native_id)
        shown = read_alert(alert)
        where = f"/cases/{case_id}/flags"
        flags = [(flag, Mark.found_in(flag.get("message")))
                 for flag in records(self._client.get_data(where), f"GET {where}")]
        if shown.raised:
            if any(mark is not None and mark.alert == shown.mark.alert for _, mark in flags):
                return  # flagged by an earlier delivery of this alert
            body = {"date": shown.at.date().isoformat(), "message": _reason(shown)}
            made = record(data_of(self._client.request("POST", where, body={"data": body}),
                                  f"POST {where}"), f"POST {where}")
            log.info("primero_case_flagged", referral_id=referral_id, case_id=case_id,
                     flag_id=made.get("id"), flag=shown.flag)
            return
        for flag, mark in flags:
            if mark is None or mark.deadline != shown.mark.deadline or flag.get("removed"):
                continue
            self._client.request("PATCH", f"{where}/{flag['id']}",
                                 body={"data": {"unflag_message": _reason(shown)}})
            log.info("primero_flag_resolved", referral_id=referral_id, case_id=case_id,
                     flag_id=flag["id"])

    def _undelivered_flags(self, case_id: str, referral_id: str
                           ) -> tuple[str, list[dict[str, Any]]]:
        """The mark of this referral's delivery-failed flag, and its flags still up."""
        mark = f"{UNDELIVERED_MARK}{_digest(referral_id, 16)}"
        where = f"/cases/{case_id}/flags"
        up = [flag for flag in records(self._client.get_data(where), f"GET {where}")
              if mark in str(flag.get("message") or "") and not flag.get("removed")]
        return mark, up

    def _flag_undelivered(self, case_id: str, path: str, transition_id: str,
                          referral_id: str) -> None:
        """Flag the sender's case: CaseBridge could not deliver its referral or transfer."""
        mark, up = self._undelivered_flags(case_id, referral_id)
        if up:
            return  # flagged already (this failure told twice, or a re-drive failed again)
        try:
            transition = self._transition(case_id, path, transition_id)
        except PermanentDeliveryError:
            transition = {}
        agency = transition.get("transitioned_to_agency") or transition.get(
            "transitioned_to_remote")
        to = f" to {agency}" if isinstance(agency, str) and agency else ""
        text = (f"CaseBridge could not deliver {_KINDS[_TYPES[path]]} {referral_id}{to}; "
                f"operations staff are on it.")
        where = f"/cases/{case_id}/flags"
        body = {"date": datetime.now(UTC).date().isoformat(), "message": _marked(text, mark)}
        made = record(data_of(self._client.request("POST", where, body={"data": body}),
                              f"POST {where}"), f"POST {where}")
        log.info("primero_case_flagged", referral_id=referral_id, case_id=case_id,
                 flag_id=made.get("id"), flag=UNDELIVERED)

    def _resolve_undelivered(self, case_id: str, path: str, referral_id: str) -> None:
        """Resolve the delivery-failed flag: a re-drive delivered it after all."""
        mark, up = self._undelivered_flags(case_id, referral_id)
        text = f"CaseBridge has now delivered {_KINDS[_TYPES[path]]} {referral_id}."
        for flag in up:
            where = f"/cases/{case_id}/flags/{flag['id']}"
            self._client.request("PATCH", where,
                                 body={"data": {"unflag_message": _marked(text, mark)}})
            log.info("primero_flag_resolved", referral_id=referral_id, case_id=case_id,
                     flag_id=flag["id"], flag=UNDELIVERED)

    def _completed(self, params: dict[str, Any], case: dict[str, Any], kind: str
                   ) -> dict[str, Any]:
        """The transition with the recipient and, for a referral, the services row filled."""
        if not params.get("transitioned_to") and not params.get("remote") and self._intake_user:
            params["transitioned_to"] = self._intake_user
        if kind != "referral" or params.get("service_record_id"):
            return params
        rows = [r for r in case.get("services_section") or [] if isinstance(r, dict)]
        wanted = params.get("service")
        for row in rows:
            if wanted is None or row.get("service_type") == wanted:
                return {**params, "service": row.get("service_type"),
                        "service_record_id": row.get("unique_id")}
        return params

    # discover

    def discover(self, *, cursor: str | None) -> Discovery:
        """Outgoing referrals and transfers, and status changes, since `cursor`."""
        state = _Cursor.parse(cursor) if cursor else None
        report = state is not None
        if state is None:
            state = _Cursor(since=self._newest_change())
        changes: list[NativeChange] = []
        low = _format(_parse(state.since) - self._overlap)
        newest = state.since
        query_from, page = low, 1
        while True:
            rows = self._changed_cases(query_from, page)
            for case in rows:
                stamp = str(case.get("last_updated_at") or _EPOCH)
                if state.seen_case(case["id"], stamp):
                    continue
                if not report and _parse(stamp) > _parse(state.since):
                    continue  # changed after "now": the next poll reports it
                state.see_case(case["id"], stamp)
                newest = max(newest, stamp, key=_parse)
                found = self._changes_of(case, low, state)
                if report:
                    changes += found
            if len(rows) < self._per:
                break
            last = str(rows[-1].get("last_updated_at") or _EPOCH)
            if _parse(last) == _parse(query_from):
                page += 1  # a whole page at one instant: move on by page number
            else:
                query_from, page = last, 1
        return Discovery(changes=changes, cursor=state.advanced(newest, self._overlap))

    def _changed_cases(self, since: str, page: int) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {
            "last_updated_at": f"{since}..", "order_by": "last_updated_at", "order": "asc",
            "page": page, "per": self._per}
        response = self._client.request("GET", "/cases", params=params)
        return records(json_of(response, "GET /cases").get("data"), "GET /cases")

    def _newest_change(self) -> str:
        rows = records(self._client.get_data(
            "/cases", {"order_by": "last_updated_at", "order": "desc", "per": 1}), "GET /cases")
        return str(rows[0].get("last_updated_at") or _EPOCH) if rows else _EPOCH

    def _changes_of(self, case: dict[str, Any], low: str, state: "_Cursor"
                    ) -> list[NativeChange]:
        changes: list[NativeChange] = []
        where = f"/cases/{case['id']}/transitions"
        for transition in records(self._client.get_data(where, {"types": "Referral,Transfer"}),
                                  f"GET {where}"):
            kind = _KINDS.get(str(transition.get("type")))
            if kind is None:
                continue
            outgoing = self._is_outgoing(transition)
            reference = case.get(EXTERNAL_REFERENCE)
            incoming = bool(reference) and transition.get("transitioned_by") == self._client.user
            if not (outgoing or incoming):
                continue
            native_id = _native_id(case["id"], _PATHS[kind], transition["id"])
            native = {"case": case, kind: transition}
            created = str(transition.get("created_at") or _EPOCH)
            if (outgoing and not state.raised_before(transition["id"])
                    and _parse(created) >= _parse(low)):
                state.see_raised(transition["id"], created)
                changes.append(NativeChange(kind=kind, native_id=native_id, record=native,
                                            changed_at=created))
            if transition.get("status") != "in_progress":
                changes.append(NativeChange(
                    kind="status", native_id=native_id, record=native,
                    referral_id=str(reference) if incoming else None,
                    changed_at=str(transition.get("responded_at")
                                   or case.get("last_updated_at"))))
        return changes

    def _is_outgoing(self, transition: dict[str, Any]) -> bool:
        if transition.get("transitioned_by") == self._client.user:
            return False
        if transition.get("transitioned_to") == self._gateway_user:
            return True
        return self._include_remote and transition.get("remote") is True

    # look-ups

    def _make_case(self, referral_id: str, fields: dict[str, Any]
                   ) -> tuple[dict[str, Any], bool]:
        """The case's fields, and whether this call made it (not an earlier attempt)."""
        case_id = str(uuid.uuid5(CASE_NAMESPACE, referral_id))
        fields.update(id=case_id, **{EXTERNAL_REFERENCE: referral_id})
        rows = fields.get("services_section")
        if isinstance(rows, list):
            fields["services_section"] = [
                {**row, "unique_id": row.get("unique_id")
                 or str(uuid.uuid5(CASE_NAMESPACE, f"{referral_id}/service/{n}"))}
                for n, row in enumerate(rows) if isinstance(row, dict)]
        # 409: the case was made by an earlier attempt whose answer never came back.
        response = self._client.request("POST", "/cases", body={"data": fields},
                                        accept=frozenset({409}))
        return fields, response.status_code != 409

    def _transition_by_adapter(self, case_id: str, kind: str) -> dict[str, Any] | None:
        where = f"/cases/{case_id}/transitions"
        mine = [t for t in records(self._client.get_data(where, {"types": kind}), f"GET {where}")
                if t.get("type") == kind and t.get("transitioned_by") == self._client.user]
        return min(mine, key=lambda t: str(t.get("created_at"))) if mine else None

    def _transition(self, case_id: str, path: str, transition_id: str) -> dict[str, Any]:
        where = f"/cases/{case_id}/{path}"
        for transition in records(self._client.get_data(where), f"GET {where}"):
            if transition.get("id") == transition_id:
                return transition
        raise PermanentDeliveryError(f"Primero has no {_TYPES[path]} {transition_id} on case "
                                     f"{case_id}", partner_status=404, partner_code="Not Found")


@dataclass
class _Cursor:
    """Where discovery stands: the newest change seen and what was seen near it.

    What was seen is kept as short digests with the time seen (milliseconds before
    `since`), so that a burst of cases changed at one instant still fits the gateway's
    cursor column (`MAX_CURSOR` characters). Should it not, the oldest entries go first:
    forgetting one only reports a change again, which the gateway takes as a repeat.
    """

    since: str
    cases: dict[str, int] = field(default_factory=dict)   # digest of case id@stamp → ms
    raised: dict[str, int] = field(default_factory=dict)  # digest of transition id → ms

    @classmethod
    def parse(cls, cursor: str) -> "_Cursor":
        if not cursor.startswith("{"):
            _parse(cursor)
            return cls(since=cursor)  # a bare timestamp, e.g. set by an operator
        state = json.loads(cursor)
        return cls(since=state["since"], cases=dict(state.get("c", {})),
                   raised=dict(state.get("r", {})))

    def seen_case(self, case_id: str, stamp: str) -> bool:
        return _digest(f"{case_id}@{stamp}") in self.cases

    def see_case(self, case_id: str, stamp: str) -> None:
        self.cases[_digest(f"{case_id}@{stamp}")] = self._ms(stamp)

    def raised_before(self, transition_id: str) -> bool:
        return _digest(transition_id) in self.raised

    def see_raised(self, transition_id: str, created: str) -> None:
        self.raised[_digest(transition_id)] = self._ms(created)

    def _ms(self, stamp: str) -> int:
        return round((_parse(self.since) - _parse(stamp)).total_seconds() * 1000)

    def advanced(self, newest: str, overlap: timedelta) -> str:
        """The next cursor: `newest`, keeping only what lies within the overlap of it."""
        shift = round((_parse(newest) - _parse(self.since)).total_seconds() * 1000)
        limit = overlap.total_seconds() * 1000
        cases = {k: v + shift for k, v in self.cases.items() if v + shift <= limit}
        raised = {k: v + shift for k, v in self.raised.items() if v + shift <= limit}
        while True:
            text = json.dumps({"since": newest, "c": cases, "r": raised},
                              separators=(",", ":"))
            if len(text) <= MAX_CURSOR or not (cases or raised):
                return text
            # Keep the raised transitions longest: forget the oldest case first.
            forget = cases if cases else raised
            del forget[max(forget, key=lambda k: forget[k])]


def _digest(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _parse(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _format(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _native_id(case_id: str, path: str, transition_id: str) -> str:
    return f"{case_id}/{path}/{transition_id}"


def _parse_native_id(native_id: str) -> tuple[str, str, str]:
    parts = native_id.split("/")
    if len(parts) != 3 or parts[1] not in _STATUSES or not all(parts):
        raise PermanentDeliveryError("Not a Primero native id: expected "
                                     "<case uuid>/referrals|transfers/<transition uuid>",
                                     partner_code="invalid_native_id")
    return parts[0], parts[1], parts[2]


def _reason(shown: Alert) -> str:
    """A flag's reason (or resolve reason): the alert's message, then its mark."""
    mark = f" ({shown.mark})"
    return shortened(shown.message, FLAG_REASON - len(mark)) + mark


def _marked(text: str, mark: str) -> str:
    """A flag's reason made by the adapter itself: `text`, then its mark."""
    return shortened(text, FLAG_REASON - len(mark) - 3) + f" ({mark})"


def _record(value: Any, path: str) -> dict[str, Any]:
    made = record(value, f"POST {path}")
    if not isinstance(made.get("id"), str):
        raise PermanentDeliveryError(f"Primero answered POST {path} without an id",
                                     partner_code="no_id")
    return made
