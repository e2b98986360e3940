"""The second way proGres talks to partners: messages through UNHCR's integration layer.

UNHCR's DTP (Data Transfer Platform) is an Azure API Management gateway between proGres
and partner systems; there is no CRUD API, one message per interop event (reference §2.1):

    POST /dtp/ReceiveIncomingReferral          a partner refers one service to UNHCR   [fact]
    POST /dtp/ReceiveDecisionOutgoingReferral  a partner's decision on an intervention [fact]
    POST /dtp/Feedback                         "Pending Acknowledgement" / "Delivery Fail"
                                               for an intervention                   [GUESS path]

and DTP pushes proGres's own messages to the partner's inbox (a webhook):

    {"interventions": [...]}                   interventions referred to the partner: flattened
                                               FetchXML rows (`individuals.progres_id` …),
                                               lookups of linked rows as SDK EntityReference
                                               objects, option values as strings      [fact]
    {"request_type": "PrimeroIncomingReferralDecision", "interventions": [...]}
                                               review decisions on referrals the partner sent,
                                               misspelt fields and all                [fact]

Calls carry an `Ocp-Apim-Subscription-Key` (mutual TLS, also required by the real DTP, is
not reproduced); APIM answers a missing or wrong key, and its rate limit, with
`{"statusCode", "message"}`, the shape used here for every refusal [GUESS beyond the key
and rate-limit answers]. A `ReceiveIncomingReferral` carries `id` =
`<case id>#<last 12 characters of the service id>`: the sandbox splits it, refuses any
other shape, and keeps it as the referral's `progres_orgreferralid`, so a resend of the
same message creates nothing new and answers as the first time.

Switches, never faulted (`/_sandbox/…`):

    GET/PUT /_sandbox/dtp/inbox         where DTP pushes: {"url", "headers"}
    POST /_sandbox/dtp/push             push these interventions now: {"interventions": [ids]}
    POST /_sandbox/dtp/decisions        send these referrals' review decisions now:
                                        {"referrals": [ids], "overrides": {id: {field: value}}}
                                        (an override sends a value proGres holds but the
                                        sandbox's option set does not, such as the decision
                                        125080003 seen in a real sample)

Both pushes answer `{"status": <the inbox's HTTP status>, "answer": <its body>}`; feedback
the inbox answers with (`{"feedback": [...]}`) is recorded on each intervention, as DTP
relays it to proGres.
"""

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from sandboxes.progres import records
from sandboxes.progres.auth import Principal, RateLimiter
from sandboxes.progres.errors import DUPLICATE, ODataError
from sandboxes.progres.schema import BY_LOGICAL, DIRECTION, ROUTE_TO, SEX, Entity
from sandboxes.progres.seed import DTP_USER, sid
from sandboxes.progres.store import Store, utcnow

DEFAULT_SUBSCRIPTION_KEY = "sandbox-subscription-key"
KEY_HEADER = "ocp-apim-subscription-key"
INCOMING_REFERRAL = "ReceiveIncomingReferral"
DECISION = "ReceiveDecisionOutgoingReferral"
FEEDBACK = "Feedback"
REVIEW_DECISIONS = "PrimeroIncomingReferralDecision"
DECISION_STATUSES = ("acknowledged", "rejected")
FEEDBACK_STATUSES = ("Pending Acknowledgement", "Delivery Fail")

_, INCOMING = tuple(DIRECTION)
TO_UNIT = tuple(ROUTE_TO)[1]
CP_UNIT = sid("businessunit:cp")
_COMPOSITE = re.compile(r"^(?P<case>[^#\s]{1,80})#(?P<service>[A-Za-z0-9_-]{12})$")
_REFERRAL = BY_LOGICAL["progres_interoperabilityreferral"]
_INTERVENTION = BY_LOGICAL["progres_lpintervention"]
_TYPE = BY_LOGICAL["progres_interventiontype"]
_INDIVIDUAL = BY_LOGICAL["progres_individual"]
_DTP = Principal(client_id="dtp", user_id=DTP_USER)
_NO_KEY = ("Access denied due to missing subscription key. Make sure to include "
           "subscription key when making requests to an API.")
_BAD_KEY = ("Access denied due to invalid subscription key. Make sure to provide a valid key "
            "for an active subscription.")


