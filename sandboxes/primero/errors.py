"""Primero's error envelope: `{"errors": [{status, resource, message, detail?}]}`.

The key is `status` (the HTTP code as an integer), as in Primero's
`api/v2/errors/_error.json.jbuilder`; older hand-written docs call it `code`. A 422 from
model validation has one entry per invalid field, `detail` naming the field and
`message` an array of i18n keys (e.g. `detail: "consent"`,
`message: ["transition.errors.consent"]`).
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

FORBIDDEN = "Forbidden"
NOT_FOUND = "Not Found"
UNAUTHORIZED = "Unauthorized"
INVALID_RECORD_JSON = "Invalid Record JSON"
CONFLICT = "Conflict: A record with this id already exists"


class PrimeroError(Exception):
    """An answer in Primero's error envelope; `entries` are `{message, detail?}` items."""

    def __init__(self, status: int, entries: list[dict[str, Any]],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.entries = entries
        self.headers = headers or {}


def error(status: int, message: Any, detail: Any = None) -> PrimeroError:
    """One-entry error."""
    entry: dict[str, Any] = {"message": message}
    if detail is not None:
        entry["detail"] = detail
    return PrimeroError(status, [entry])


def invalid_fields(problems: dict[str, str]) -> PrimeroError:
    """A model-validation 422: one entry per field, the message an array of i18n keys."""
    return PrimeroError(422, [{"detail": field, "message": [key]}
                              for field, key in problems.items()])


def body(status: int, resource: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"errors": [{"status": status, "resource": resource, **entry} for entry in entries]}


def fault_body(status: int, message: str) -> dict[str, Any]:
    """The body the fault injector sends for a 429 or 500 it makes up."""
    return body(status, "/api/v2", [{"message": message}])


def install(app: FastAPI) -> None:
    """Answer every error, planned or not, in Primero's envelope."""

    @app.exception_handler(PrimeroError)
    def primero_error(request: Request, exc: PrimeroError) -> JSONResponse:
        return JSONResponse(body(exc.status, request.url.path, exc.entries),
                            status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    def unreadable(request: Request, exc: RequestValidationError) -> JSONResponse:
        pointers = ["/" + "/".join(str(p) for p in e.get("loc", ())[1:]) for e in exc.errors()]
        return JSONResponse(body(422, request.url.path,
                                 [{"message": INVALID_RECORD_JSON, "detail": pointers}]),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: NOT_FOUND, 405: "Method Not Allowed"}.get(exc.status_code,
                                                                   str(exc.detail))
        return JSONResponse(body(exc.status_code, request.url.path, [{"message": message}]),
                            status_code=exc.status_code)

    @app.exception_handler(Exception)
    def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(body(500, request.url.path, [{"message": type(exc).__name__}]),
                            status_code=500)
