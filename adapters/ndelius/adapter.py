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

read(native_id) and a discovered "transfer" give
    {"person": <GET /person/{crn}>, "nsi": <GET /nsi/{id} without transferForm and actions>,
     "transfer_form": <nsi.transferForm>, "actions": <nsi.actions>}
  with codes as {"code", "description"} pairs (e.g. nsi.status.code, nsi.type.code).

discover(cursor) polls the domain-event feed and yields
  - kind "transfer", referral_id None: a transfer NSI raised here towards another provider
    (no external reference; `provider`, when given, is this nDelius's own provider code);
  - kind "status": a status change of an NSI carrying a gateway referral id (referral_id
    set) or of such an outgoing NSI not yet stamped (referral_id None: match on native_id),
    with record {"status", "previousStatus", "statusDate", "outcome", "notes", "nsiType",
    "externalReference", "manager": {"provider", "team", "staff"}};
  changes this adapter made itself (same client, no username) are not reported back.
  The cursor is the feed's sequence number as a string; None polls from now. A failure
  part-way raises and keeps the cursor, so the next poll reports those changes again.
"""

import json
from typing import Any
from urllib.parse import quote

import httpx

from adapters.base import Discovery, NativeChange
from adapters.ndelius.client import Json, NdeliusClient, json_body, partner_code, unexpected
from gateway.errors import PermanentDeliveryError

CASE_TRANSFER, TEMPORARY_MOVE = "TRF01", "TMV01"
TRANSFER_TYPES = frozenset({CASE_TRANSFER, TEMPORARY_MOVE})
NSI_CREATED = "probation-case.nsi.created"
NSI_STATUS_CHANGED = "probation-case.nsi.status-changed"
_STATUS_FIELDS = ("status", "outcome", "notes", "statusDate", "manager", "rowVersion")


class NdeliusAdapter:
    """PartnerAdapter for nDelius (HMPPS Auth client credentials, NSIs, domain events)."""

    system = "ndelius"

    def __init__(self, base_url: str, *, client_id: str, client_secret: str,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 provider: str | None = None, page_size: int = 100,
                 max_pages: int = 10) -> None:
        self._client = NdeliusClient(base_url, client_id=client_id, client_secret=client_secret,
                                     timeout=timeout, transport=transport)
        self._client_id = client_id
        self._provider = provider
        self._page_size = page_size
        self._max_pages = max_pages

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
        nsis: dict[int, Json | None] = {}  # one read per NSI per poll
        for _ in range(self._max_pages):
            page = self._client.get_json("events.read", "/events", params={
                "after": after, "size": self._page_size,
                "eventType": [NSI_CREATED, NSI_STATUS_CHANGED]})
            content = page.get("content")
            if not isinstance(content, list):
                raise unexpected("events.read")
            for item in content:
                change = self._change(_envelope(item), nsis)
                if change is not None:
                    changes.append(change)
            after = _int(_cursor(page, "cursor"))
            if not page.get("hasMore"):
                break
        return Discovery(changes=changes, cursor=str(after))

    def _change(self, event: Json, nsis: dict[int, Json | None]) -> NativeChange | None:
        info = event.get("additionalInformation")
        if not isinstance(info, dict) or info.get("nsiType") not in TRANSFER_TYPES:
            return None
        if info.get("updatedBy") == self._client_id:
            return None  # our own change, coming back round
        nsi_id = _int(info.get("nsiId"))
        reference = info.get("externalReference")
        outgoing = (reference is None and info.get("raisedByProvider") != info.get(
            "intendedProvider") and self._provider in (None, info.get("raisedByProvider")))
        changed_at = event.get("occurredAt")
        changed_at = changed_at if isinstance(changed_at, str) else None
        if event.get("eventType") == NSI_CREATED:
            nsi = self._read_once(nsi_id, nsis) if outgoing else None
            if nsi is None:
                return None
            return NativeChange(kind="transfer", native_id=str(nsi_id),
                                record=self._with_person(nsi, f"nsi {nsi_id}"),
                                changed_at=changed_at)
        if reference is None and not outgoing:
            return None
        nsi = self._read_once(nsi_id, nsis)
        status = _status_record(nsi, info) if nsi is not None else None
        if status is None:
            return None
        return NativeChange(kind="status", native_id=str(nsi_id), record=status,
                            referral_id=reference if isinstance(reference, str) else None,
                            changed_at=changed_at)

    def _read_once(self, nsi_id: int, cache: dict[int, Json | None]) -> Json | None:
        """The NSI as nDelius answers it, read at most once per poll; None if it is gone."""
        if nsi_id not in cache:
            about = f"nsi {nsi_id}"
            response = self._client.request("nsi.read", "GET", f"/nsi/{nsi_id}", about=about,
                                            allow=(404,))
            cache[nsi_id] = (None if response.status_code == 404
                             else json_body("nsi.read", response, about))
        return cache[nsi_id]


def _status_record(nsi: Json, info: Json) -> Json | None:
    """The status change an event names, from the NSI's status history."""
    history = nsi.get("statusHistory")
    entry = next((h for h in history if isinstance(h, dict)
                  and h.get("id") == info.get("statusHistoryId")), None) \
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
        "nsiType": _code(nsi.get("type")),
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


def _envelope(item: Any) -> Json:
    """The domain event inside one SNS-wrapped feed item."""
    try:
        event = json.loads(item["Message"])
    except (TypeError, KeyError, ValueError):
        raise unexpected("events.read") from None
    if not isinstance(event, dict):
        raise unexpected("events.read")
    return event


def _cursor(page: Json, key: str) -> str:
    cursor = page.get(key)
    if not isinstance(cursor, str | int):
        raise unexpected("events.read")
    return str(cursor)


def _person_path(crn: str) -> str:
    return f"/person/{quote(crn, safe='')}"


def _nsi_id(nsi: Json, operation: str, about: str) -> str:
    value = nsi.get("nsiId")
    if not isinstance(value, int):
        raise unexpected(operation, about)
    return str(value)


def _int(value: Any) -> int:
    """A native id or cursor as an integer (it goes into a URL, so nothing else passes)."""
    try:
        return int(str(value))
    except ValueError:
        raise PermanentDeliveryError("ndelius id or cursor is not a number") from None
