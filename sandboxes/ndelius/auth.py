"""HMPPS Auth in miniature: client-credentials tokens (signed JWTs) and role checks.

`POST /auth/oauth/token?grant_type=client_credentials[&username=STAFF]` with HTTP Basic
client credentials answers `{access_token, token_type, expires_in, scope, sub, jti}`. As in
HMPPS Auth, a system client may name a `username`, which the sandbox records as the user of
every change made with that token (a probation officer working through the Delius UI).
`POST /_sandbox/tokens/revoke` rotates the signing key so that every issued token is refused.
"""

import base64
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from sandboxes.ndelius.codes import ROLE_READ, ROLE_WRITE
from sandboxes.ndelius.errors import Forbidden, Unauthorised

# Sandbox clients: id → (secret, roles). Change them with create_app(clients=...).
DEFAULT_CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "casebridge": ("casebridge-sandbox-secret", (ROLE_READ, ROLE_WRITE)),
    "delius-ui": ("delius-ui-sandbox-secret", (ROLE_READ, ROLE_WRITE)),
    "probation-reporting": ("reporting-sandbox-secret", (ROLE_READ,)),
}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the OAuth client, and the officer it acts for if any."""

    client_id: str
    username: str | None
    roles: frozenset[str]

    @property
    def user(self) -> str:
        return self.username or self.client_id


class TokenIssuer:
    def __init__(self, clients: Mapping[str, tuple[str, tuple[str, ...]]],
                 lifetime: int) -> None:
        self.clients = dict(clients)
        self.lifetime = lifetime
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()

    def revoke_all(self) -> None:
        with self._lock:
            self._key = secrets.token_bytes(32)

    def issue(self, client_id: str, username: str | None) -> dict[str, Any]:
        issued = int(time.time())
        claims = {"sub": username or client_id, "client_id": client_id, "user_name": username,
                  "authorities": list(self.clients[client_id][1]), "scope": ["read", "write"],
                  "grant_type": "client_credentials", "auth_source": "none" if not username
                  else "delius", "iat": issued, "exp": issued + self.lifetime,
                  "jti": uuid.uuid4().hex}
        with self._lock:
            token = jwt.encode(claims, self._key, algorithm="HS256", headers={"kid": "sandbox"})
        return {"access_token": token, "token_type": "bearer", "expires_in": self.lifetime,
                "scope": "read write", "sub": claims["sub"], "auth_source": claims["auth_source"],
                "jti": claims["jti"]}

    def verify(self, token: str) -> Principal:
        with self._lock:
            key = self._key
        try:
            claims = jwt.decode(token, key, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            raise _invalid_token("Access token expired") from None
        except jwt.InvalidTokenError:
            raise _invalid_token("Invalid access token") from None
        return Principal(client_id=claims["client_id"], username=claims.get("user_name"),
                         roles=frozenset(claims["authorities"]))


def _invalid_token(message: str) -> Unauthorised:
    return Unauthorised(message, headers={
        "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'})


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """The token endpoint answers in the OAuth2 (Spring Security) error shape."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"WWW-Authenticate": 'Basic realm="oauth2/client"'}
                        if status == 401 else None)


router = APIRouter(tags=["auth"])


@router.post("/auth/oauth/token")
def token(request: Request, grant_type: Annotated[str, Query()] = "",
          username: Annotated[str | None, Query()] = None,
          authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    """Client-credentials grant with HTTP Basic client authentication."""
    issuer: TokenIssuer = request.app.state.issuer
    client = _basic_client(authorization, issuer)
    if client is None:
        return _oauth_error(401, "unauthorized", "Full authentication is required")
    if grant_type != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type",
                            "Unsupported grant type: use client_credentials")
    return JSONResponse(issuer.issue(client, username))


@router.post("/_sandbox/tokens/revoke", tags=["sandbox"])
def revoke(request: Request) -> dict[str, str]:
    """Rotate the signing key: every token issued so far is refused."""
    request.app.state.issuer.revoke_all()
    return {"revoked": "all tokens"}


def _basic_client(authorization: str | None, issuer: TokenIssuer) -> str | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
    except ValueError:
        return None
    known = issuer.clients.get(client_id)
    if known is None or not hmac.compare_digest(known[0], secret):
        return None
    return client_id


def requires(role: str) -> Callable[..., Principal]:
    """A dependency: the caller's bearer token is valid and carries `role`."""

    def check(request: Request,
              authorization: Annotated[str | None, Header()] = None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorised("Full authentication is required to access this resource",
                               headers={"WWW-Authenticate": "Bearer"})
        principal: Principal = request.app.state.issuer.verify(authorization[7:].strip())
        if role not in principal.roles:
            raise Forbidden(f"Access denied: {role} is required")
        return principal

    return check


Reader = Annotated[Principal, Depends(requires(ROLE_READ))]
Writer = Annotated[Principal, Depends(requires(ROLE_WRITE))]
