"""The nDelius adapter: case transfers and temporary moves as NSIs, status by NSI status.

Native records (what `mappings/ndelius/` targets; inner field names are the sandbox API's,
codes in `sandboxes/ndelius/codes.py`):

create(referral_id, kind="transfer", record) takes
    {"subtype": "temporary_move" | None,          # None: a case transfer
     "person": {"crn", "nomsNumber"?, "name": {"forename", "surname"}, "dateOfBirth",
                "gender", "pncNumber"?, "roshLevel"?, "mappa": {"category", "level"}?,
                "manager": {"provider"?, "team", "staff"?}},   # the sender's manager; used
                                                   # only if the person is new to this nDelius
     "nsi": {"type"?, "subType"?, "referralDate"?, "expectedStartDate"?, "expectedEndDate"?,
             "notes"?, "intendedProvider", "manager": {"provider"?, "team", "staff"?}?},
     "transfer_form": {"currentPdu"?, "currentTeam"?, "receivingPdu", "receivingTeam"?,
                       "reason", "reasonDetails"?, "proposedAddress": {"addressLine1",
                       "addressLine2"?, "town", "county"?, "postcode"}?, "sentenceType",
                       "roshLevel", "mappa": {"category", "level"}?, "victimContact",
                       "victimContactDetails"?, "outstandingActions"?, "moveStartDate"?,
                       "moveEndDate"?},
     "actions": [{"description", "owner": "SENDING" | "RECEIVING", "dueDate"?}]?}
  `nsi.type` defaults to TRF01 (case transfer), or TMV01 when subtype is temporary_move.
  The referral id becomes the NSI's `externalReference`; the person is created only if this
  nDelius does not know the CRN. Returns the NSI id.

update_status(native_id, referral_id, status) takes
    {"status": "<NSI status code>", "outcome": "<outcome code>"?, "notes"?, "statusDate"?,
     "manager": {"provider"?, "team", "staff"?}?}   # manager: only when completing a transfer
  and writes the referral id into the NSI's externalReference if it has none yet.

alert(native_id, referral_id, alert) shows a deadline alert (contracts/alert.json) as a
  contact on the NSI, for whoever manages the NSI: `overdue` (contact type CBDO) and
  `escalated` (CBDE) with `alert: true`, so that it is on that practitioner's alert list;
  `cleared` clears the alert of the deadline's contacts (`PATCH /contact/{id}` with
  `{"alert": false}`) and records a CBDC contact saying why. Each contact's
  externalReference is the alert's mark (adapters.alerts), its notes the alert's message:
  a second delivery finds its contact (409, then a look-up) and makes no other.

read(native_id) and a discovered "transfer" give
    {"person": <GET /person/{crn}>, "nsi": <GET /nsi/{id} without transferForm and actions>,
     "transfer_form": <nsi.transferForm>, "actions": <nsi.actions>}
  with the NSI in the HMPPS shape: `id` (`nsiId` in the Community API), `nsiType`,
  `nsiSubType`, `nsiStatus`, `nsiOutcome` as {"code", "description"} pairs, `manager` as
  provider/team/staff pairs.

discover(cursor) polls the domain-event feed — items bare or SNS-wrapped (`Message` as a
JSON string, `MessageAttributes.eventType`, `MessageId`), a redelivered MessageId reported
once — and yields
  - kind "transfer", referral_id None: a transfer NSI raised here towards another provider
    (no external reference; `provider`, when given, is this nDelius's own provider code);
  - kind "status": a status change of an NSI carrying a gateway referral id (referral_id
    set) or of such an outgoing NSI not yet stamped (referral_id None: match on native_id),
    with record {"status", "previousStatus", "statusDate", "outcome", "notes", "nsiType",
    "externalReference", "manager": {"provider", "team", "staff"}};
  - a change with `problem` set (ids and codes only; native_id "event-<sequence>" when the
    event names no NSI) for a tracked NSI event it cannot read: the NSI answers 404/410, the
    event lacks nsiId or statusHistoryId, the history has no such entry, the message is
    not JSON. The poller keeps it as an inbound dead letter: nothing is skipped silently.
  Events of other types, NSIs of other types and changes this adapter made itself (same
  client, no username) are passed over. The NSI is read through the event's `detailUrl`
  when it points at this nDelius (never sending the token elsewhere), else by its id.
  The cursor is the feed's sequence number as a string; None polls from now. A failure
  part-way (5xx, timeouts) raises and keeps the cursor, so the next poll reports those
  changes again.
"""

