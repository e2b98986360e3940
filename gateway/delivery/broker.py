"""Connections to RabbitMQ that come back by themselves after the broker or network fails."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from sqlalchemy.exc import OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_when_event_set, wait_exponential

from gateway.delivery import topology
from gateway.settings import Settings

log = structlog.get_logger()

# Connection blips (broker or database) are retried here, in process; delivery failures
# never are: they go through the retry ladder in the broker.
CONNECTION_ERRORS = (AMQPError, ConnectionError, OSError, OperationalError)


def connection_parameters(settings: Settings) -> pika.URLParameters:
    params = pika.URLParameters(settings.amqp_url)
    params.heartbeat = 30
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    return params


@contextmanager
def open_channel(settings: Settings, *, partner_ids: list[str]) -> Iterator[BlockingChannel]:
    """A confirmed channel on a fresh connection, with the topology declared."""
    connection = pika.BlockingConnection(connection_parameters(settings))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        topology.declare(channel, partner_ids=partner_ids, delays=settings.retry_delays,
                         delivery_limit=settings.delivery_limit)
        yield channel
    finally:
        if connection.is_open:
            with suppress(*CONNECTION_ERRORS):
                connection.close()


def reconnecting(what: str, stop: threading.Event) -> Retrying:
    """Retry a connect-and-run loop with capped exponential backoff until `stop` is set."""

    def before_sleep(state: Any) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("broker_connection_lost", process=what, attempt=state.attempt_number,
                    error_type=type(error).__name__)

    return Retrying(retry=retry_if_exception_type(CONNECTION_ERRORS),
                    stop=stop_when_event_set(stop),
                    wait=wait_exponential(multiplier=0.2, max=5), before_sleep=before_sleep,
                    reraise=True)


def properties(envelope: dict[str, Any], *, attempt: int,
               headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    """Persistent JSON message properties carrying ids only."""
    return pika.BasicProperties(
        content_type="application/json", delivery_mode=pika.DeliveryMode.Persistent,
        message_id=envelope["message_id"], correlation_id=envelope.get("correlation_id"),
        type=envelope.get("type"), headers={"x-attempt": attempt, **(headers or {})},
    )


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":")).encode()