class DtpError(Exception):
    """A refusal in API Management's shape: `{"statusCode", "message"}`."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Inbox(BaseModel):
    url: str | None = Field(default=None, description="the partner's inbox DTP pushes to")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="sent with every push (e.g. Authorization)")


@dataclass
class Dtp:
    store: Store
    office: str
    subscription_key: str
    limiter: RateLimiter
    inbox: Inbox = field(default_factory=Inbox)


def install(app: FastAPI, *, store: Store, office: str, subscription_key: str,
            limiter: RateLimiter) -> None:
    """Add the DTP message surface and its `/_sandbox/dtp` switches to the sandbox app."""
    app.state.dtp = Dtp(store=store, office=office, subscription_key=subscription_key,
                        limiter=limiter)

    @app.exception_handler(DtpError)
    async def dtp_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DtpError)
        return JSONResponse({"statusCode": exc.status, "message": exc.message},
                            status_code=exc.status, headers=exc.headers)

    app.include_router(_messages)
    app.include_router(_switches)


def _dtp_of(request: Request) -> Dtp:
    dtp: Dtp = request.app.state.dtp
    return dtp


DtpDep = Annotated[Dtp, Depends(_dtp_of)]


async def _message(request: Request, dtp: DtpDep) -> dict[str, Any]:
    """The checked caller's message: subscription key, rate limit, a JSON object."""
    key = request.headers.get(KEY_HEADER)
    if not key:
        raise DtpError(401, _NO_KEY)
    if key != dtp.subscription_key:
        raise DtpError(401, _BAD_KEY)
    try:
        dtp.limiter.check(f"dtp:{key}")
    except ODataError as throttled:
        seconds = throttled.headers.get("Retry-After", "1")
        raise DtpError(429, f"Rate limit is exceeded. Try again in {seconds} seconds.",
                       {"Retry-After": seconds}) from None
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise DtpError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise DtpError(400, "The message must be a JSON object.")
    return body


Message = Annotated[dict[str, Any], Depends(_message)]
_messages = APIRouter(prefix="/dtp", tags=["UNHCR integration layer (DTP)"])


@_messages.post(f"/{INCOMING_REFERRAL}")
def receive_incoming_referral(message: Message, dtp: DtpDep) -> dict[str, Any]:
    """One service a partner refers to UNHCR: an incoming interoperability referral."""
    _expect(message, INCOMING_REFERRAL)
    reference = message.get("id")
    composite = _COMPOSITE.match(reference) if isinstance(reference, str) else None
    if composite is None:
        raise DtpError(400, "id must be '<case id>#<last 12 characters of the service id>'.")
    with dtp.store.reading() as conn:
        earlier = dtp.store.find(conn, _REFERRAL, "progres_orgreferralid", reference)
        if earlier is not None:
            return _referral_answer(earlier)  # a resend: the referral made the first time
        body = _incoming_referral(dtp.store, conn, message)
    try:
        row = records.create_record(dtp.store, _REFERRAL, body, principal=_DTP,
                                    office=dtp.office)
    except ODataError as refused:
        if refused.code == DUPLICATE:  # the same message, sent twice at once
            with dtp.store.reading() as conn:
                earlier = dtp.store.find(conn, _REFERRAL, "progres_orgreferralid", reference)
            if earlier is not None:
                return _referral_answer(earlier)
        raise DtpError(400 if refused.status < 500 else 500, refused.message) from None
    return _referral_answer(row)