import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import structlog

from adapters.alerts import Alert, Mark, read_alert, shortened
from adapters.base import ChangeKind, Discovery, NativeChange
from adapters.ndelius.client import Json, NdeliusClient, json_body, partner_code, unexpected
from gateway.errors import PermanentDeliveryError

log = structlog.get_logger()

CASE_TRANSFER, TEMPORARY_MOVE = "TRF01", "TMV01"
TRANSFER_TYPES = frozenset({CASE_TRANSFER, TEMPORARY_MOVE})
NSI_CREATED = "probation-case.nsi.created"
NSI_STATUS_CHANGED = "probation-case.nsi.status-changed"
TRACKED_EVENTS = frozenset({NSI_CREATED, NSI_STATUS_CHANGED})
# How many SNS message ids one adapter remembers to drop redeliveries across polls; a
# redelivery after a restart reaches the gateway again, which takes a repeated status as a
# no-op.
SEEN_MESSAGES = 10_000
_SAFE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_STATUS_FIELDS = ("status", "outcome", "notes", "statusDate", "manager", "rowVersion")
# Contact types of deadline alerts (sandboxes/ndelius/codes.py); the first two may be alerts.
ALERT_CONTACT_TYPES = {"overdue": "CBDO", "escalated": "CBDE", "cleared": "CBDC"}
LONDON = ZoneInfo("Europe/London")
DESCRIPTION_LIMIT = 200


