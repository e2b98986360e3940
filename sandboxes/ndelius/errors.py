"""Errors in the HMPPS API shapes.

Two are real and a partner may face either (§6.5): the Community API's
`{status, errorCode, userMessage, developerMessage, moreInfo}` (`ErrorStyle`
"community-api", the default) and the probation integration services'
`{status, message, fields?}` ("integration"; `fields` names each invalid field of a 400).
404 from NotFoundException, 409 from ConflictException, 400 from InvalidRequestException;
the sandbox adds 422 for a well-formed request that breaks a reference-data or workflow rule.
"""

from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 422: "UNPROCESSABLE_ENTITY",
               429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR",
               503: "SERVICE_UNAVAILABLE"}


ErrorStyle = Literal["community-api", "integration"]


def error_body(status: int, message: str, *, error_code: str | None = None,
               developer_message: str | None = None, style: ErrorStyle = "community-api",
               fields: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The HMPPS error document; also used by the fault injector for its 429 and 500."""
    if style == "integration":
        return {"status": status, "message": message, **({"fields": fields} if fields else {})}
    return {"status": status, "errorCode": error_code or ERROR_CODES.get(status, str(status)),
            "userMessage": message, "developerMessage": developer_message or message,
            "moreInfo": None}


class DeliusError(Exception):
    status = 500
    error_code = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, error_code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        if error_code:
            self.error_code = error_code


class InvalidRequest(DeliusError):
    status, error_code = 400, "BAD_REQUEST"


class Unauthorised(DeliusError):
    status, error_code = 401, "UNAUTHORIZED"


class Forbidden(DeliusError):
    status, error_code = 403, "FORBIDDEN"


class NotFound(DeliusError):
    status, error_code = 404, "NOT_FOUND"

    def __init__(self, entity: str, field: str, value: object) -> None:
        # The wording of the real NotFoundException(entity, field, value).
        super().__init__(f"{entity} with {field} of {value} not found")


class Conflict(DeliusError):
    status, error_code = 409, "CONFLICT"


class Unprocessable(DeliusError):
    status, error_code = 422, "UNPROCESSABLE_ENTITY"


def install(app: FastAPI, style: ErrorStyle = "community-api") -> None:
    """Answer every error, including FastAPI's own, in the HMPPS shape `style`."""

    @app.exception_handler(DeliusError)
    async def delius_error(_: Request, error: DeliusError) -> JSONResponse:
        return JSONResponse(error_body(error.status, error.message, error_code=error.error_code,
                                       style=style),
                            status_code=error.status, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        # Name the fields and rules, never the values sent.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors())
        fields = [{"field": ".".join(str(part) for part in item["loc"][1:]),
                   "message": str(item["msg"])} for item in error.errors()]
        return JSONResponse(error_body(400, "Validation failure", error_code="VALIDATION_FAILURE",
                                       developer_message=problems, style=style, fields=fields),
                            status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body(error.status_code, str(error.detail), style=style),
                            status_code=error.status_code, headers=error.headers)
