"""proGres's second channel: the messages of UNHCR's integration layer (DTP).

Besides its Dataverse Web API (`adapter.ProgresAdapter`), proGres reaches partners through
DTP, an Azure API Management gateway with no CRUD API: one message per interop event,
named by its `request_type` (`shared/reference/progres-ndelius.md` §2.1). A partner connected
on this channel (`connection["channel"] = "dtp"`) is spoken to with
`ProgresDtpAdapter`, and its records are read and written by the mapping files marked
`channel: dtp` in `mappings/progres/`.

What proGres **pushes** comes to the gateway's endpoint (`POST /v1/progres/dtp`), which
reads it with `read_message` into one `NativeChange` per item (channel `dtp`):

- an intervention proGres refers to a partner, `{"interventions": [<item>, …]}` with no
  `request_type`: each item a flattened FetchXML row (`progres_interventionnumber`,
  `individuals.progres_id`, `interventiontype.progres_description` …), lookups of linked
  rows as `{Id, KeyAttributes, LogicalName, Name, RowVersion}`, option values as strings
  (or numbers), HTML descriptions. Kind `referral`, native id
  ``intervention/<progres_interventionnumber>``; record: the item itself.
- review decisions on referrals the gateway sent, `{"request_type":
  "PrimeroIncomingReferralDecision", "interventions": [<item>, …]}`: each item a
  `progres_interoperabilityreferral` with `progres_reviewdecision`,
  `progres_interoperabiltyreferralrejectionreason` and
  `progres_interoperabilityreferralrejectionomment` (both sic; some senders write
  `…rejectioncomment`), and `progres_orgreferralid`, the composite reference the gateway
  sent (`<referral id>#<12 characters of the service id>`): split, its first part names the
  referral. Kind `status`, native id ``referral/<referral id>``; record: the item.

An item the gateway cannot even place (not an object, no intervention number, a reference
that is not composite) comes back with `problem` set; the gateway dead-letters it.
The answer to a push is one `Feedback` per intervention (`feedback`), in DTP's words:
"Pending Acknowledgement" with the gateway's referral id as `case_id`, or "Delivery Fail"
with a `closure_reason`.

What the gateway **sends** (`ProgresDtpAdapter`, records as the `channel: dtp` mappings
make them):

- **create**, kind `referral` only: ``{"messages": [<ReceiveIncomingReferral>, …]}``, one
  message per service asked (`service_type`, `name_first`, `unhcr_individual_no` …). The
  adapter sets `request_type` and `id` = ``<referral id>#<service key>``, the service key
  being the last 12 characters of a stable id of that service of that referral, and POSTs
  each to `<base>/ReceiveIncomingReferral`. proGres keeps `id` as the referral's
  `progres_orgreferralid`: a message sent again (a retry after a lost answer) creates
  nothing new. Native id ``referral/<referral id>``.
- **update_status**: ``{}`` (nothing proGres is told of: the adapter sends nothing) or
  ``{"message": {"request_type": "Feedback" | "ReceiveDecisionOutgoingReferral",
  "status", "closure_reason"?, "primero_user"?}}`` for an intervention proGres pushed
  (native id ``intervention/<number>``): the adapter adds `progres_interventionnumber` and
  `case_id` (the gateway's referral id) and POSTs it to `<base>/<request_type>`.
- **discover** reports nothing (proGres pushes); **read** is refused as a permanent
  failure (DTP gives no record back); **alert** sends nothing (DTP has no message for it:
  the proGres partner reads its alerts at GET /v1/alerts).

Every call carries the `Ocp-Apim-Subscription-Key`; failures are classified by the one
rule of `adapters.http`, with APIM's `{"statusCode", "message"}` as the partner's words.
"""

import json
import uuid
from typing import Any

import httpx
import structlog

from adapters.base import ChangeKind, Discovery, NativeChange
from adapters.http import failure, partner_message, tls, transport_failure
from gateway.errors import FieldError, PermanentDeliveryError, ValidationProblem

