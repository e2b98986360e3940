"""POST /v1/progres/dtp: what proGres pushes through UNHCR's integration layer (DTP).

proGres's second channel (its first is the Dataverse Web API the poller reads). DTP POSTs
its messages to the partner's inbox; this route is CaseBridge's inbox, for partners of the
system `progres` only, authenticated like every partner (API key or access token). A
message is read item by item (`adapters.progres.dtp.read_message`), and each item goes the
way a polled change goes (`Poller.take`): through the `channel: dtp` mapping, the
referral contract, the consent gate and the data-sharing agreement, into the store and
the outbox. Items are independent: one the gateway cannot take is kept as an inbound dead
letter (visible, re-drivable) and never holds up the others.

The answer, 200 whatever became of the items:

- to interventions (`{"interventions": [...]}`): one DTP `Feedback` per intervention, in
  order — "Pending Acknowledgement" with the gateway's referral id as `case_id`, or
  "Delivery Fail" with a `closure_reason` (why: consent, agreement, service type,
  contract or mapping; never a personal value). A resend answers as the first time and
  stores nothing new.
- to review decisions (`PrimeroIncomingReferralDecision`): per item its
  `progres_orgreferralid` and `outcome` — `recorded`, `unchanged` (a repeat, or news older
  than what the referral shows) or `refused`, with `problem` and `closure_reason`.

A body that is not a DTP message at all is refused as problem+json naming the field.
"""

import threading
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from adapters.base import NativeChange
from adapters.progres.dtp import REVIEW_DECISIONS, feedback, read_message
from gateway.api.body import json_document
from gateway.api.deps import PartnerDep
from gateway.api.openapi import problems
from gateway.delivery.poller import Poller, Taken
from gateway.errors import FieldError, Forbidden
from gateway.mapping.translator import MappingTranslator


class Feedback(BaseModel):
    """DTP's `Feedback` on one intervention, as proGres reads it."""

    request_type: str = "Feedback"
    progres_interventionnumber: str | None = None
    case_id: str | None = Field(default=None, description="the gateway's referral id")
    status: Literal["Pending Acknowledgement", "Delivery Fail"]
    closure_reason: str | None = Field(default=None, description="why it was not taken")


class DecisionOutcome(BaseModel):
    """What became of one review decision."""

    progres_orgreferralid: Any = None
    outcome: Literal["recorded", "unchanged", "refused"]
    problem: str | None = Field(default=None, description="the problem type, when refused")
    closure_reason: str | None = Field(default=None, description="why, when refused")


class DtpAnswer(BaseModel):
    request_type: str
    feedback: list[Feedback] | None = Field(default=None,
                                            description="to interventions, in their order")
    items: list[DecisionOutcome] | None = Field(default=None,
                                                description="to decisions, in their order")


router = APIRouter(prefix="/v1/progres", tags=["proGres DTP messages"])
log = structlog.get_logger()
SYSTEM = "progres"
_made = threading.Lock()


def _intake(request: Request) -> Poller:
    """What takes pushed changes, made once per app (its mappings reload as files change)."""
    state = request.app.state
    with _made:
        if getattr(state, "dtp_intake", None) is None:
            state.dtp_intake = Poller(
                sessions=state.sessions, contracts=state.contracts,
                agreements=state.agreements,
                translator=MappingTranslator(state.settings.mappings_dir,
                                             contracts=state.contracts))
    intake: Poller = state.dtp_intake
    return intake


DTP_MESSAGE = {"type": "object", "required": ["interventions"], "properties": {
    "request_type": {"enum": [REVIEW_DECISIONS]},
    "interventions": {"type": "array", "minItems": 1, "items": {"type": "object"}}}}
DtpMessage = Annotated[Any, Depends(json_document(schema=DTP_MESSAGE))]


@router.post("/dtp", summary="Take a message proGres pushes through UNHCR's integration layer",
             response_model=DtpAnswer, response_model_exclude_none=True,
             responses=problems(403, s403="Only the proGres partner sends DTP messages."))
def post_dtp_message(request: Request, partner: PartnerDep, message: DtpMessage) -> DtpAnswer:
    """Interventions proGres refers to a partner, or its review decisions on referrals the
    gateway sent it: each item taken on its own; the answer says what became of each."""
    if partner.system != SYSTEM:
        raise Forbidden("Only a proGres partner sends DTP messages.", [
            FieldError("", "partner-system", "authenticate as the proGres partner")])
    changes = read_message(message)
    intake = _intake(request)
    taken = [(change, intake.take(partner.id, SYSTEM, change)) for change in changes]
    refused = sum(1 for _, t in taken if t.refusal is not None)
    request_type = message.get("request_type")
    log.info("dtp_message_taken", partner=partner.id, request_type=request_type or
             "interventions", items=len(taken), refused=refused)
    if request_type is None:
        return DtpAnswer(request_type="Feedback",
                         feedback=[_feedback(change, result) for change, result in taken])
    return DtpAnswer(request_type=request_type,
                     items=[_decision(change, result) for change, result in taken])


def _feedback(change: NativeChange, taken: Taken) -> Feedback:
    if taken.refusal is not None:
        return Feedback(**feedback(change, closure_reason=taken.refusal.said))
    return Feedback(**feedback(change, case_id=taken.referral_id))


def _decision(change: NativeChange, taken: Taken) -> DecisionOutcome:
    reference = change.record.get("progres_orgreferralid")
    if taken.refusal is not None:
        return DecisionOutcome(progres_orgreferralid=reference, outcome="refused",
                               problem=taken.refusal.slug, closure_reason=taken.refusal.said)
    return DecisionOutcome(progres_orgreferralid=reference,
                           outcome="recorded" if taken.changed else "unchanged")
