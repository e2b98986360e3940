"""HTTP to a proGres v4 (Dataverse) Web API: tokens, paging and failure classification.

Every failure leaves as `TransientDeliveryError` (timeout, dropped connection, 408, 5xx,
429 with the partner's Retry-After, a stale etag) or `PermanentDeliveryError` (other 4xx, with
the Dataverse error code as `partner_code`). Messages name only the operation, entity set,
record id, HTTP status and error code — never a value from a record, so they can be
logged and shown on the console.
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import structlog

from adapters.http import (
    BearerToken,
    access_token,
    failure,
    partner_message,
    tls,
    transport_failure,
)
from gateway.errors import TransientDeliveryError

log = structlog.get_logger()

API_PATH = "/api/data/v9.2"
ANNOTATIONS = 'odata.include-annotations="*"'
DUPLICATE = "0x80040237"
NOT_FOUND = "0x80040217"


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def partner_code(response: httpx.Response) -> str | None:
    """The error code of a Dataverse (`{"error": {"code"}}`) or OAuth (`{"error"}`) answer."""
    error = _error_body(response).get("error")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return str(error["code"])
    return error if isinstance(error, str) else None


def error_message(response: httpx.Response) -> str | None:
    """Dataverse's `error.message` (or OAuth's `error_description`), bounded; never logged.

    A Dataverse code alone often says nothing (`0x0` is any bad request): the message
    says which property or value proGres refused.
    """
    body = _error_body(response)
    error = body.get("error")
    if isinstance(error, dict):
        return partner_message(error.get("message"))
    return partner_message(body.get("error_description"))


def classify(response: httpx.Response, operation: str) -> None:
    """Raise the delivery error a non-2xx answer stands for; return on success."""
    status = response.status_code
    if status < 400:
        return
    code = partner_code(response)
    detail = f"proGres answered {status}{f' ({code})' if code else ''} to {operation}"
    # 412: the row changed under us (a stale etag), so read it again and retry.
    raise failure(response, detail, code=code, message=error_message(response),
                  also_transient={412})


def json_of(response: httpx.Response, operation: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise TransientDeliveryError(f"proGres sent an unreadable answer to {operation}",
                                     partner_status=response.status_code) from None


class ProgresClient:
    """An authenticated Dataverse Web API session (client-credentials bearer tokens)."""

    def __init__(self, base_url: str, *, client_id: str, client_secret: str,
                 token_url: str | None = None, scope: str | None = None,
                 timeout: float = 10.0, page_size: int = 500,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = self.base_url + API_PATH
        self.token_url = token_url or f"{self.base_url}/oauth2/v2.0/token"
        self.scope = scope or f"{self.base_url}/.default"
        self.page_size = page_size
        self._credentials = {"grant_type": "client_credentials", "client_id": client_id,
                             "client_secret": client_secret, "scope": self.scope}
        self._http = httpx.Client(timeout=timeout, transport=transport, verify=tls(), headers={
            "Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"},
            auth=BearerToken(self._fetch_token, system="progres"))

    def close(self) -> None:
        self._http.close()

    def _fetch_token(self) -> tuple[str, float]:
        """A client-credentials token and its lifetime in seconds."""
        operation = "the token request"
        try:
            response = self._http.request("POST", self.token_url, data=self._credentials,
                                          auth=None)
        except httpx.TransportError as error:
            raise transport_failure(f"proGres {operation}", error) from None
        classify(response, operation)
        return access_token(response, f"proGres {operation}")

    def request(self, method: str, url: str, operation: str, *,
                params: Mapping[str, str] | None = None, json_body: Any = None,
                headers: Mapping[str, str] | None = None) -> httpx.Response:
        """Send one call (a 401 renews the token once); raise what a failure stands for."""
        try:
            response = self._http.request(
                method, url, params=params,
                content=None if json_body is None else json.dumps(json_body),
                headers={**({"Content-Type": "application/json"} if json_body is not None
                            else {}), **(headers or {})})
        except httpx.TransportError as error:
            raise transport_failure(f"proGres {operation}", error) from None
        if response.status_code == 429:
            log.warning("progres_throttled", operation=operation,
                        retry_after=response.headers.get("retry-after"))
        classify(response, operation)
        return response

    def get(self, path: str, operation: str, *, params: Mapping[str, str] | None = None,
            annotations: bool = True) -> Any:
        """One GET under `/api/data/v9.2/`, its JSON body."""
        headers = {"Prefer": ANNOTATIONS} if annotations else {}
        response = self.request("GET", f"{self.api}/{path}", operation, params=params,
                                headers=headers)
        return json_of(response, operation)

    def rows(self, entity_set: str, operation: str, *,
             params: Mapping[str, str]) -> list[dict[str, Any]]:
        """The rows of one page of a query (for look-ups that fit in one page)."""
        body = self.get(entity_set, operation, params=params, annotations=False)
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise TransientDeliveryError(f"proGres sent an unreadable answer to {operation}")
        return rows

    def get_all(self, entity_set: str, operation: str, *,
                params: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every row of a query, page after page (`Prefer: odata.maxpagesize`, nextLink)."""
        url: str = f"{self.api}/{entity_set}"
        query: Mapping[str, str] | None = params
        headers = {"Prefer": f"odata.maxpagesize={self.page_size}, {ANNOTATIONS}"}
        while True:
            response = self.request("GET", url, operation, params=query, headers=headers)
            body = json_of(response, operation)
            rows = body.get("value") if isinstance(body, dict) else None
            if not isinstance(rows, list):
                raise TransientDeliveryError(f"proGres sent an unreadable answer to {operation}",
                                             partner_status=response.status_code)
            yield from rows
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            url, query = str(next_link), None  # followed unchanged: the skip token is opaque

    def create(self, entity_set: str, body: dict[str, Any], operation: str) -> str:
        """POST a row; its GUID, from the `OData-EntityId` header."""
        response = self.request("POST", f"{self.api}/{entity_set}", operation, json_body=body)
        entity_id = response.headers.get("odata-entityid", "")
        if "(" not in entity_id or not entity_id.endswith(")"):
            raise TransientDeliveryError(f"proGres did not name the record made by {operation}",
                                         partner_status=response.status_code)
        return str(entity_id).rsplit("(", 1)[1][:-1]

    def update(self, path: str, body: dict[str, Any], operation: str, *,
               if_match: str = "*") -> None:
        """PATCH a row; `If-Match` keeps PATCH from creating a missing row (an upsert)."""
        self.request("PATCH", f"{self.api}/{path}", operation, json_body=body,
                     headers={"If-Match": if_match})
