"""The middleware every request passes: its correlation id, the security headers of its
answer, the one place an unplanned error becomes a 500, and the `request_handled` line.

A plain ASGI middleware: Starlette's `BaseHTTPMiddleware` runs the app in a task of its own
and streams the answer through a memory channel, which costs intake more CPU than its
store work does.
"""

import re
import time

import structlog
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api import problems
from gateway.api.headers import add_security_headers
from gateway.logs import CORRELATION_HEADER, bind_correlation_id, new_correlation_id

log = structlog.get_logger()
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
_HEADER = CORRELATION_HEADER.lower().encode("latin-1")


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER), "")
        correlation_id = given if _CORRELATION_ID.match(given) else new_correlation_id()
        bind_correlation_id(correlation_id)
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        path, https = scope["path"], scope.get("scheme") == "https"
        started = time.perf_counter()
        status: int | None = None

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.setdefault(CORRELATION_HEADER, correlation_id)
                add_security_headers(path, https, headers)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as error:
            response = problems.unexpected(Request(scope), error)  # logs type and places
            if status is None:
                await response(scope, receive, send_with_headers)
            # else the answer was under way: the server closes the connection unfinished.
        finally:
            route = scope.get("route")
            log.info("request_handled", method=scope["method"],
                     route=getattr(route, "path", "unmatched"), status=status or 500,
                     ms=round((time.perf_counter() - started) * 1000, 1))
