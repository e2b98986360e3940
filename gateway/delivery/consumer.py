"""The worker process: consume every partner queue and the dead-letter queue until stopped."""

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties
from sqlalchemy.orm import Session, sessionmaker

from gateway.contracts import Contracts
from gateway.delivery import broker, circuit, dead_letters, topology, worker
from gateway.delivery.relay import partner_ids
from gateway.delivery.translate import Translator
from gateway.settings import Settings

log = structlog.get_logger()
PARTNER_REFRESH_SECONDS = 1.0  # a new, suspended or resumed partner: noticed this soon
Callback = Callable[[BlockingChannel, Basic.Deliver, BasicProperties, bytes], None]


def run_worker(*, settings: Settings, sessions: sessionmaker[Session], contracts: Contracts,
               translator: Translator, stop: threading.Event) -> None:
    """Deliver until `stop` is set; reconnect by itself after broker or database failures."""
    deliverer = worker.Deliverer(
        sessions=sessions, contracts=contracts, translator=translator,
        breaker=circuit.Breaker(settings.circuit_failures, settings.circuit_seconds))
    steps = topology.ladder(settings.retry_delays)
    held: list[tuple[Basic.Deliver, BasicProperties, bytes]] = []

    def on_message(_channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties,
                   body: bytes) -> None:
        held.append((method, props, body))  # handled with the others that came with it

    on_dead = functools.partial(dead_letters.on_dead, sessions, contracts)
    # A worker's partner calls go side by side on these threads (see worker.on_messages).
    with ThreadPoolExecutor(settings.worker_concurrency, thread_name_prefix="deliver") as pool:
        for attempt in broker.reconnecting("worker", stop):
            with attempt:
                declared: set[str] = set()
                consuming: dict[str, list[str]] = {}  # partner id → its consumer tags
                held.clear()  # a new channel: the broker gives them again
                with broker.open_channel(settings, partner_ids=[]) as channel:
                    channel.basic_qos(prefetch_count=settings.worker_prefetch)
                    channel.basic_consume(topology.DEAD_QUEUE, on_dead)
                    log.info("worker_started")
                    refreshed = 0.0
                    while not stop.is_set():
                        if time.monotonic() - refreshed > PARTNER_REFRESH_SECONDS:
                            _follow_partners(channel, settings, sessions, on_message, declared,
                                             consuming)
                            refreshed = time.monotonic()
                        channel.connection.process_data_events(time_limit=0.5)
                        if held:
                            batch, held[:] = list(held), []
                            worker.on_messages(deliverer, steps, channel, batch, pool)
                return


def _follow_partners(channel: BlockingChannel, settings: Settings,
                     sessions: sessionmaker[Session], on_message: Callback,
                     declared: set[str], consuming: dict[str, list[str]]) -> None:
    """Consume the queues of every partner but those to leave alone now (suspended, or
    circuit open): their messages wait in their queues until the partner is back."""
    ids = partner_ids(sessions)
    with sessions() as session:
        paused = circuit.paused_partners(session)
    # Partners registered since the last look get their queues declared.
    new = [p for p in ids if p not in declared]
    topology.declare(channel, partner_ids=new, delays=settings.retry_delays,
                     delivery_limit=settings.delivery_limit)
    declared.update(new)
    for partner_id in ids:
        if partner_id in paused and partner_id in consuming:
            for tag in consuming.pop(partner_id):
                channel.basic_cancel(tag)
            log.info("partner_left_alone", partner=partner_id, why=paused[partner_id])
        elif partner_id not in paused and partner_id not in consuming:
            consuming[partner_id] = [
                channel.basic_consume(topology.queue_name(t, partner_id), on_message)
                for t in topology.MESSAGE_TYPES]
