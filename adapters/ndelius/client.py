"""HTTP to one nDelius: HMPPS Auth tokens, failure classification, Spring paging.

Every failure leaves here as a `TransientDeliveryError` (timeouts, cut connections, 5xx,
408, 429 with the partner's Retry-After, unreadable answers) or a
`PermanentDeliveryError` (any other 4xx, with the partner's `errorCode`). Messages name
the operation, the status, the partner's error code and gateway or NSI ids — never a
request path (it may hold a CRN) nor the partner's own message (it may quote values).
"""

import re
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from adapters.http import (
    BearerToken,
    access_token,
    failure,
    partner_message,
    tls,
    transport_failure,
)
from gateway.errors import DeliveryError, TransientDeliveryError

Json = dict[str, Any]
TOKEN_PATH = "/auth/oauth/token"
_SAFE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class NdeliusClient:
    """An authenticated JSON client for one nDelius base URL; safe to share between threads."""

    def __init__(self, base_url: str, *, client_id: str, client_secret: str, timeout: float,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._credentials = (client_id, client_secret)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  verify=tls(), headers={"Accept": "application/json"},
                                  auth=BearerToken(self._fetch_token, system="ndelius"))

    def close(self) -> None:
        self._http.close()

    def _fetch_token(self) -> tuple[str, float]:
        """A client-credentials token (HTTP Basic client authentication) and its lifetime."""
        operation = "token"
        try:
            response = self._http.post(TOKEN_PATH, params={"grant_type": "client_credentials"},
                                       auth=self._credentials)
        except httpx.TransportError as error:
            raise transport_failure(_message(operation, "failed", ""), error) from None
        if response.status_code != 200:
            raise classify(operation, response, "")
        return access_token(response, _message(operation, "answered", ""))

    def request(self, operation: str, method: str, path: str, *, about: str = "",
                params: Mapping[str, Any] | None = None, json: Json | None = None,
                allow: tuple[int, ...] = ()) -> httpx.Response:
        """Send one authenticated request; a 2xx or a status in `allow` is returned, any other
        answer raised as a delivery error. A 401 renews the token and tries once more."""
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.TransportError as error:
            raise transport_failure(_message(operation, "failed", about), error) from None
        if response.is_success or response.status_code in allow:
            return response
        raise classify(operation, response, about)

    def get_json(self, operation: str, path: str, *, about: str = "",
                 params: Mapping[str, Any] | None = None) -> Json:
        return _json(operation, self.request(operation, "GET", path, about=about,
                                             params=params), about)

    def pages(self, operation: str, path: str, *, params: Mapping[str, Any], size: int = 100,
              max_pages: int = 100, about: str = "") -> Iterator[Json]:
        """Every item of a Spring-paged list (`content`, `last`), page by page."""
        for page in range(max_pages):
            body = self.get_json(operation, path, about=about,
                                 params={**params, "page": page, "size": size})
            content = body.get("content")
            if not isinstance(content, list):
                raise unexpected(operation, about)
            for item in content:
                if not isinstance(item, dict):
                    raise unexpected(operation, about)
                yield item
            if body.get("last", True) or not content:
                return


def json_body(operation: str, response: httpx.Response, about: str = "") -> Json:
    """The answer's JSON object, or a transient error when it cannot be read."""
    return _json(operation, response, about)


def _json(operation: str, response: httpx.Response, about: str) -> Json:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise unexpected(operation, about, response.status_code)
    return body


def unexpected(operation: str, about: str = "",
               status: int | None = None) -> TransientDeliveryError:
    return TransientDeliveryError(_message(operation, "answered an unreadable body", about),
                                  partner_status=status)


def classify(operation: str, response: httpx.Response,
             about: str) -> DeliveryError:
    """The delivery error for a non-2xx answer."""
    status, code = response.status_code, partner_code(response)
    said = f"answered {status}" + (f" ({code})" if code else "")
    return failure(response, _message(operation, said, about), code=code,
                   message=error_message(response))


def _error_body(response: httpx.Response) -> Json | None:
    """An error answer's JSON object, or None when it is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def partner_code(response: httpx.Response) -> str | None:
    """The HMPPS `errorCode` (or OAuth `error`) of an error answer, if it is a plain code."""
    body = _error_body(response)
    if body is None:
        return None
    code = body.get("errorCode")
    if code is None:
        code = body.get("error")
    if isinstance(code, int):
        code = str(code)
    return code if isinstance(code, str) and _SAFE_CODE.match(code) else None


def error_message(response: httpx.Response) -> str | None:
    """HMPPS `userMessage` and `developerMessage` (or OAuth `error_description`), bounded.

    They often quote the record (a CRN, a name), so they go only to the encrypted store.
    """
    body = _error_body(response)
    if body is None:
        return None
    return partner_message(body.get("userMessage"), body.get("developerMessage"),
                           body.get("error_description"))


def _message(operation: str, what: str, about: str) -> str:
    return f"ndelius {operation} {what}" + (f" [{about}]" if about else "")
