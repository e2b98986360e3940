"""What waits in each partner's queues, read from the broker with passive declares.

A passive declare asks RabbitMQ about a queue without creating or changing it: how many
messages are ready (waiting for a worker) and how many consumers it has. It needs no
management plugin, only the AMQP connection every CaseBridge process already uses. When
the broker cannot be reached the answer says so (`BrokerUnreachable`), quickly, instead
of failing.
"""

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError, ChannelClosedByBroker

from gateway.delivery import topology

NOT_FOUND = 404


@dataclass(frozen=True)
class QueueDepth:
    """One queue as the broker sees it now; `declared` False when it does not exist yet."""

    name: str
    ready: int
    consumers: int
    declared: bool = True


@dataclass(frozen=True)
class BrokerUnreachable:
    """The broker did not answer; `error` names the kind of failure (never a secret)."""

    error: str


def partner_queues(partner_id: str) -> list[str]:
    """The names of a partner's queues, one per message type."""
    return [topology.queue_name(t, partner_id) for t in topology.MESSAGE_TYPES]


def depths(amqp_url: str, partner_ids: Sequence[str], *, timeout: float
           ) -> dict[str, QueueDepth] | BrokerUnreachable:
    """Every queue of `partner_ids` by name, or why the broker could not be asked."""
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    params.retry_delay = 0
    try:
        connection = pika.BlockingConnection(params)
    except (AMQPError, OSError) as error:
        return BrokerUnreachable(type(error).__name__)
    try:
        channel = connection.channel()
        found = {}
        for partner_id in partner_ids:
            for name in partner_queues(partner_id):
                depth, channel = _passive(connection, channel, name)
                found[name] = depth
        return found
    except (AMQPError, OSError) as error:
        return BrokerUnreachable(type(error).__name__)
    finally:
        if connection.is_open:
            with suppress(AMQPError, OSError):
                connection.close()


def _passive(connection: pika.BlockingConnection, channel: BlockingChannel, name: str
             ) -> tuple[QueueDepth, BlockingChannel]:
    """One queue's depth; a queue not declared yet closes the channel: a new one goes on."""
    try:
        frame = channel.queue_declare(name, passive=True)
    except ChannelClosedByBroker as error:
        if error.reply_code != NOT_FOUND:
            raise
        return QueueDepth(name, 0, 0, declared=False), connection.channel()
    return QueueDepth(name, frame.method.message_count, frame.method.consumer_count), channel
