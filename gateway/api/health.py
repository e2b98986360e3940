"""Liveness, readiness and the published contracts."""

import asyncio
from typing import Annotated, Any

import pika
from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from gateway.api.deps import ContractsDep
from gateway.api.openapi import problems
from gateway.api.schemas import Health
from gateway.errors import NotFound, ServiceUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="The database and the broker answer",
            responses=problems(503))
async def readyz(request: Request) -> Health:
    settings = request.app.state.settings
    checks = dict(zip(("database", "broker"), await asyncio.gather(
        _check(lambda: _ping_database(request), settings.readiness_timeout),
        _check(lambda: _ping_broker(settings.amqp_url, settings.readiness_timeout),
               settings.readiness_timeout),
    ), strict=True))
    if any(v != "ok" for v in checks.values()):
        raise ServiceUnavailable("A dependency of the gateway does not answer.", checks)
    return Health(status="ready", checks=checks)


async def _check(probe: Any, timeout: float) -> str:
    try:
        await asyncio.wait_for(run_in_threadpool(probe), timeout=timeout + 1)
    except TimeoutError:
        return "timeout"
    except Exception as error:  # any failure means "not ready"; the type says which
        return f"unreachable ({type(error).__name__})"
    return "ok"


def _ping_database(request: Request) -> None:
    with request.app.state.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _ping_broker(url: str, timeout: float) -> None:
    params = pika.URLParameters(url)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    pika.BlockingConnection(params).close()


@router.get("/v1/contracts/{name:path}", summary="A canonical JSON Schema, e.g. referral")
def get_contract(
    name: Annotated[str, Path(description="`referral`, `status-event`, `codes/service-type`…, "
                                          "with or without `.json`")],
    contracts: ContractsDep,
) -> dict[str, Any]:
    schema = contracts.schemas.get(name.removesuffix(".json"))
    if schema is None:
        raise NotFound("contract")
    return schema
