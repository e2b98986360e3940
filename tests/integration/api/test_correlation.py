"""The request middleware: correlation id, security headers, unplanned errors as a 500;
a small app behind it, served by a real uvicorn on 127.0.0.1."""

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from structlog.testing import capture_logs

from gateway.api.correlation import CorrelationMiddleware
from servers import LiveServer

SECRET = "Amina Yusuf, born 2011"  # fictional: must never reach a log line


def make_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(CorrelationMiddleware)

    @app.get("/v1/fine")
    async def fine() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/broken")
    async def broken() -> None:
        raise RuntimeError(SECRET)

    @app.get("/v1/broken-midway")
    async def broken_midway() -> StreamingResponse:
        async def chunks():  # type: ignore[no-untyped-def]
            yield b"["
            raise RuntimeError(SECRET)
        return StreamingResponse(chunks(), media_type="application/json")

    @app.get("/console/page")
    async def page() -> dict[str, str]:
        return {}

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with LiveServer(make_app()) as server, httpx.Client(base_url=server.url) as client:
        yield client


def test_a_given_correlation_id_is_kept_and_a_bad_one_replaced(client: httpx.Client) -> None:
    kept = client.get("/v1/fine", headers={"X-Correlation-ID": "case-1234-abcd"})
    assert kept.headers["X-Correlation-ID"] == "case-1234-abcd"
    replaced = client.get("/v1/fine", headers={"X-Correlation-ID": "<script>"})
    assert replaced.headers["X-Correlation-ID"] != "<script>"
    assert len(replaced.headers["X-Correlation-ID"]) == 36


def test_every_answer_has_its_security_headers(client: httpx.Client) -> None:
    api = client.get("/v1/fine").headers
    assert (api["X-Content-Type-Options"], api["X-Frame-Options"]) == ("nosniff", "DENY")
    assert api["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert api["Cache-Control"] == "no-store" and api["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in api
    console = client.get("/console/page").headers
    assert "script-src 'self'" in console["Content-Security-Policy"]
    assert console["Referrer-Policy"] == "same-origin"
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as behind a TLS-ending proxy
    https = client.get("/v1/fine", headers={"X-Forwarded-Proto": "https"}).headers
    assert https["Strict-Transport-Security"] == "max-age=31536000"


def test_an_unplanned_error_is_a_500_problem_and_its_message_is_not_logged(
        client: httpx.Client) -> None:
    with capture_logs() as logs:
        answer = client.get("/v1/broken")
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["type"].endswith("internal-error")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "X-Correlation-ID" in answer.headers
    failed = next(e for e in logs if e["event"] == "request_failed")
    assert failed["error_type"] == "RuntimeError"
    handled = next(e for e in logs if e["event"] == "request_handled")
    assert (handled["status"], handled["route"]) == (500, "/v1/broken")
    assert SECRET not in repr(logs)


def test_an_error_after_the_answer_started_is_logged_and_not_sent_twice(
        client: httpx.Client) -> None:
    with capture_logs() as logs, pytest.raises(httpx.RemoteProtocolError):
        client.get("/v1/broken-midway")  # the start had gone: the connection ends unfinished
    assert [e["event"] for e in logs].count("request_failed") == 1
    assert SECRET not in repr(logs)
