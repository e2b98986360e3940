"""Dataverse-shaped errors: `{"error": {"code": "0x…", "message": …}}` with a hex code."""

from typing import Any

BAD_PROPERTY = "0x0"  # unknown property, bad query option, syntax error
NOT_FOUND = "0x80040217"  # "<table> With Id = <guid> Does Not Exist"
DUPLICATE = "0x80040237"  # "Cannot insert duplicate key"
INVALID_ARGUMENT = "0x80040203"  # invalid statecode/statuscode pair or transition
BUSINESS_RULE = "0x80040265"  # a proGres rule refused the change (plug-in style)
OPTION_OUT_OF_RANGE = "0x8004431a"
TOO_LONG = "0x80044331"
BAD_PAYLOAD = "0x80048d19"  # the body could not be read or converted
RESOURCE_NOT_FOUND = "0x8006088a"  # unknown entity set or segment
STALE_ETAG = "0x80060882"  # If-Match did not match the row version
AUTHENTICATION = "0x8005f101"  # missing, bad or expired bearer token
THROTTLED = "0x80072322"  # number of requests exceeded the limit
UNEXPECTED = "0x80040216"  # "An unexpected error occurred."
NO_PRIVILEGE = "0x80040220"  # "Principal user … is missing prvRead<table> privilege"


class ODataError(Exception):
    """An error answered in the Dataverse shape."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def fault_body(status: int, message: str) -> dict[str, Any]:
    """The body of an injected fault (see `sandboxes.faults`), as Dataverse would send it."""
    if status == 429:
        return error_body(THROTTLED, "Number of requests exceeded the limit of 6000 over time "
                                     "window of 300 seconds.")
    return error_body(UNEXPECTED, f"An unexpected error occurred. {message}")


def bad_property(name: str, edm_type: str) -> ODataError:
    return ODataError(400, BAD_PROPERTY,
                      f"Could not find a property named '{name}' on type '{edm_type}'.")


def not_found(logical: str, key: str) -> ODataError:
    return ODataError(404, NOT_FOUND, f"{logical} With Id = {key} Does Not Exist")