def _incoming_referral(store: Store, conn: Connection, message: dict[str, Any]
                       ) -> dict[str, Any]:
    """The Web API create body of the referral a `ReceiveIncomingReferral` asks for."""
    for name in ("service_type", "name_first"):
        if not isinstance(message.get(name), str) or not message[name].strip():
            raise DtpError(400, f"{name} is required.")
    body: dict[str, Any] = {
        "progres_orgreferralid": message["id"], "progres_direction": INCOMING,
        "progres_interoperabilityreferralrouteto": TO_UNIT,
        "progres_assignedunitid@odata.bind": f"/businessunits({CP_UNIT})",
        "progres_interventiontype@odata.bind":
            f"/progres_interventiontypes({_intervention_type(store, conn, message)})"}
    texts = {"progres_individualreference": "unhcr_individual_no",
             "progres_givenname": "name_first", "progres_middlename": "name_middle",
             "progres_familyname": "name_last", "progres_commonyusedname": "name_nickname",
             "progres_dateofbirth": "date_of_birth",
             "progres_primaryphonenumber": "telephone_current",
             "progres_referralnotes": "service_referral_notes",
             "progres_sendingorganization": "owned_by_agency_id",
             "progres_senderemail": "email", "progres_senderphone": "phone"}
    for column, name in texts.items():
        if isinstance(message.get(name), str) and message[name]:
            body[column] = message[name]
    sender = message.get("full_name") or message.get("primero_user")
    if isinstance(sender, str) and sender:
        body["progres_sendername"] = sender
    due = message.get("service_response_day_time")
    if isinstance(due, str) and len(due) >= 10:
        body["progres_duedate"] = due[:10]
    if message.get("sex") not in (None, ""):
        body["progres_sex"] = _sex(message["sex"])
    individual = message.get("unhcr_individual_no")
    if isinstance(individual, str) and individual:
        found = store.find(conn, _INDIVIDUAL, "progres_id", individual)
        if found is not None:
            body["progres_individualid@odata.bind"] = (
                f"/progres_individuals({found['progres_individualid']})")
    return body


def _intervention_type(store: Store, conn: Connection, message: dict[str, Any]) -> str:
    """The intervention type a service label names (its description or code); whether it
    is open to interoperability is proGres's own rule, checked on create."""
    wanted = str(message["service_type"]).strip().casefold()
    for row in conn.execute(select(store.table(_TYPE))).mappings():
        if wanted in (str(row["progres_description"]).casefold(),
                      str(row["progres_code"]).casefold()):
            return str(row["progres_interventiontypeid"])
    raise DtpError(400, f"service_type '{message['service_type']}' is not an intervention "
                        "type of this office.")


def _sex(value: Any) -> int:
    """An option value (number or digits) or its label."""
    text = str(value).strip()
    if text.isdigit() and int(text) in SEX:
        return int(text)
    for code, label in SEX.items():
        if label.casefold() == text.casefold():
            return code
    raise DtpError(400, "sex is not one of the option set's values or labels.")


def _referral_answer(row: dict[str, Any]) -> dict[str, Any]:
    return {"request_type": INCOMING_REFERRAL, "id": row["progres_orgreferralid"],
            "progres_interoperabilityreferralnumber":
                row["progres_interoperabilityreferralnumber"],
            "status": "Pending Acknowledgement"}


@_messages.post(f"/{DECISION}")
def receive_decision(message: Message, dtp: DtpDep) -> dict[str, Any]:
    """A partner's decision on an intervention proGres referred to it."""
    _expect(message, DECISION)
    return record_answer(dtp.store, message, DECISION_STATUSES)


@_messages.post(f"/{FEEDBACK}")
def receive_feedback(message: Message, dtp: DtpDep) -> dict[str, Any]:
    """A partner's feedback on an intervention: received, or why it could not be."""
    _expect(message, FEEDBACK)
    return record_answer(dtp.store, message, FEEDBACK_STATUSES)


def _expect(message: dict[str, Any], request_type: str) -> None:
    if message.get("request_type") != request_type:
        raise DtpError(400, f"request_type must be '{request_type}' at this endpoint.")


def record_answer(store: Store, message: dict[str, Any],
                  statuses: tuple[str, ...]) -> dict[str, Any]:
    """Record a partner's feedback or decision on its intervention; a decision already
    recorded is not undone by a later "Pending Acknowledgement" (older news)."""
    number, status = message.get("progres_interventionnumber"), message.get("status")
    if not isinstance(number, str) or not number:
        raise DtpError(400, "progres_interventionnumber is required.")
    if status not in statuses:
        raise DtpError(400, f"status must be one of: {', '.join(statuses)}.")
    reason = message.get("closure_reason")
    if status in ("Delivery Fail", "rejected") and not (isinstance(reason, str) and reason):
        raise DtpError(400, f"closure_reason is required with status '{status}'.")
    with store.writing() as conn:
        row = store.find(conn, _INTERVENTION, "progres_interventionnumber", number)
        if row is None:
            raise DtpError(404, f"Intervention {number} not found.")
        if status == "Pending Acknowledgement" and row["progres_partnerstatus"] in \
                DECISION_STATUSES:
            return _answer_of(row)
        values: dict[str, Any] = {"progres_partnerstatus": status,
                                  "progres_partnerclosurereason": reason or None,
                                  "progres_partnerupdatedon": utcnow()}
        for column, name in (("progres_partnercaseid", "case_id"),
                             ("progres_partneruser", "primero_user")):
            if isinstance(message.get(name), str) and message[name]:
                values[column] = message[name][:100]
        row = store.update(conn, _INTERVENTION, row["progres_lpinterventionid"], values,
                           user_id=DTP_USER, now=utcnow())
    return _answer_of(row)


