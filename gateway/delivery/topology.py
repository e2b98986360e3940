"""The RabbitMQ topology, declared idempotently by every process that uses it.

    casebridge (topic)            deliver.<partner>, status.<partner>,  quorum queues
                                  alert.<partner>, fhir-notify.<partner>
    casebridge.retry.<delay> (fanout) -> casebridge.retry.<delay>        classic, TTL = delay,
                                         dead-letters back to `casebridge` with the
                                         message's own routing key
    casebridge.dead (fanout)      -> casebridge.dead                    quorum: every dead letter

Partner queues are quorum queues (replicated in a cluster) with a delivery limit, so a
message that keeps crashing workers (a poison message) is dead-lettered by the broker
itself, at-least-once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import ChannelClosedByBroker

log = structlog.get_logger()
PRECONDITION_FAILED = 406

EXCHANGE = "casebridge"
DEAD_EXCHANGE = "casebridge.dead"
DEAD_QUEUE = "casebridge.dead"
MESSAGE_TYPES = ("deliver", "status", "alert", "fhir-notify")


@dataclass(frozen=True)
class RetryStep:
    seconds: int

    @property
    def name(self) -> str:
        return f"casebridge.retry.{self.seconds}s"


def ladder(delays: Sequence[int]) -> list[RetryStep]:
    return [RetryStep(seconds) for seconds in sorted(delays)]


def partner_queue_arguments(delivery_limit: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        # at-least-once dead-lettering needs reject-publish overflow (RabbitMQ ≥ 3.10).
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def queue_name(message_type: str, partner_id: str) -> str:
    return f"{message_type}.{partner_id}"


def declare(channel: BlockingChannel, *, partner_ids: Sequence[str], delays: Sequence[int],
            delivery_limit: int) -> list[str]:
    """Declare everything (idempotent); returns the partner queue names."""
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(DEAD_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(DEAD_QUEUE, DEAD_EXCHANGE)
    for step in ladder(delays):
        channel.exchange_declare(step.name, exchange_type="fanout", durable=True)
        channel.queue_declare(step.name, durable=True, arguments={
            "x-message-ttl": step.seconds * 1000, "x-dead-letter-exchange": EXCHANGE})
        channel.queue_bind(step.name, step.name)
    names = []
    for partner_id in partner_ids:
        for message_type in MESSAGE_TYPES:
            name = queue_name(message_type, partner_id)
            _declare_partner_queue(channel, name, delivery_limit)
            channel.queue_bind(name, EXCHANGE, routing_key=name)
            names.append(name)
    return names


def _declare_partner_queue(channel: BlockingChannel, name: str, delivery_limit: int) -> None:
    """Declare on a channel of its own: a queue that exists with other arguments (say, an
    earlier delivery limit) closes that channel only, and is kept and used as it is."""
    own = channel.connection.channel()
    try:
        own.queue_declare(name, durable=True, arguments=partner_queue_arguments(delivery_limit))
    except ChannelClosedByBroker as error:
        if error.reply_code != PRECONDITION_FAILED:
            raise
        log.warning("queue_arguments_differ", queue=name,
                    hint="change a live queue's arguments with a RabbitMQ policy")
    finally:
        if own.is_open:
            own.close()


def retry_step_for(attempt: int, retry_after: float | None, steps: Sequence[RetryStep]
                   ) -> RetryStep | None:
    """The delay before attempt `attempt + 1`, honouring a partner's Retry-After.

    None when the ladder is exhausted. Attempts climb the ladder one step each; a
    Retry-After longer than the current step moves up to the first step that covers it.
    """
    if attempt > len(steps):
        return None
    step = steps[attempt - 1]
    if retry_after is not None and retry_after > step.seconds:
        step = next((s for s in steps if s.seconds >= retry_after), steps[-1])
    return step
