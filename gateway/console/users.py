"""Console users: roles, scrypt password hashes, and the service functions the CLI calls.

A stored hash reads `scrypt$n=<N>,r=<r>,p=<p>$<base64 salt>$<base64 hash>`, so raising
the cost later leaves existing hashes readable: each is checked with its own parameters.
"""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import CaseBridgeError
from gateway.store.models import ConsoleUser


class Role(StrEnum):
    OPERATOR = "operator"
    IM_OFFICER = "im_officer"
    AUDITOR = "auditor"


USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024

# scrypt at N=2^15, r=8: 32 MiB and some 50-100 ms a check, which makes guessing slow.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
_MAXMEM = 256 * 1024 * 1024


class UserProblem(CaseBridgeError):
    """A console user cannot be created or changed as asked."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, status=422, slug="console-user",
                         title="Console user not changed")


class LoginRefused(CaseBridgeError):
    """Wrong username or password, or a disabled user; `reason` is for the audit trail only."""

    def __init__(self, reason: str) -> None:
        super().__init__(detail="Wrong username or password.", status=401,
                         slug="not-authenticated", title="Not authenticated")
        self.reason = reason


@dataclass(frozen=True)
class ScryptParameters:
    n: int
    r: int
    p: int


def hash_password(password: str) -> str:
    """A salted scrypt hash of `password`, with its parameters, to store."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, ScryptParameters(SCRYPT_N, SCRYPT_R, SCRYPT_P))
    return (f"scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}$"
            f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}")


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash; compared in constant time."""
    try:
        scheme, params, salt, digest = stored.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        parameters = ScryptParameters(int(values["n"]), int(values["r"]), int(values["p"]))
        expected = base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except (ValueError, KeyError):
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(_scrypt(password, expected[0], parameters), expected[1])


def _scrypt(password: str, salt: bytes, parameters: ScryptParameters) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=parameters.n, r=parameters.r,
                          p=parameters.p, maxmem=_MAXMEM, dklen=HASH_BYTES)


@cache
def _decoy() -> str:
    """Checked against when the username is unknown, so that an unknown name takes as long
    to refuse as a wrong password and timing does not tell which names exist."""
    return hash_password(secrets.token_urlsafe(16))


def create_user(*, session: Session, username: str, role: str, password: str) -> ConsoleUser:
    """Add a console user with one role."""
    _check_username(username)
    if session.get(ConsoleUser, username) is not None:
        raise UserProblem(f"A console user '{username}' exists already.")
    user = ConsoleUser(username=username, role=_role(role).value,
                       password_hash=hash_password(_checked_password(password)), active=True)
    session.add(user)
    session.flush()
    return user


def authenticate_user(*, session: Session, username: str, password: str) -> ConsoleUser:
    """The active user with this username and password; LoginRefused otherwise."""
    user = session.get(ConsoleUser, username) if USERNAME.match(username) else None
    if user is None:
        verify_password(password, _decoy())
        raise LoginRefused("unknown_user")
    if not verify_password(password, user.password_hash):
        raise LoginRefused("wrong_password")
    if not user.active:
        raise LoginRefused("disabled")
    return user


def list_users(*, session: Session) -> list[ConsoleUser]:
    """Every console user, by name."""
    return list(session.scalars(select(ConsoleUser).order_by(ConsoleUser.username)))


def disable_user(*, session: Session, username: str) -> ConsoleUser:
    """Stop a user from logging in; their open sessions end at their next request."""
    user = _existing(session, username)
    user.active = False
    return user


def enable_user(*, session: Session, username: str) -> ConsoleUser:
    """Let a disabled user log in again."""
    user = _existing(session, username)
    user.active = True
    return user


def set_password(*, session: Session, username: str, password: str) -> ConsoleUser:
    """Give a user a new password; every session opened with the old one ends."""
    user = _existing(session, username)
    user.password_hash = hash_password(_checked_password(password))
    return user


def _existing(session: Session, username: str) -> ConsoleUser:
    user = session.get(ConsoleUser, username)
    if user is None:
        raise UserProblem(f"There is no console user '{username}'.")
    return user


def _check_username(username: str) -> None:
    if not USERNAME.match(username):
        raise UserProblem("A username is 2 to 64 characters: lower-case letters, digits, "
                          "'.', '_' or '-', starting with a letter or digit.")


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserProblem(f"The role must be one of {', '.join(Role)}.") from None


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserProblem(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise UserProblem(f"A password has at most {MAX_PASSWORD} characters.")
    return password