log = structlog.get_logger()

CHANNEL = "dtp"
INCOMING_REFERRAL = "ReceiveIncomingReferral"
DECISION = "ReceiveDecisionOutgoingReferral"
FEEDBACK = "Feedback"
REVIEW_DECISIONS = "PrimeroIncomingReferralDecision"
SENDS = (FEEDBACK, DECISION)
INTERVENTION, REFERRAL = "intervention/", "referral/"
SERVICE_KEY = 12
_SERVICES = uuid.UUID("0c9f4b1e-7d2a-4e63-a8c5-3b6e1f90d247")


def service_key(referral_id: str, index: int) -> str:
    """The last 12 characters of a stable id of one service of one referral."""
    return uuid.uuid5(_SERVICES, f"{referral_id}/services/{index}").hex[-SERVICE_KEY:]


def read_message(message: Any) -> list[NativeChange]:
    """The changes a pushed DTP message holds, one per item; ValidationProblem naming the
    field when the message itself is not one."""
    if not isinstance(message, dict):
        raise ValidationProblem("The body is not a DTP message.", [
            FieldError("", "type", "must be a JSON object")])
    request_type = message.get("request_type")
    items = message.get("interventions")
    if request_type not in (None, REVIEW_DECISIONS):
        raise ValidationProblem("The gateway takes no DTP message of this request type.", [
            FieldError("/request_type", "enum",
                       f"must be {REVIEW_DECISIONS}, or left out for interventions")])
    if not isinstance(items, list) or not items:
        raise ValidationProblem("The DTP message carries no interventions.", [
            FieldError("/interventions", "minItems" if isinstance(items, list) else "required",
                       "must be a list of at least one item")])
    read = _intervention if request_type is None else _decision
    return [read(index, item) for index, item in enumerate(items)]


def _intervention(index: int, item: Any) -> NativeChange:
    number = item.get("progres_interventionnumber") if isinstance(item, dict) else None
    if not isinstance(number, str) or not number.strip():
        return _unplaced("referral", index, item, "the intervention has no "
                                                  "progres_interventionnumber")
    return NativeChange(kind="referral", native_id=INTERVENTION + number.strip(), record=item,
                        channel=CHANNEL)


def _decision(index: int, item: Any) -> NativeChange:
    reference = item.get("progres_orgreferralid") if isinstance(item, dict) else None
    case, mark, service = reference.rpartition("#") if isinstance(reference, str) \
        else ("", "", "")
    if not mark or not case or len(service) != SERVICE_KEY:
        return _unplaced("status", index, item, "progres_orgreferralid is not the reference "
                                                "the gateway sent (<referral id>#<12 characters>)")
    when = item.get("progres_reviewdate")
    return NativeChange(kind="status", native_id=REFERRAL + case, record=item,
                        changed_at=when if isinstance(when, str) else None, channel=CHANNEL)


def _unplaced(kind: ChangeKind, index: int, item: Any, problem: str) -> NativeChange:
    """An item the gateway cannot place: kept whole (encrypted) as a dead letter."""
    record = item if isinstance(item, dict) else {"item": item}
    return NativeChange(kind=kind, native_id=f"item/{index}", record=record,
                        problem=f"item {index}: {problem}", channel=CHANNEL)


def feedback(change: NativeChange, *, case_id: str | None = None,
             closure_reason: str | None = None) -> dict[str, Any]:
    """DTP's `Feedback` on one pushed intervention: received, or why it was not."""
    number = change.record.get("progres_interventionnumber")
    answer: dict[str, Any] = {"request_type": FEEDBACK,
                              "progres_interventionnumber": number
                              if isinstance(number, str) else None}
    if closure_reason is None:
        answer.update(case_id=case_id, status="Pending Acknowledgement")
    else:
        answer.update(status="Delivery Fail", closure_reason=closure_reason)
    return answer