def _answer_of(row: dict[str, Any]) -> dict[str, Any]:
    return {"progres_interventionnumber": row["progres_interventionnumber"],
            "status": row["progres_partnerstatus"]}


# -- what DTP pushes to the partner ------------------------------------------------------

def _option(value: Any) -> str | None:
    return None if value is None else str(value)


def _instant(value: Any) -> str | None:
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%dT%H:%M:%S}Z"
    if isinstance(value, date):
        return f"{value.isoformat()}T00:00:00Z"  # an SDK DateTime, midnight UTC
    return None


def entity_reference(store: Store, conn: Connection, logical: str, key: Any
                     ) -> dict[str, Any] | None:
    """A lookup as the SDK serialises it: `{Id, KeyAttributes, LogicalName, Name, RowVersion}`."""
    if key is None:
        return None
    return {"Id": str(key), "KeyAttributes": [], "LogicalName": logical,
            "Name": store.primary_name(conn, logical, str(key)), "RowVersion": None}


def intervention_item(store: Store, conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    """One intervention as DTP pushes it: a flattened FetchXML row (reference §2.1, flow 1)."""
    item: dict[str, Any] = {
        "progres_lpinterventionid": row["progres_lpinterventionid"],
        "progres_interventionnumber": row["progres_interventionnumber"],
        "progres_interventionstartdate": _instant(row["progres_interventionstartdate"]),
        "progres_interventiontype2": row["_progres_interventiontype2_value"],
        "progres_interventionserviceprovider": row["_progres_interventionserviceprovider_value"],
        "progres_businessunit": row["_progres_businessunit_value"],
        "progres_businessowner": row["_progres_businessowner_value"],
        "progres_interventiondescription": row["progres_interventiondescription"],
        "progres_reasonforreferral": row["progres_reasonforreferral"],
        "progres_interventionbyother": row["progres_interventionbyother"],
        "progres_primeroid": row["progres_primeroid"],
        "progres_consentobtained": row["progres_consentobtained"],
        "progres_consentdate": row["progres_consentdate"].isoformat()
        if row["progres_consentdate"] else None,
        "progres_consentgivenby": _option(row["progres_consentgivenby"]),
        "progres_consentform": _option(row["progres_consentform"]),
        "progres_childassent": row["progres_childassent"],
    }
    kind = store.get(conn, _TYPE, row["_progres_interventiontype2_value"] or "")
    if kind is not None:
        item["interventiontype.progres_description"] = kind["progres_description"]
    person = store.get(conn, _INDIVIDUAL, row["_progres_individual_value"] or "")
    if person is not None:
        item.update({
            "individuals.progres_id": person["progres_id"],
            "individuals.progres_registrationgroupid": entity_reference(
                store, conn, "progres_registrationgroup",
                person["_progres_registrationgroupid_value"]),
            "individuals.progres_givenname": person["progres_givenname"],
            "individuals.progres_middlename": person["progres_middlename"],
            "individuals.progres_familyname": person["progres_familyname"],
            "individuals.progres_commonyusedname": person["progres_commonyusedname"],
            "individuals.progres_dateofbirth": _instant(person["progres_dateofbirth"]),
            "individuals.progres_sex": _option(person["progres_sex"]),
            "individuals.progres_primaryphonenumber": person["progres_primaryphonenumber"]})
    case = store.get(conn, BY_LOGICAL["progres_case"],
                     row["_progres_childprotectioncase_value"] or "")
    if case is not None:
        item["childprotection.progres_priority"] = _option(case["progres_priority"])
    user = store.get(conn, BY_LOGICAL["systemuser"], row["_progres_businessowner_value"] or "")
    if user is not None:
        item.update({"user.title": user["title"],
                     "user.internalemailaddress": user["internalemailaddress"],
                     "user.mobilephone": user["mobilephone"],
                     "user.progres_partner": entity_reference(
                         store, conn, "progres_partner", user["_progres_partner_value"])})
    return {k: v for k, v in item.items() if v is not None}  # FetchXML leaves nulls out


_DECISION_FIELDS = (
    ("progres_individualid", "_progres_individualid_value"),
    ("progres_interoperabilityreferralid", "progres_interoperabilityreferralid"),
    ("progres_interoperabilityreferralnumber", "progres_interoperabilityreferralnumber"),
    ("progres_interoperabilityreferralrouteto", "progres_interoperabilityreferralrouteto"),
    ("progres_interventiontype", "_progres_interventiontype_value"),
    ("progres_orgreferralid", "progres_orgreferralid"),
    ("progres_reviewby", "_progres_reviewby_value"),
    ("progres_reviewdate", "progres_reviewdate"),
    ("progres_reviewdecision", "progres_reviewdecision"),
    ("progres_interoperabiltyreferralrejectionreason",  # sic
     "progres_interoperabiltyreferralrejectionreason"),
    ("progres_interoperabilityreferralrejectionomment",  # sic
     "progres_interoperabilityreferralrejectionomment"),
)


def decision_item(row: dict[str, Any]) -> dict[str, Any]:
    """One review decision as DTP sends it (reference §2.1, flow 2-3): GUIDs, option values
    as strings, the misspelt field names."""
    item: dict[str, Any] = {}
    for name, column in _DECISION_FIELDS:
        value = row[column]
        if isinstance(value, bool) or value is None:
            continue
        item[name] = _instant(value) or (str(value) if isinstance(value, int) else value)
    return item


class Push(BaseModel):
    interventions: list[str] = Field(min_length=1, description="GUIDs or numbers")


class Decisions(BaseModel):
    referrals: list[str] = Field(min_length=1, description="interop referral GUIDs")
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)


