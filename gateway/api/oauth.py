"""OAuth2 client credentials (RFC 6749 §4.4): a partner trades its id and secret for a token.

Errors are problem+json that also carry RFC 6749's `error` member, so OAuth2 client
libraries and people both understand them.
"""

from datetime import timedelta
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel

from gateway.api.body import FORM, read_body
from gateway.api.deps import SessionDep, SettingsDep, within_rate_limit
from gateway.api.openapi import declare, problems, schema_body
from gateway.errors import (
    CaseBridgeError,
    FieldError,
    NotAuthenticated,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from gateway.partners import issue_access_token
from gateway.protection import audit

router = APIRouter(tags=["authentication"])
MAX_FORM_BYTES = 4096


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int


class OAuthProblem(CaseBridgeError):
    def __init__(self, error: str, detail: str, status: int = 400,
                 errors: list[FieldError] | None = None) -> None:
        super().__init__(detail=detail, status=status, slug=f"oauth-{error.replace('_', '-')}",
                         title="Token request refused",
                         extensions={"error": error, "error_description": detail,
                                     "errors": [e.as_dict() for e in errors or []]})


class _ClientBasic(HTTPBasic):
    """HTTP Basic client authentication whose unreadable credentials are an OAuth2 problem."""

    async def __call__(self, request: Request) -> HTTPBasicCredentials | None:  # type: ignore[override]
        try:
            return await super().__call__(request)
        except HTTPException:  # FastAPI's plain 401, even with auto_error=False
            raise OAuthProblem("invalid_request",
                               "The Basic credentials cannot be read.") from None


client_basic = _ClientBasic(auto_error=False, scheme_name="ClientBasic",
                            description="client_id:client_secret, instead of the form fields.")
declare(client_basic, 400)


async def _form(request: Request) -> dict[str, str]:
    """The form body, read here so the endpoint itself can run off the event loop."""
    try:
        body = await read_body(request, media_type=FORM, limit=MAX_FORM_BYTES)
    except (UnsupportedMediaType, PayloadTooLarge) as error:  # in OAuth2's words too
        raise OAuthProblem("invalid_request", error.detail, error.status) from None
    return {k: v[0] for k, v in parse_qs(body.decode("latin-1")).items()}


declare(_form, 400, 413, 415, body=schema_body({
    "type": "object", "required": ["grant_type", "client_id", "client_secret"],
    "description": "client_id and client_secret may come in HTTP Basic instead (ClientBasic).",
    "properties": {"grant_type": {"const": "client_credentials"},
                   "client_id": {"type": "string", "minLength": 1},
                   "client_secret": {"type": "string", "minLength": 1}}},
    media_type=FORM))


@router.post("/oauth/token", response_model=TokenOut, summary="Get an access token",
             responses=problems(401, 429, s401="The client credentials are not valid."),
             # The credentials may come in the form instead of HTTP Basic.
             openapi_extra={"security": [{"ClientBasic": []}, {}]})
def token(
    request: Request, form: Annotated[dict[str, str], Depends(_form)], session: SessionDep,
    settings: SettingsDep,
    basic: Annotated[HTTPBasicCredentials | None, Depends(client_basic)],
) -> TokenOut:
    """Client credentials in the form body, or in HTTP Basic (`client_id:client_secret`)."""
    if form.get("grant_type") != "client_credentials":
        raise OAuthProblem("unsupported_grant_type", "Only client_credentials is offered.",
                           errors=[FieldError("/grant_type", "enum",
                                              "must be client_credentials")])
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None:
        client_id, client_secret = basic.username, basic.password
    if not client_id or not client_secret:
        raise OAuthProblem("invalid_request", "client_id and client_secret are required.",
                           errors=[FieldError(f"/{name}", "required", "is required")
                                   for name, value in (("client_id", client_id),
                                                       ("client_secret", client_secret))
                                   if not value])
    lifetime = settings.access_token_seconds
    try:
        partner, access_token = issue_access_token(
            session=session, client_id=client_id, client_secret=client_secret,
            lifetime=timedelta(seconds=lifetime))
    except NotAuthenticated:
        raise OAuthProblem("invalid_client", "The client credentials are not valid.",
                           401) from None
    within_rate_limit(request, partner)  # a refusal rolls the new token back
    audit.record(session, actor=f"partner:{partner.id}", action="token.issue",
                 partner_id=partner.id, detail={"expires_in": lifetime})
    return TokenOut(access_token=access_token, expires_in=lifetime)