class NdeliusAdapter:
    """PartnerAdapter for nDelius (HMPPS Auth client credentials, NSIs, domain events)."""

    system = "ndelius"
    channel = None
    shows_alerts = True

    def __init__(self, base_url: str, *, client_id: str, client_secret: str,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 provider: str | None = None, page_size: int = 100,
                 max_pages: int = 10) -> None:
        self._client = NdeliusClient(base_url, client_id=client_id, client_secret=client_secret,
                                     timeout=timeout, transport=transport)
        self._client_id = client_id
        self._base_url = httpx.URL(base_url)
        self._provider = provider
        self._page_size = page_size
        self._max_pages = max_pages
        self._seen: OrderedDict[str, None] = OrderedDict()

    def close(self) -> None:
        """Release connections."""
        self._client.close()

    # --- create ------------------------------------------------------------------------------
    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        """Raise the transfer NSI for `referral_id`, or find the one raised before."""
        about = f"referral {referral_id}"
        existing = self._find(referral_id)
        if existing is not None:
            return existing
        person = _section(record, "person", about)
        crn = person.get("crn")
        if not isinstance(crn, str):
            raise PermanentDeliveryError(f"ndelius record has no person.crn [{about}]")
        body = self._new_nsi(referral_id, kind, record, crn, about)
        self._ensure_person(crn, person, about)
        response = self._client.request("nsi.create", "POST", "/nsi", json=body, about=about,
                                        allow=(409,))
        if response.status_code == 409:
            # Made by an earlier attempt whose answer was lost (or a concurrent one).
            found = self._find(referral_id)
            if found is None:
                code = partner_code(response)
                raise PermanentDeliveryError(
                    f"ndelius nsi.create answered 409 ({code}) [{about}]", partner_status=409,
                    partner_code=code)
            return found
        return _nsi_id(json_body("nsi.create", response, about), "nsi.create", about)

    def _find(self, referral_id: str) -> str | None:
        """The NSI already carrying this referral id as its external reference."""
        for nsi in self._client.pages("nsi.find", "/nsi", about=f"referral {referral_id}",
                                      params={"externalReference": referral_id},
                                      size=self._page_size):
            return _nsi_id(nsi, "nsi.find", f"referral {referral_id}")
        return None

    def _new_nsi(self, referral_id: str, kind: str, record: dict[str, Any], crn: str,
                 about: str) -> Json:
        nsi = dict(_section(record, "nsi", about))
        if "type" not in nsi:
            if kind != "transfer":
                raise PermanentDeliveryError(
                    f"ndelius takes kind 'transfer' (got '{kind}') [{about}]")
            nsi["type"] = (TEMPORARY_MOVE if record.get("subtype") == "temporary_move"
                           else CASE_TRANSFER)
        nsi.update(offenderCrn=crn, externalReference=referral_id,
                   transferForm=_section(record, "transfer_form", about))
        if record.get("actions") is not None:
            nsi["actions"] = record["actions"]
        return nsi

    def _ensure_person(self, crn: str, person: dict[str, Any], about: str) -> None:
        """Record the person here if this nDelius does not know them yet."""
        found = self._client.request("person.read", "GET", _person_path(crn), about=about,
                                     allow=(404,))
        if found.status_code == 404:
            # 409: recorded meanwhile by an earlier attempt, which is what we wanted.
            self._client.request("person.create", "POST", "/person", json=person, about=about,
                                 allow=(409,))

    # --- status ------------------------------------------------------------------------------
    def update_status(self, *, native_id: str, referral_id: str, status: dict[str, Any]) -> None:
        """Set the NSI status (a repeat is a no-op at nDelius) and stamp the referral id."""
        about = f"referral {referral_id}, nsi {native_id}"
        if not isinstance(status.get("status"), str):
            raise PermanentDeliveryError(f"ndelius status record has no status code [{about}]")
        body = {k: status[k] for k in _STATUS_FIELDS if status.get(k) is not None}
        response = self._client.request("nsi.status", "PUT", f"/nsi/{_int(native_id)}/status",
                                        json=body, about=about)
        if json_body("nsi.status", response, about).get("externalReference") is None:
            # An outgoing NSI: from now on its changes come back with the referral id.
            self._client.request("nsi.update", "PATCH", f"/nsi/{_int(native_id)}",
                                 json={"externalReference": referral_id}, about=about,
                                 allow=(409,))

    # --- alerts ------------------------------------------------------------------------------
    def alert(self, *, native_id: str, referral_id: str, alert: dict[str, Any]) -> None:
        """An alert contact on the NSI (overdue, escalated), or the deadline's alerts cleared
        and a contact saying so (cleared)."""
        about = f"referral {referral_id}, nsi {native_id}"
        shown = read_alert(alert)
        nsi_id = _int(native_id)
        nsi = self._client.get_json("nsi.read", f"/nsi/{nsi_id}", about=about)
        crn = nsi.get("offenderCrn")
        if not isinstance(crn, str):
            raise unexpected("nsi.read", about)
        if not shown.raised:
            for contact in self._contacts(crn, about, nsiId=nsi_id):
                mark = Mark.found_in(contact.get("externalReference"))
                if (contact.get("alert") is True and mark is not None
                        and mark.deadline == shown.mark.deadline):
                    self._client.request("contact.update", "PATCH",
                                         f"/contact/{_int(contact.get('id'))}",
                                         json={"alert": False}, about=about)
                    log.info("ndelius_alert_cleared", referral_id=referral_id, nsi_id=nsi_id,
                             contact_id=contact.get("id"))
        self._add_alert_contact(crn, nsi_id, shown, about, referral_id)

    def _add_alert_contact(self, crn: str, nsi_id: int, shown: Alert, about: str,
                           referral_id: str) -> None:
        at = shown.at.astimezone(LONDON)
        body = {"offenderCrn": crn, "nsiId": nsi_id, "type": ALERT_CONTACT_TYPES[shown.flag],
                "date": at.date().isoformat(), "startTime": at.strftime("%H:%M"),
                "alert": shown.raised, "notes": shown.message,
                "description": shortened(shown.message, DESCRIPTION_LIMIT),
                "externalReference": str(shown.mark)}
        response = self._client.request("contact.create", "POST", "/contact", json=body,
                                        about=about, allow=(409,))
        if response.status_code == 409:
            # Made by an earlier delivery of this alert whose answer was lost.
            if not self._contacts(crn, about, externalReference=str(shown.mark)):
                code = partner_code(response)
                raise PermanentDeliveryError(
                    f"ndelius contact.create answered 409 ({code}) [{about}]",
                    partner_status=409, partner_code=code)
            return
        log.info("ndelius_alert_contact_added", referral_id=referral_id, nsi_id=nsi_id,
                 flag=shown.flag)

    def _contacts(self, crn: str, about: str, **params: Any) -> list[Json]:
        """The person's contacts matching `params` (nsiId, externalReference)."""
        response = self._client.request("contact.find", "GET", f"{_person_path(crn)}/contacts",
                                        params=params, about=about)
        try:
            found = response.json()
        except ValueError:
            found = None
        if not isinstance(found, list) or not all(isinstance(c, dict) for c in found):
            raise unexpected("contact.find", about, response.status_code)
        return found

    # --- read --------------------------------------------------------------------------------
    def read(self, *, native_id: str) -> dict[str, Any]:
        """The NSI with its person, transfer form and action list, as nDelius holds them now."""
        about = f"nsi {native_id}"
        nsi = self._client.get_json("nsi.read", f"/nsi/{_int(native_id)}", about=about)
        return self._with_person(nsi, about)

    def _with_person(self, nsi: Json, about: str) -> dict[str, Any]:
        crn = nsi.get("offenderCrn")
        if not isinstance(crn, str):
            raise unexpected("nsi.read", about)
        person = self._client.get_json("person.read", _person_path(crn), about=about)
        return {"person": person,
                "nsi": {k: v for k, v in nsi.items() if k not in ("transferForm", "actions")},
                "transfer_form": nsi.get("transferForm"), "actions": nsi.get("actions", [])}

    # --- discover ----------------------------------------------------------------------------
    def discover(self, *, cursor: str | None) -> Discovery:
        """Outgoing transfers and status changes from the domain-event feed since `cursor`."""
        if cursor is None:
            head = self._client.get_json("events.read", "/events", params={"size": 1})
            return Discovery(changes=[], cursor=_cursor(head, "latest"))
        after = _int(cursor)
        changes: list[NativeChange] = []
        nsis: dict[int, Json | str] = {}  # one read per NSI per poll
        for _ in range(self._max_pages):
            page = self._client.get_json("events.read", "/events", params={
                "after": after, "size": self._page_size,
                "eventType": [NSI_CREATED, NSI_STATUS_CHANGED]})
            content = page.get("content")
            if not isinstance(content, list):
                raise unexpected("events.read")
            for item in content:
                change = self._change(item, nsis)
                if change is not None:
                    changes.append(change)
            after = _int(_cursor(page, "cursor"))
            if not page.get("hasMore"):
                break
        return Discovery(changes=changes, cursor=str(after))

    def _change(self, item: Any, nsis: dict[int, Json | str]) -> NativeChange | None:
        """The change one feed item reports: None for what the gateway does not track, a
        change with `problem` set for a tracked event it cannot read — never silence."""
        event = _unwrap(item)
        if event.message_id is not None:
            if event.message_id in self._seen:
                return None  # an SNS redelivery of a message already reported
            self._remember(event.message_id)
        if event.event_type not in TRACKED_EVENTS:
            return None
        info = event.info
        if info.get("nsiType") not in TRANSFER_TYPES and info.get("nsiType") is not None:
            return None  # an NSI of another kind (e.g. approved premises)
        if info.get("updatedBy") == self._client_id:
            return None  # our own change, coming back round
        reference = info.get("externalReference")
        reference = reference if isinstance(reference, str) else None
        raw_id = info.get("nsiId")
        nsi_id = int(raw_id) if isinstance(raw_id, int | str) and str(raw_id).isdigit() else None
        outgoing = (reference is None and info.get("raisedByProvider") != info.get(
            "intendedProvider") and self._provider in (None, info.get("raisedByProvider")))
        created = event.event_type == NSI_CREATED
        kind: ChangeKind = "transfer" if created else "status"
        native_id = str(nsi_id) if nsi_id is not None else f"event-{event.sequence}"

        def problem(why: str) -> NativeChange:
            return NativeChange(kind=kind, native_id=native_id, referral_id=reference,
                                changed_at=event.occurred_at, problem=f"{event.event_type} "
                                f"{event.label}: {why}", record=event.ids(nsi_id))

        if event.problem is not None:
            return problem(event.problem)
        # An event without the ids to judge it by is judged by its NSI, never passed over.
        judged = all(key in info for key in ("raisedByProvider", "intendedProvider"))
        if judged and created and not outgoing:
            return None  # raised here towards here, or by the gateway itself
        if judged and not created and reference is None and not outgoing:
            return None  # an NSI never exchanged through the gateway
        if nsi_id is None:
            return problem("the event has no numeric nsiId")
        nsi = self._read_once(nsi_id, event.detail_url, nsis)
        if isinstance(nsi, str):
            return problem(nsi)
        if not judged:
            reference = nsi.get("externalReference")
            reference = reference if isinstance(reference, str) else None
            raised = _code(nsi.get("raisedByProvider"))
            outgoing = (reference is None and raised != _code(nsi.get("intendedProvider"))
                        and self._provider in (None, raised))
            if (created and not outgoing) or (reference is None and not outgoing):
                return None
        if _code(nsi.get("nsiType")) not in TRANSFER_TYPES:
            return None  # the event did not say, the NSI does: not a transfer
        if created:
            return NativeChange(kind="transfer", native_id=native_id,
                                record=self._with_person(nsi, f"nsi {nsi_id}"),
                                changed_at=event.occurred_at)
        history_id = info.get("statusHistoryId")
        if not isinstance(history_id, int):
            return problem("the event has no statusHistoryId")
        status = _status_record(nsi, info, history_id)
        if status is None:
            return problem(f"nsi {nsi_id} has no status history entry {history_id}")
        return NativeChange(kind="status", native_id=native_id, record=status,
                            referral_id=reference, changed_at=event.occurred_at)

    def _remember(self, message_id: str) -> None:
        self._seen[message_id] = None
        while len(self._seen) > SEEN_MESSAGES:
            self._seen.popitem(last=False)

    def _read_once(self, nsi_id: int, detail_url: str | None,
                   cache: dict[int, Json | str]) -> Json | str:
        """The NSI as nDelius answers it, read at most once per poll, through the event's
        detail URL when it points at this nDelius; a text saying why when it is gone."""
        if nsi_id not in cache:
            about = f"nsi {nsi_id}"
            path = _local_path(self._base_url, detail_url) or f"/nsi/{nsi_id}"
            response = self._client.request("nsi.read", "GET", path, about=about,
                                            allow=(404, 410))
            if response.status_code in (404, 410):
                cache[nsi_id] = f"nsi {nsi_id} answered {response.status_code}"
            else:
                body = json_body("nsi.read", response, about)
                cache[nsi_id] = (body if _nsi_number(body) == nsi_id
                                 else f"nsi {nsi_id} answered another or no NSI id")
        return cache[nsi_id]


