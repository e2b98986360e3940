"""Connections to RabbitMQ that come back by themselves after the broker or network fails."""

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, NackError
from pika.frame import Method
from pika.spec import Basic, BasicProperties
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
def open_channel(settings: Settings, *, partner_ids: list[str], confirms: bool = True
                 ) -> Iterator[BlockingChannel]:
    """A channel on a fresh connection, with the topology declared; each publish waits for
    its confirm unless `confirms` is False (for a BatchPublisher, which waits per batch)."""
    connection = pika.BlockingConnection(connection_parameters(settings))
    try:
        channel = connection.channel()
        if confirms:
            channel.confirm_delivery()
        topology.declare(channel, partner_ids=partner_ids, delays=settings.retry_delays,
                         delivery_limit=settings.delivery_limit)
        yield channel
    finally:
        if connection.is_open:
            with suppress(*CONNECTION_ERRORS):
                connection.close()


# What BatchPublisher.publish sends: exchange, routing key, body, properties.
Message = tuple[str, str, bytes, BasicProperties]


class BatchPublisher:
    """Publish many messages, then wait once for the broker's confirms of them all.

    pika's blocking channel waits for each message's confirm before the next is sent: a
    round trip, and a quorum-queue commit, per message. Here the confirms are counted on
    the channel underneath (pika's `_impl`, as the blocking channel itself does), so a
    batch costs one wait. Every message is mandatory: one no queue takes comes back, and
    `publish` names it. A nack raises NackError: nothing of the batch may be taken as sent.
    """

    def __init__(self, channel: BlockingChannel) -> None:
        self.channel = channel
        self._impl = channel._impl
        self._sent = 0  # delivery tags count from 1 on a channel in confirm mode
        self._unconfirmed: set[int] = set()
        self._nacked = False
        self._returned: set[str] = set()
        ready: list[Method] = []
        self._impl.add_on_return_callback(self._on_return)
        self._impl.confirm_delivery(ack_nack_callback=self._on_confirm, callback=ready.append)
        channel._flush_output(lambda: bool(ready))

    def publish(self, messages: Sequence[Message]) -> set[str]:
        """Send `messages` and wait for every confirm; the message ids that came back
        unroutable (no queue for their routing key)."""
        self._nacked, self._returned = False, set()
        for exchange, routing_key, body, props in messages:
            self._impl.basic_publish(exchange, routing_key, body, props, mandatory=True)
            self._sent += 1
            self._unconfirmed.add(self._sent)
        self.channel._flush_output(lambda: not self._unconfirmed)
        if self._nacked:
            raise NackError([])
        return self._returned

    def _on_confirm(self, frame: Method) -> None:
        method = frame.method
        if method.multiple:
            self._unconfirmed = {t for t in self._unconfirmed if t > method.delivery_tag}
        else:
            self._unconfirmed.discard(method.delivery_tag)
        if isinstance(method, Basic.Nack):
            self._nacked = True

    def _on_return(self, _channel: Any, _method: Basic.Return, props: BasicProperties,
                   _body: bytes) -> None:
        self._returned.add(props.message_id)


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
