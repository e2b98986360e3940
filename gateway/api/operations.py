"""The operations API: see dead letters and re-drive them, read any referral's timeline
(operators, not partners)."""

import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.body import json_model
from gateway.api.deps import ContractsDep, SessionDep, SettingsDep
from gateway.api.openapi import declare, problems
from gateway.api.params import CODE_PATTERN, PARTNER_ID_PATTERN
from gateway.deadlines.timeline import Timeline, referral_timeline
from gateway.delivery import dead_letters
from gateway.errors import Forbidden, NotAuthenticated
from gateway.mapping.registry import MappingRegistry
from gateway.protection import audit
from gateway.store.models import DeadLetter

router = APIRouter(prefix="/v1/ops", tags=["operations"])


# auto_error=False: the refusals below stay problem+json.
operator_bearer = HTTPBearer(auto_error=False, scheme_name="OperatorKey",
                             description="The operator key (CASEBRIDGE_OPERATOR_KEY).")


def require_operator(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(operator_bearer)],
) -> str:
    """The operator key from `Authorization: Bearer`; the API is off when none is configured."""
    if not settings.operator_key:
        raise Forbidden("The operations API is off: set CASEBRIDGE_OPERATOR_KEY to use it.")
    given = bearer.credentials if bearer else ""
    if not hmac.compare_digest(given.encode(), settings.operator_key.encode()):
        raise NotAuthenticated("A valid operator key is required.")
    return "operator-api"


declare(require_operator, 401, 403)
OperatorDep = Annotated[str, Depends(require_operator)]


class DeadLetterOut(BaseModel):
    id: int
    referral_id: str | None
    partner_id: str | None
    direction: str
    message_type: str | None
    reason: str
    detail: str | None
    attempts: int
    dead_at: datetime
    redriven_at: datetime | None
    redriven_by: str | None

    @classmethod
    def of(cls, letter: DeadLetter) -> "DeadLetterOut":
        return cls.model_validate(letter, from_attributes=True)


class RedriveRequest(BaseModel):
    """Which dead letters: by id, or every one with a reason, of a partner (or both)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["ids"], "properties": {"ids": {"minItems": 1}}},
        {"required": ["reason"], "properties": {"reason": {"type": "string"}}},
        {"required": ["partner"], "properties": {"partner": {"type": "string"}}}]})
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list, description="Dead letter ids")
    reason: str | None = Field(default=None, pattern=CODE_PATTERN,
                               description="Every dead letter with this reason")
    partner: str | None = Field(default=None, pattern=PARTNER_ID_PATTERN,
                                description="Every dead letter of this partner")


class Redriven(BaseModel):
    redriven: list[int] = Field(description="Ids of the dead letters sent through again")


Reason = Annotated[str | None, Query(pattern=CODE_PATTERN, description="a reason code")]
PartnerId = Annotated[str | None, Query(pattern=PARTNER_ID_PATTERN, description="a partner id")]


@router.get("/dead-letters", response_model=list[DeadLetterOut])
def list_dead_letters(session: SessionDep, _: OperatorDep, reason: Reason = None,
                      partner: PartnerId = None,
                      include_redriven: bool = False) -> list[DeadLetterOut]:
    """Dead letters with why they died, oldest first."""
    return [DeadLetterOut.of(letter) for letter in dead_letters.find(
        session=session, reason=reason, partner=partner, include_redriven=include_redriven)]


@router.post("/dead-letters/redrive", response_model=Redriven, responses=problems(422))
def redrive_dead_letters(
    actor: OperatorDep,  # first: nothing is read for a caller without the key
    request: Annotated[RedriveRequest, Depends(json_model(RedriveRequest))],
    session: SessionDep, contracts: ContractsDep,
) -> Redriven:
    """Send dead letters through delivery again, by id or in bulk by filter."""
    letters = dead_letters.find(session=session, ids=request.ids, reason=request.reason,
                                partner=request.partner)
    done = dead_letters.redrive(session=session, contracts=contracts, letters=letters,
                                actor=actor)
    return Redriven(redriven=done)


@router.get("/mappings")
def mappings_in_force(request: Request, _: OperatorDep) -> dict[str, Any]:
    """The mapping files in force (with their hashes) and those refused, and why.

    Checked now from the same folder the workers read, with the same rules: a file refused
    here is refused by every worker, which keeps its last good version in force.
    """
    registry: MappingRegistry = request.app.state.mappings
    registry.refresh()
    return {
        "in_force": [{"mapping": f"{m.system}/{m.name}", "file": m.file,
                      "content_hash": m.content_hash} for m in registry.loaded()],
        "refused": [{"mapping": f"{r.system}/{r.name}", "file": r.file,
                     "content_hash": r.content_hash, "problems": list(r.problems),
                     "at": r.at.isoformat()} for r in registry.refusals],
    }


@router.get("/referrals/{referral_id}/timeline", response_model=Timeline)
def referral_timeline_for_operations(referral_id: str, session: SessionDep,
                                     actor: OperatorDep) -> Timeline:
    """Any referral's timeline, as its partners see it (codes and instants, no content);
    each read is audited."""
    timeline = referral_timeline(session=session, referral_id=referral_id)
    audit.record(session, actor=actor, action="referral.timeline", referral_id=referral_id,
                 correlation_id=timeline.correlation_id,
                 detail={"role": "operations"})
    return timeline