@dataclass(frozen=True)
class _Event:
    """One feed item, bare or SNS-wrapped, as far as it could be read."""

    event_type: str | None
    info: Json
    sequence: str | None
    message_id: str | None
    occurred_at: str | None
    detail_url: str | None
    problem: str | None = None

    @property
    def label(self) -> str:
        return (f"message {self.message_id}" if self.message_id
                else f"event {self.sequence or '?'}")

    def ids(self, nsi_id: int | None) -> Json:
        """What a dead letter may keep of the event: ids and codes, no values."""
        return {"eventType": self.event_type, "sequence": self.sequence,
                "messageId": self.message_id, "nsiId": nsi_id,
                "statusHistoryId": _plain(self.info.get("statusHistoryId")),
                "nsiType": _plain(self.info.get("nsiType"))}


def _unwrap(item: Any) -> _Event:
    """A feed item as a domain event: bare, or wrapped by SNS (`Message` as a JSON string,
    `eventType` in `MessageAttributes`, `MessageId`)."""
    if not isinstance(item, dict):
        return _Event(None, {}, None, None, None, None, problem="the feed item is not an object")
    sequence = _plain(item.get("sequence"))
    sequence = str(sequence) if sequence is not None else None
    message_id = item.get("MessageId")
    message_id = message_id if isinstance(message_id, str) and message_id else None
    attribute = item.get("MessageAttributes")
    attribute = attribute.get("eventType") if isinstance(attribute, dict) else None
    declared = attribute.get("Value") if isinstance(attribute, dict) else None
    body: Any = item
    problem = None
    if "Message" in item:
        try:
            body = json.loads(item["Message"])
        except (TypeError, ValueError):
            body, problem = {}, "the SNS Message is not JSON"
    if not isinstance(body, dict):
        body, problem = {}, "the event is not an object"
    event_type = body.get("eventType", declared)
    info = body.get("additionalInformation")
    if not isinstance(info, dict):
        info = {}
        if problem is None and event_type in TRACKED_EVENTS:
            problem = "the event has no additionalInformation"
    occurred, detail = body.get("occurredAt"), body.get("detailUrl")
    return _Event(event_type if isinstance(event_type, str) else None, info, sequence,
                  message_id, occurred if isinstance(occurred, str) else None,
                  detail if isinstance(detail, str) and detail else None, problem)