class DtpClient:
    """POSTs messages to DTP's endpoints with the APIM subscription key."""

    def __init__(self, base_url: str, *, subscription_key: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, transport=transport, verify=tls(), headers={
            "Ocp-Apim-Subscription-Key": subscription_key, "Accept": "application/json"})

    def close(self) -> None:
        self._http.close()

    def send(self, request_type: str, message: dict[str, Any]) -> Any:
        """POST one message to `<base>/<request_type>`; its answer, or the failure it is."""
        operation = f"send {request_type}"
        try:
            response = self._http.post(f"{self.base_url}/{request_type}",
                                       content=json.dumps(message),
                                       headers={"Content-Type": "application/json"})
        except httpx.TransportError as error:
            raise transport_failure(f"DTP {operation}", error) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            said = partner_message(body.get("message")) if isinstance(body, dict) else None
            raise failure(response, f"DTP answered {response.status_code} to {operation}",
                          code=None, message=said)
        try:
            return response.json()
        except ValueError:
            return None


class ProgresDtpAdapter:
    """The `PartnerAdapter` of proGres on its DTP channel (see the module docstring)."""

    system = "progres"
    channel = CHANNEL
    shows_alerts = False  # DTP has no message that shows a deadline alert

    def __init__(self, base_url: str, *, subscription_key: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.client = DtpClient(base_url, subscription_key=subscription_key,
                                timeout=float(timeout), transport=transport)

    def close(self) -> None:
        """Release connections."""
        self.client.close()

    def discover(self, *, cursor: str | None) -> Discovery:
        """Nothing: proGres pushes its messages to the gateway's DTP endpoint."""
        return Discovery(changes=[], cursor=cursor)

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        """Send one `ReceiveIncomingReferral` per service; proGres keeps each by its `id`,
        so sending them again creates nothing new."""
        if kind != "referral":
            raise PermanentDeliveryError(f"proGres takes no {kind} through DTP",
                                         partner_code="unsupported_kind")
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages \
                or not all(isinstance(m, dict) for m in messages):
            raise PermanentDeliveryError("the referral asks proGres for no service",
                                         partner_code="no_service")
        for index, message in enumerate(messages):
            self.client.send(INCOMING_REFERRAL, {
                **message, "request_type": INCOMING_REFERRAL,
                "id": f"{referral_id}#{service_key(referral_id, index)}"})
        log.info("progres_dtp_referral_sent", referral_id=referral_id, services=len(messages))
        return REFERRAL + referral_id

    def update_status(self, *, native_id: str, referral_id: str, status: dict[str, Any]) -> None:
        """Send the feedback or decision the status mapping made; nothing when it made none."""
        message = status.get("message")
        if not message:
            return
        if not isinstance(message, dict) or message.get("request_type") not in SENDS:
            raise PermanentDeliveryError("the status record is not a DTP message the gateway "
                                         "sends", partner_code="bad_status_record")
        if not native_id.startswith(INTERVENTION):
            raise PermanentDeliveryError("DTP takes feedback and decisions only on "
                                         "interventions proGres referred",
                                         partner_code="not_an_intervention")
        self.client.send(str(message["request_type"]), {
            **message, "progres_interventionnumber": native_id.removeprefix(INTERVENTION),
            "case_id": referral_id})

    def read(self, *, native_id: str) -> dict[str, Any]:
        """Refused: DTP gives no record back."""
        raise PermanentDeliveryError("DTP cannot read a record back",
                                     partner_code="unsupported")

    def alert(self, *, native_id: str, referral_id: str, alert: dict[str, Any]) -> None:
        """Nothing to send: DTP has no message that shows a deadline alert. The alert stays
        readable at GET /v1/alerts, as for every partner; a dead letter would ask operators
        to fix what cannot be fixed."""
        log.info("progres_dtp_alert_not_shown", referral_id=referral_id,
                 flag=alert.get("flag") if isinstance(alert, dict) else None)
