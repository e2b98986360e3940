"""A fake Microsoft Entra ID: client-credentials tokens, bearer checks, per-client limits.

Tokens are HS256 JWTs (PyJWT) carrying the application user (`oid`) they act as and an
expiry; rotating the signing key (`revoke_all`) makes every token issued so far invalid,
which lets tests exercise a token refresh without waiting for expiry. The service
protection limit answers 429 with Retry-After once a client has sent more than
`rate_limit` requests within `rate_window` seconds (Dataverse: 6,000 per 5 minutes).
"""

import hmac
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from sandboxes.progres.errors import AUTHENTICATION, THROTTLED, ODataError


@dataclass(frozen=True)
class Client:
    """An app registration and the Dataverse (application) user it acts as."""

    client_id: str
    secret: str
    user_id: str


@dataclass(frozen=True)
class Principal:
    client_id: str
    user_id: str


class TokenError(Exception):
    """An OAuth 2.0 error answer: `{"error", "error_description"}`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class TokenIssuer:
    def __init__(self, clients: Mapping[str, Client], *, lifetime: float) -> None:
        self.clients = dict(clients)
        self.lifetime = lifetime
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, form: Mapping[str, str]) -> dict[str, object]:
        """Answer a token request (client-credentials grant only)."""
        if form.get("grant_type") != "client_credentials":
            raise TokenError(400, "unsupported_grant_type",
                             "AADSTS70003: The app requested an unsupported grant type.")
        client = self.clients.get(form.get("client_id", ""))
        if client is None:
            raise TokenError(400, "unauthorized_client",
                             "AADSTS700016: Application was not found in the directory.")
        if not hmac.compare_digest(client.secret, form.get("client_secret", "")):
            raise TokenError(401, "invalid_client",
                             "AADSTS7000215: Invalid client secret provided.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            raise TokenError(400, "invalid_scope",
                             "AADSTS1002012: The provided value for scope is not valid. "
                             "Client credential flows must have a scope value with /.default "
                             "suffixed to the resource identifier.")
        now = time.time()
        claims = {"aud": scope.removesuffix("/.default"), "iss": "https://sts.sandbox.local/",
                  "iat": int(now), "nbf": int(now),
                  # NumericDate in whole seconds, rounded up so a token lives its full lifetime.
                  "exp": math.ceil(now + self.lifetime),
                  "appid": client.client_id, "oid": client.user_id}
        with self._lock:
            key = self._key
            self.issued += 1
        return {"token_type": "Bearer", "expires_in": max(1, math.floor(self.lifetime)),
                "ext_expires_in": max(1, math.floor(self.lifetime)),
                "access_token": jwt.encode(claims, key, algorithm="HS256")}

    def verify(self, authorization: str | None, *, challenge: str) -> Principal:
        """The principal behind an `Authorization: Bearer …` header, or a 401."""
        def refuse(message: str) -> ODataError:
            return ODataError(401, AUTHENTICATION, message, {"WWW-Authenticate": challenge})

        if not authorization or not authorization.startswith("Bearer "):
            raise refuse("The requested resource requires authentication.")
        with self._lock:
            key = self._key
        try:
            # The audience is the environment URL the client asked for; any is accepted here.
            claims = jwt.decode(authorization.removeprefix("Bearer "), key, algorithms=["HS256"],
                                options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise refuse("The access token has expired.") from None
        except jwt.InvalidTokenError:
            raise refuse("The bearer token is not valid.") from None
        return Principal(client_id=claims["appid"], user_id=claims["oid"])

    def revoke_all(self) -> None:
        """Invalidate every token issued so far."""
        with self._lock:
            self._key = secrets.token_bytes(32)


class RateLimiter:
    """Service protection limit: at most `limit` requests per client per sliding window."""

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault(client_id, deque())
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if len(seen) >= self.limit:
                retry_after = max(1, math.ceil(seen[0] + self.window - now))
                raise ODataError(429, THROTTLED,
                                 f"Number of requests exceeded the limit of {self.limit} over "
                                 f"time window of {int(self.window)} seconds.",
                                 {"Retry-After": str(retry_after)})
            seen.append(now)
