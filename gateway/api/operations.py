"""The operations API: see dead letters and re-drive them, read any referral's timeline
(operators, not partners)."""

import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gateway.api.deps import ContractsDep, SessionDep, SettingsDep
from gateway.deadlines.timeline import Timeline, referral_timeline
from gateway.delivery import dead_letters
from gateway.errors import FieldError, Forbidden, NotAuthenticated, ValidationProblem
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
    ids: list[int] = Field(default_factory=list, description="Dead letter ids")
    reason: str | None = Field(default=None, description="Every dead letter with this reason")
    partner: str | None = Field(default=None, description="Every dead letter of this partner")


@router.get("/dead-letters", response_model=list[DeadLetterOut])
def list_dead_letters(session: SessionDep, _: OperatorDep, reason: str | None = None,
                      partner: str | None = None,
                      include_redriven: bool = False) -> list[DeadLetterOut]:
    """Dead letters with why they died, oldest first."""
    return [DeadLetterOut.of(letter) for letter in dead_letters.find(
        session=session, reason=reason, partner=partner, include_redriven=include_redriven)]


@router.post("/dead-letters/redrive")
def redrive_dead_letters(request: RedriveRequest, session: SessionDep, actor: OperatorDep,
                         contracts: ContractsDep) -> dict[str, Any]:
    """Send dead letters through delivery again, by id or in bulk by filter."""
    if not (request.ids or request.reason or request.partner):
        raise ValidationProblem("Say which dead letters to re-drive.", [
            FieldError("/ids", "required", "give ids, or a reason or partner filter")])
    letters = dead_letters.find(session=session, ids=request.ids, reason=request.reason,
                                partner=request.partner)
    done = dead_letters.redrive(session=session, contracts=contracts, letters=letters,
                                actor=actor)
    return {"redriven": done}


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
