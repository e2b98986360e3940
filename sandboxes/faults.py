"""Fault injection shared by every sandbox: latency, failures, dropped connections, throttling.

Switched at start (`casebridge sandbox NAME --failure-rate 0.3`) or at run time with
`PUT /_sandbox/faults`. Decisions come from a seeded random generator, so a test can
repeat a run exactly. Paths under `/_sandbox/` are never faulted.
"""

import asyncio
import json
import random
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorBody = Callable[[int, str], dict[str, Any]]


class Faults(BaseModel):
    latency_ms: int = Field(default=0, ge=0, description="added to every answer")
    failure_rate: float = Field(default=0.0, ge=0, le=1, description="share answered 500")
    drop_rate: float = Field(default=0.0, ge=0, le=1,
                             description="share whose connection is cut mid-answer")
    lost_response_rate: float = Field(
        default=0.0, ge=0, le=1,
        description="share handled in full (committed) whose answer is then cut off")
    throttle_rate: float = Field(default=0.0, ge=0, le=1, description="share answered 429")
    retry_after: int = Field(default=1, ge=0, description="seconds in Retry-After on a 429")
    seed: int | None = Field(default=None, description="seed of the fault generator")


class FaultInjector:
    """ASGI middleware applying the current `Faults` to each request."""

    def __init__(self, app: ASGIApp, *, error_body: ErrorBody) -> None:
        self.app = app
        self.error_body = error_body
        self.faults = Faults()
        self._random = random.Random()
        self._lock = threading.Lock()
        self.counts = {"failed": 0, "dropped": 0, "throttled": 0, "lost": 0}

    def configure(self, faults: Faults) -> None:
        with self._lock:
            self.faults = faults
            self._random = random.Random(faults.seed)
            self.counts = dict.fromkeys(self.counts, 0)

    def _draw(self) -> str | None:
        with self._lock:
            roll, f = self._random.random(), self.faults
        for name, share in (("throttled", f.throttle_rate), ("failed", f.failure_rate),
                            ("dropped", f.drop_rate), ("lost", f.lost_response_rate)):
            if roll < share:
                self.counts[name] += 1
                return name
            roll -= share
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        fault = self._draw()
        if fault == "throttled":
            await _answer(send, 429, self.error_body(429, "Too many requests; retry later."),
                          [(b"retry-after", str(self.faults.retry_after).encode())])
        elif fault == "failed":
            await _answer(send, 500, self.error_body(500, "Unexpected server error."))
        elif fault == "dropped":
            await _cut(send)
        elif fault == "lost":
            # The request takes full effect; only its answer never arrives.
            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _cut(send)
        else:
            await self.app(scope, receive, send)


async def _cut(send: Send) -> None:
    """Start an answer that promises a body, then stop: the client sees the connection
    cut mid-answer, as when a proxy or the server dies."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"1000")]})
    raise ConnectionAbortedError("sandbox cut the connection on purpose")


async def _answer(send: Send, status: int, body: dict[str, Any],
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    start: Message = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
        *(extra or [])]}
    await send(start)
    await send({"type": "http.response.body", "body": payload})


def install(app: FastAPI, *, error_body: ErrorBody, faults: Faults | None = None) -> None:
    """Add the fault injector and its `/_sandbox/faults` switch to a sandbox app."""
    holder: dict[str, FaultInjector] = {}

    def factory(inner: ASGIApp, **_: Any) -> FaultInjector:
        injector = FaultInjector(inner, error_body=error_body)
        injector.configure(faults or Faults())
        holder["injector"] = injector
        return injector

    app.add_middleware(factory)  # type: ignore[arg-type]
    router = APIRouter(prefix="/_sandbox", tags=["sandbox"])

    @router.get("/faults")
    def read_faults() -> dict[str, Any]:
        injector = holder["injector"]
        return {**injector.faults.model_dump(), "counts": injector.counts}

    @router.put("/faults")
    def set_faults(new: Faults) -> dict[str, Any]:
        holder["injector"].configure(new)
        return new.model_dump()

    app.include_router(router)
