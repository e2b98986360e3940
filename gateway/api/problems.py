"""RFC 9457 problem+json for every 4xx and 5xx, from one place."""

import traceback
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway.api.routing import flat_routes
from gateway.errors import PROBLEM_BASE, CaseBridgeError
from gateway.json_pointer import pointer

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger()


def problem_response(
    *, status: int, slug: str, title: str, detail: str, instance: str,
    extensions: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail,
            "instance": instance, **(extensions or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(CaseBridgeError)
    async def casebridge_error(request: Request, error: CaseBridgeError) -> JSONResponse:
        log.info("request_refused", status=error.status, problem=error.slug)
        return problem_response(status=error.status, slug=error.slug, title=error.title,
                                detail=error.detail, instance=request.url.path,
                                extensions=error.extensions, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def parameter_error(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = []
        for item in error.errors():
            where, *path = item["loc"]
            errors.append({"pointer": pointer(path), "in": where, "rule": item["type"],
                           "detail": item["msg"]})
        return problem_response(status=400, slug="invalid-parameter", title="Invalid parameter",
                                detail="A query parameter or header is not valid.",
                                instance=request.url.path, extensions={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        slug = {404: "not-found", 405: "method-not-allowed"}.get(error.status_code, "http-error")
        headers = dict(getattr(error, "headers", None) or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(status=error.status_code, slug=slug, title=str(error.detail),
                                detail=f"{request.method} {request.url.path}: {error.detail}",
                                instance=request.url.path, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers at this path (Starlette's 405 names only
    those of the first route matching the path, where several routes share it)."""
    methods: set[str] = set()
    for route in flat_routes(request.app):
        match, _ = route.matches({**request.scope, "method": "\0"})
        if match is Match.PARTIAL:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)



def unexpected(request: Request, error: Exception) -> JSONResponse:
    """A 500 for an error nobody planned for.

    Called from the correlation middleware, so that the error never reaches Starlette's
    outer handler, which would hand the whole traceback to the server log. Exception
    messages can quote stored values (a database constraint does), so only the type and
    the code locations are logged, never the message.
    """
    frames = [f"{f.filename}:{f.lineno}" for f in traceback.extract_tb(error.__traceback__)]
    log.error("request_failed", error_type=type(error).__name__, frames=frames[-5:])
    return problem_response(status=500, slug="internal-error", title="Internal error",
                            detail="The gateway failed to handle this request; it is logged "
                                   "under the correlation id in the X-Correlation-ID header.",
                            instance=request.url.path)
