"""HTTP details every adapter shares: bearer tokens, and what a failure stands for."""

import math
import ssl
import threading
import time
from collections.abc import Callable, Collection, Generator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache

import httpx
import structlog

from gateway.errors import DeliveryError, PermanentDeliveryError, TransientDeliveryError

log = structlog.get_logger()


@cache
def tls() -> ssl.SSLContext:
    """The TLS settings of every connection to a partner system from this process, made once:
    left to itself httpx makes them for each client, reading the CA bundle again (20-50 ms
    of CPU), and the gateway makes a client for each adapter it builds."""
    return httpx.create_ssl_context()


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


PARTNER_MESSAGE_LIMIT = 500


def partner_message(*parts: object) -> str | None:
    """The partner's own words about an error: the text parts joined, cut to 500 characters.

    They may quote a record's values, so they go to the encrypted store only (see
    `DeliveryError.partner_error`), never into a log line, an error detail or the broker.
    """
    texts = list(dict.fromkeys(str(p).strip() for p in parts
                               if isinstance(p, str | int | float) and str(p).strip()))
    if not texts:
        return None
    text = " | ".join(texts)
    return text if len(text) <= PARTNER_MESSAGE_LIMIT else text[:PARTNER_MESSAGE_LIMIT - 1] + "…"


def is_transient(status: int) -> bool:
    """Whether a partner's HTTP error status is worth another try: 408, 429 or any 5xx."""
    return status in (408, 429) or status >= 500


def failure(response: httpx.Response, detail: str, *, code: str | None, message: str | None,
            also_transient: Collection[int] = ()) -> DeliveryError:
    """The delivery error a partner's error answer stands for, the one rule for every adapter.

    408, 429 and 5xx (and a partner's own `also_transient` statuses) are transient and carry
    the partner's `Retry-After`; any other status is permanent. `detail` is what may be
    logged; `code` and `message` are the partner's own, kept for the encrypted store.
    """
    status = response.status_code
    if is_transient(status) or status in also_transient:
        return TransientDeliveryError(detail, retry_after=retry_after(
            response.headers.get("retry-after")), partner_status=status, partner_code=code,
            partner_message=message)
    return PermanentDeliveryError(detail, partner_status=status, partner_code=code,
                                  partner_message=message)


def transport_failure(detail: str, error: httpx.TransportError) -> TransientDeliveryError:
    """A timeout or broken connection, always worth another try.

    Only the error's class name is kept: httpx's own message can quote the URL, and a URL
    can hold a record id such as a CRN.
    """
    what = "no answer in time" if isinstance(error, httpx.TimeoutException) \
        else "connection failed"
    return TransientDeliveryError(f"{detail}: {what} ({type(error).__name__})")


def access_token(response: httpx.Response, detail: str) -> tuple[str, float]:
    """`access_token` and `expires_in` (seconds) of an OAuth2 token answer (RFC 6749 §5.1).

    An answer without them is worth another try. Some servers write `expires_in` as text.
    """
    try:
        body = response.json()
        token, lifetime = body["access_token"], float(body["expires_in"])
    except (ValueError, KeyError, TypeError):
        token = lifetime = None
    if not isinstance(token, str) or not token or lifetime is None:
        raise TransientDeliveryError(f"{detail}: an unreadable answer",
                                     partner_status=response.status_code)
    return token, lifetime


TokenFetch = Callable[[], tuple[str, float | None]]


class BearerToken(httpx.Auth):
    """`Authorization: Bearer` for an adapter client, after httpx's auth-flow pattern.

    The token comes from `fetch` (OAuth client credentials, a login, …), which returns it
    with its lifetime in seconds (None: until refused). It is fetched on the first request,
    shared by every thread of the client, renewed a little before it expires, and renewed
    once when the partner answers 401 — the request is then sent once more; a second 401
    reaches the caller. `fetch` raises the delivery error its own failure stands for.
    """

    def __init__(self, fetch: TokenFetch, *, system: str) -> None:
        self._fetch = fetch
        self._system = system
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                              None]:
        """Send with the cached token; on a 401, once more with a fresh one."""
        token = self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            log.info("partner_token_refused", system=self._system)
            self._forget(token)
            request.headers["Authorization"] = f"Bearer {self._current()}"
            yield request

    def _current(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                token, lifetime = self._fetch()
                # Renew a little before expiry, so a request never leaves with a dying token.
                self._renew_at = math.inf if lifetime is None else \
                    time.monotonic() + lifetime - min(60.0, lifetime / 10)
                self._token = token
                log.info("partner_token_fetched", system=self._system, expires_in=lifetime)
            return self._token

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._token == token:
                self._token = None
