"""The worker process: consume every partner queue and the dead-letter queue until stopped."""

import functools
import threading
import time

import structlog
from sqlalchemy.orm import Session, sessionmaker

from gateway.contracts import Contracts
from gateway.delivery import broker, dead_letters, topology, worker
from gateway.delivery.relay import partner_ids
from gateway.delivery.translate import Translator
from gateway.settings import Settings

log = structlog.get_logger()
PARTNER_REFRESH_SECONDS = 5.0  # a new partner waits at most this long for consumers


def run_worker(*, settings: Settings, sessions: sessionmaker[Session], contracts: Contracts,
               translator: Translator, stop: threading.Event) -> None:
    """Deliver until `stop` is set; reconnect by itself after broker or database failures."""
    deliverer = worker.Deliverer(sessions=sessions, contracts=contracts, translator=translator)
    steps = topology.ladder(settings.retry_delays)
    on_message = functools.partial(worker.on_message, deliverer, steps)
    on_dead = functools.partial(dead_letters.on_dead, sessions, contracts)
    for attempt in broker.reconnecting("worker", stop):
        with attempt:
            consumed: set[str] = set()
            with broker.open_channel(settings, partner_ids=[]) as channel:
                channel.basic_qos(prefetch_count=settings.worker_prefetch)
                channel.basic_consume(topology.DEAD_QUEUE, on_dead)
                log.info("worker_started")
                refreshed = 0.0
                while not stop.is_set():
                    if time.monotonic() - refreshed > PARTNER_REFRESH_SECONDS:
                        # Partners registered since the last look get consumers too.
                        new = [p for p in partner_ids(sessions) if p not in consumed]
                        for name in topology.declare(
                                channel, partner_ids=new, delays=settings.retry_delays,
                                delivery_limit=settings.delivery_limit):
                            channel.basic_consume(name, on_message)
                        consumed.update(new)
                        refreshed = time.monotonic()
                    channel.connection.process_data_events(time_limit=0.5)
            return