def _local_path(base: httpx.URL, url: str | None) -> str | None:
    """The path of a detail URL on this nDelius; None for any other host, which never gets
    our token."""
    if url is None:
        return None
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        return None
    if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
        return None
    path = target.raw_path.decode("ascii")
    prefix = base.raw_path.decode("ascii").rstrip("/")
    # The client puts its base URL's path in front of every path it is given.
    return path[len(prefix):] if prefix and path.startswith(prefix + "/") else (
        path if not prefix else None)


def _plain(value: Any) -> str | int | None:
    """A value fit for a dead letter: a short code or number, else nothing."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return value if isinstance(value, str) and _SAFE.match(value) else None


def _status_record(nsi: Json, info: Json, history_id: int) -> Json | None:
    """The status change an event names, from the NSI's status history."""
    history = nsi.get("statusHistory")
    entry = next((h for h in history if isinstance(h, dict)
                  and h.get("id") == history_id), None) \
        if isinstance(history, list) else None
    if entry is None:
        return None
    manager = nsi.get("manager") or {}
    return {
        "status": _code(entry.get("status")),
        "previousStatus": info.get("previousStatus"),
        "statusDate": entry.get("statusDate"),
        "outcome": _code(entry.get("outcome")),
        "notes": entry.get("notes"),
        "nsiType": _code(nsi.get("nsiType")),
        "externalReference": nsi.get("externalReference"),
        "manager": {part: _code(manager.get(part)) for part in ("provider", "team", "staff")},
    }


