"""Logging in: a bearer token from `POST /api/v2/tokens`, or HTTP Basic on every call.

Current Primero uses a cookie session or HTTP Basic; older Primero (and OpenFn's adaptor)
logs in with `POST /api/v2/tokens` and sends the token it gets as `Authorization: Bearer`.
The sandbox serves both: Basic for quick `curl`, tokens for the adapter. A token lives
`token_ttl` seconds (Primero's default session is 60 minutes; tests make it short) and
`POST /_sandbox/tokens/expire` ends every live token at once. As in Devise, an account
locks for 30 minutes after 6 failed passwords in a row. Every refusal is a 401 in
Primero's error envelope.
"""

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from sandboxes.primero.errors import UNAUTHORIZED, error
from sandboxes.primero.store import Store, hash_password

MAX_FAILED_ATTEMPTS = 6
LOCK_SECONDS = 30 * 60


@dataclass
class Instance:
    """One running sandbox: its store and its deployment settings."""

    store: Store
    name: str
    agency: str
    token_ttl: float


async def instance(request: Request) -> Instance:
    found: Instance = request.app.state.primero
    return found


InstanceDep = Annotated[Instance, Depends(instance)]


async def current_user(request: Request, sandbox: InstanceDep) -> dict[str, Any]:
    """The user behind the request's bearer token or Basic credentials; else 401."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        with sandbox.store.reading() as db:
            user_name = sandbox.store.token_user(db, credentials.strip())
            user = sandbox.store.user(db, user_name) if user_name else None
        if user is not None and not user.get("disabled"):
            return user
    elif scheme.lower() == "basic" and credentials:
        try:
            user_name, _, password = base64.b64decode(credentials).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise error(401, UNAUTHORIZED) from None
        return check_password(sandbox, user_name, password)
    raise error(401, UNAUTHORIZED)


CurrentUser = Annotated[dict[str, Any], Depends(current_user)]


def check_password(sandbox: Instance, user_name: str, password: str) -> dict[str, Any]:
    """The user if the password is right and the account open; counts failures."""
    with sandbox.store.writing() as db:
        user = sandbox.store.user(db, user_name)
        if user is None or user.get("disabled"):
            raise error(401, "Invalid User name or password.")
        if user.get("locked_until", 0) > time.time():
            raise error(401, "Your account is locked.")
        if not secrets.compare_digest(user["password_sha256"], hash_password(password)):
            user["failed_attempts"] = user.get("failed_attempts", 0) + 1
            if user["failed_attempts"] >= MAX_FAILED_ATTEMPTS:
                user["locked_until"] = time.time() + LOCK_SECONDS
                user["failed_attempts"] = 0
            sandbox.store.put_user(db, user)
            failure = error(401, "Invalid User name or password.")
        else:
            if user.get("failed_attempts"):
                user["failed_attempts"] = 0
                sandbox.store.put_user(db, user)
            return user
    raise failure


router = APIRouter(prefix="/api/v2", tags=["tokens"])


@router.post("/tokens")
async def log_in(sandbox: InstanceDep,
           user: Annotated[dict[str, Any], Body(embed=True)]) -> JSONResponse:
    """Log in with `{"user": {"user_name", "password"}}`; the answer carries the token."""
    found = check_password(sandbox, str(user.get("user_name", "")), str(user.get("password", "")))
    token = secrets.token_urlsafe(32)
    with sandbox.store.writing() as db:
        sandbox.store.add_token(db, token, found["user_name"], sandbox.token_ttl)
    return JSONResponse(
        {"id": found["id"], "user_name": found["user_name"],
         "group_permission": found["group_permission"], "token": token},
        headers={"Authorization": f"Bearer {token}"})


@router.delete("/tokens")
async def log_out(request: Request, sandbox: InstanceDep, _user: CurrentUser) -> dict[str, Any]:
    """End the bearer token the request carries."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        with sandbox.store.writing() as db:
            sandbox.store.drop_token(db, credentials.strip())
    return {"data": {}}


sandbox_router = APIRouter(prefix="/_sandbox", tags=["sandbox"])


@sandbox_router.post("/tokens/expire")
async def expire_tokens(sandbox: InstanceDep) -> dict[str, int]:
    """Expire every live token now, so a client must log in again (a test switch)."""
    with sandbox.store.writing() as db:
        return {"expired": sandbox.store.expire_tokens(db)}