_switches = APIRouter(prefix="/_sandbox/dtp", tags=["sandbox"])


@_switches.get("/inbox")
def read_inbox(dtp: DtpDep) -> Inbox:
    return dtp.inbox


@_switches.put("/inbox")
def set_inbox(inbox: Inbox, dtp: DtpDep) -> Inbox:
    dtp.inbox = inbox
    return dtp.inbox


@_switches.post("/push")
def push(order: Push, dtp: DtpDep) -> dict[str, Any]:
    """DTP pushes these interventions to the partner's inbox, as one message."""
    with dtp.store.reading() as conn:
        items = [intervention_item(dtp.store, conn, _row(dtp.store, conn, _INTERVENTION, key,
                                                         "progres_interventionnumber"))
                 for key in order.interventions]
    answer = _send(dtp, {"interventions": items})
    feedback = answer["answer"].get("feedback") if isinstance(answer["answer"], dict) else None
    for message in feedback if isinstance(feedback, list) else []:
        if isinstance(message, dict):
            try:
                record_answer(dtp.store, message, FEEDBACK_STATUSES)
            except DtpError:
                continue  # feedback DTP cannot place is dropped, as a relay would
    return answer


@_switches.post("/decisions")
def decisions(order: Decisions, dtp: DtpDep) -> dict[str, Any]:
    """DTP sends the review decisions of these referrals to the partner's inbox."""
    with dtp.store.reading() as conn:
        items = [{**decision_item(_row(dtp.store, conn, _REFERRAL, key, None)),
                  **order.overrides.get(key, {})} for key in order.referrals]
    return _send(dtp, {"request_type": REVIEW_DECISIONS, "interventions": items})


def _row(store: Store, conn: Connection, entity: Entity, key: str,
         number_column: str | None) -> dict[str, Any]:
    row = store.get(conn, entity, key) if len(key) == 36 else None
    if row is None and number_column is not None:
        row = store.find(conn, entity, number_column, key)
    if row is None:
        raise DtpError(404, f"No {entity.logical} {key}.")
    return row


def _send(dtp: Dtp, message: dict[str, Any]) -> dict[str, Any]:
    if not dtp.inbox.url:
        raise DtpError(409, "No inbox is set: PUT /_sandbox/dtp/inbox first.")
    try:
        response = httpx.post(dtp.inbox.url, json=message, timeout=30,
                              headers=dtp.inbox.headers)
    except httpx.TransportError as error:
        raise DtpError(502, f"The inbox could not be reached ({type(error).__name__}).") from None
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text
    return {"status": response.status_code, "answer": answer}
