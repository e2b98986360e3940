"""Console sessions: a signed, time-stamped cookie; nothing stored on the server.

The cookie holds the username, a stamp of the user's password hash and a CSRF token,
signed with HMAC-SHA-256 (itsdangerous) under a key derived with HKDF from the gateway's
encryption key ring, so no extra secret needs configuring. Every request reloads the
user: a disabled user's sessions end at once, and a new password ends every session
opened with the old one. Signing keys follow the ring: cookies signed under any key of
the ring are read, and new ones are signed under the active key.
"""

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.responses import Response

from gateway.protection.crypto import Keyring, keyring
from gateway.store.models import ConsoleUser

COOKIE = "casebridge_console"
COOKIE_PATH = "/console"
_HKDF_INFO = b"casebridge console session"
_SALT = "casebridge.console.session.v1"


@dataclass(frozen=True)
class ConsoleSession:
    """What a valid session cookie says."""

    username: str
    stamp: str
    csrf: str


def password_stamp(user: ConsoleUser) -> str:
    """Changes whenever the user's password does, which ends their older sessions."""
    return hashlib.sha256(b"casebridge console stamp\0" + user.password_hash.encode()
                          ).hexdigest()[:24]


def signing_keys(ring: Keyring) -> list[bytes]:
    """One session key per ring key, the active key's last (itsdangerous signs with it)."""
    order = [key_id for key_id in ring.keys if key_id != ring.active] + [ring.active]
    return [HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
            .derive(ring.keys[key_id]) for key_id in order]


class SessionCookies:
    """Issues and reads console session cookies."""

    def __init__(self, *, lifetime: timedelta, secure: bool) -> None:
        self.lifetime = lifetime
        self.secure = secure
        self._lock = threading.Lock()
        self._ring: Keyring | None = None
        self._serializer: URLSafeTimedSerializer | None = None

    def issue(self, user: ConsoleUser) -> tuple[str, ConsoleSession]:
        """A fresh session for `user` and its signed cookie value."""
        session = ConsoleSession(user.username, password_stamp(user), secrets.token_urlsafe(24))
        token = self._signer().dumps({"u": session.username, "s": session.stamp,
                                      "c": session.csrf})
        return str(token), session

    def read(self, token: str | None) -> ConsoleSession | None:
        """The session a cookie value holds; None when missing, altered or expired."""
        if not token:
            return None
        try:
            data = self._signer().loads(token, max_age=int(self.lifetime.total_seconds()))
        except BadData:
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in "usc"):
            return None
        return ConsoleSession(data["u"], data["s"], data["c"])

    def set_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(COOKIE, token, max_age=int(self.lifetime.total_seconds()),
                            path=COOKIE_PATH, secure=self.secure, httponly=True,
                            samesite="strict")

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=self.secure, httponly=True,
                               samesite="strict")

    def _signer(self) -> URLSafeTimedSerializer:
        # The process's key ring can be replaced (tests, a reload): follow it.
        ring = keyring()
        with self._lock:
            if self._serializer is None or ring is not self._ring:
                self._serializer = URLSafeTimedSerializer(
                    signing_keys(ring), salt=_SALT,
                    signer_kwargs={"digest_method": hashlib.sha256})
                self._ring = ring
            return self._serializer
