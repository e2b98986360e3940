"""HTTP to one Primero v2 instance: token login and refresh, failure classification, paging.

Every failure leaves this module as a `TransientDeliveryError` (timeouts, dropped or
cut connections, 5xx, 408, 429 and 503 with the partner's `Retry-After`) or a
`PermanentDeliveryError` (any other 4xx, and a 401 that a fresh login does not cure).
Their messages carry the method, the path (ids only), the HTTP status, the i18n error
keys and field names Primero names — never a value from a record.
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from adapters.http import (
    BearerToken,
    failure,
    is_transient,
    partner_message,
    tls,
    transport_failure,
)
from gateway.errors import PermanentDeliveryError, TransientDeliveryError

# Primero's error messages that carry no record values: i18n keys and fixed phrases.
_I18N_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+){2,}$")
_FIXED_MESSAGES = frozenset({
    "Forbidden", "Not Found", "Unauthorized", "Invalid Record JSON", "Service Unavailable",
    "Conflict: A record with this id already exists", "Invalid User name or password.",
    "Your account is locked.",
})
# Field names and JSON Pointers as Primero writes them (lower snake case, row indexes).
_FIELD = re.compile(r"^(/?[a-z][a-z0-9_]*)(/([a-z][a-z0-9_]*|\d+))*$")

Params = Mapping[str, str | int]


class PrimeroClient:
    """A logged-in session with one Primero; the token is renewed when Primero refuses it."""

    def __init__(self, base_url: str, *, user: str, password: str, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.user = user
        self._password = password
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v2", timeout=timeout,
                                  transport=transport, verify=tls(),
                                  headers={"Accept": "application/json"})
        self._auth = BearerToken(self._log_in, system="primero")

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, *, params: Params | None = None,
                body: dict[str, Any] | None = None,
                accept: frozenset[int] = frozenset()) -> httpx.Response:
        """Send with a valid token (logging in again once on a 401); classify failures.

        Statuses in `accept` come back as they are instead of raising.
        """
        response = self._send(method, path, params=params, body=body, auth=self._auth)
        if response.status_code not in accept:
            raise_for_status(response, f"{method} {path}")
        return response

    def get_data(self, path: str, params: Params | None = None) -> Any:
        """The `data` of a GET answer."""
        return data_of(self.request("GET", path, params=params), f"GET {path}")

    def pages(self, path: str, params: Params, *, per: int) -> Iterator[list[dict[str, Any]]]:
        """Every page of a paged list, by `page` / `per` until `metadata.total` is reached."""
        page = 1
        while True:
            response = self.request("GET", path, params={**params, "page": page, "per": per})
            body = json_of(response, f"GET {path}")
            rows = records(body.get("data"), f"GET {path}")
            yield rows
            metadata = body.get("metadata") or {}
            total = metadata.get("total") if isinstance(metadata, dict) else None
            seen = (page - 1) * per + len(rows)
            if not rows or len(rows) < per or (isinstance(total, int) and seen >= total):
                return
            page += 1

    def _log_in(self) -> tuple[str, None]:
        """A session token; Primero keeps it until it refuses it, so no lifetime."""
        body = {"user": {"user_name": self.user, "password": self._password}}
        response = self._send("POST", "/tokens", body=body, auth=None)
        if response.status_code in (401, 403):
            raise PermanentDeliveryError(
                f"Primero refused the adapter's login (HTTP {response.status_code})",
                partner_status=response.status_code, partner_code=partner_code(response))
        raise_for_status(response, "POST /tokens")
        token = json_of(response, "POST /tokens").get("token")
        if not token:
            scheme, _, header_token = response.headers.get("authorization", "").partition(" ")
            token = header_token if scheme.lower() == "bearer" else None
        if not isinstance(token, str) or not token:
            raise PermanentDeliveryError("Primero's login answer holds no token",
                                         partner_status=response.status_code)
        return token, None

    def _send(self, method: str, path: str, *, params: Params | None = None,
              body: dict[str, Any] | None = None,
              auth: httpx.Auth | None = None) -> httpx.Response:
        try:
            return self._http.request(method, path, params=params, json=body, auth=auth)
        except httpx.TransportError as error:
            raise transport_failure(f"Primero {method} {path}", error) from None


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Nothing for a 2xx; else the transient or permanent error the answer stands for."""
    status = response.status_code
    if status < 400:
        return
    code = partner_code(response)
    # The fields a refusal blames help the IM officer; a retry needs no such hint.
    fields = [] if is_transient(status) else invalid_fields(response)
    raise failure(response, f"Primero {what}: HTTP {status}" + (f" ({code})" if code else "")
                  + (f" on {', '.join(fields)}" if fields else ""),
                  code=code, message=error_message(response))


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    found = body.get("errors") if isinstance(body, dict) else None
    return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []


def partner_code(response: httpx.Response) -> str | None:
    """Primero's error keys (`transition.errors.consent`, `Not Found` …), comma-joined."""
    codes: list[str] = []
    for entry in _errors(response):
        message = entry.get("message")
        for key in message if isinstance(message, list) else [message]:
            if isinstance(key, str) and (_I18N_KEY.match(key) or key in _FIXED_MESSAGES):
                codes.append(key)
    return ",".join(dict.fromkeys(codes)) or None


def error_message(response: httpx.Response) -> str | None:
    """Every error entry's `detail: message` as Primero wrote it, bounded; never logged.

    Unlike `partner_code`, this keeps free text (a JWT error, a message that quotes a
    value), which is why it goes only to the encrypted store.
    """
    parts: list[str] = []
    for entry in _errors(response):
        message, detail = entry.get("message"), entry.get("detail")
        said = ", ".join(str(m) for m in (message if isinstance(message, list) else [message])
                         if m is not None)
        where = ", ".join(str(d) for d in (detail if isinstance(detail, list) else [detail])
                          if d is not None)
        parts.append(f"{where}: {said}" if where and said else where or said)
    return partner_message(*parts)


def invalid_fields(response: httpx.Response) -> list[str]:
    """The fields (names or JSON Pointers) a 422 blames; never their values."""
    fields: list[str] = []
    for entry in _errors(response):
        detail = entry.get("detail")
        for name in detail if isinstance(detail, list) else [detail]:
            if isinstance(name, str) and _FIELD.match(name):
                fields.append(name)
    return list(dict.fromkeys(fields))


def json_of(response: httpx.Response, what: str) -> dict[str, Any]:
    """The answer's JSON object; an unreadable answer is worth another try."""
    try:
        body = response.json()
    except ValueError:
        raise TransientDeliveryError(f"Primero {what}: unreadable answer",
                                     partner_status=response.status_code) from None
    if not isinstance(body, dict):
        raise TransientDeliveryError(f"Primero {what}: answer is not a JSON object",
                                     partner_status=response.status_code)
    return body


def data_of(response: httpx.Response, what: str) -> Any:
    """The `data` member of an answer."""
    return json_of(response, what).get("data")


def record(value: Any, what: str) -> dict[str, Any]:
    """`value` as one record (a JSON object)."""
    if not isinstance(value, dict):
        raise TransientDeliveryError(f"Primero {what}: answer holds no record")
    return value


def records(value: Any, what: str) -> list[dict[str, Any]]:
    """`value` as a list of records."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TransientDeliveryError(f"Primero {what}: answer holds no list of records")
    return value