def _code(pair: Any) -> str | None:
    if isinstance(pair, dict) and isinstance(pair.get("code"), str):
        code: str = pair["code"]
        return code
    return None


def _section(record: dict[str, Any], key: str, about: str) -> dict[str, Any]:
    value = record.get(key)
    if not isinstance(value, dict):
        raise PermanentDeliveryError(f"ndelius record has no '{key}' object [{about}]")
    return value


def _cursor(page: Json, key: str) -> str:
    cursor = page.get(key)
    if not isinstance(cursor, str | int):
        raise unexpected("events.read")
    return str(cursor)


def _person_path(crn: str) -> str:
    return f"/person/{quote(crn, safe='')}"


def _nsi_id(nsi: Json, operation: str, about: str) -> str:
    value = _nsi_number(nsi)
    if value is None:
        raise unexpected(operation, about)
    return str(value)


def _nsi_number(nsi: Json) -> int | None:
    """The NSI's id: `id` in the HMPPS integration APIs, `nsiId` in the Community API."""
    value = _pick(nsi, "id", "nsiId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _pick(record: Json, *keys: str) -> Any:
    """The first of `keys` the record has a value for (the real APIs name fields two ways)."""
    return next((record[k] for k in keys if record.get(k) is not None), None)


def _int(value: Any) -> int:
    """A native id or cursor as an integer (it goes into a URL, so nothing else passes)."""
    try:
        return int(str(value))
    except ValueError:
        raise PermanentDeliveryError("ndelius id or cursor is not a number") from None
