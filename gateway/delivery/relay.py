"""The outbox relay: publish outbox rows with publisher confirms, mark them only after.

A crash between the broker's confirm and our commit publishes a row twice; workers are
idempotent, so that costs a little work and never a second record.
"""

import threading
from collections.abc import Sequence
from typing import Any

import structlog
from pika.exceptions import UnroutableError
from sqlalchemy import Row, Table, bindparam, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.delivery import broker, topology
from gateway.settings import Settings
from gateway.store.db import take_write_turn, unit_of_work
from gateway.store.models import OutboxMessage, Partner, utcnow

log = structlog.get_logger()

# Core statements built once, of the columns a publish needs: the rows are read and marked
# in bulk (the ORM loaded and flushed each row as an object, several times the cost).
_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_PENDING = (select(_OUTBOX.c.id, _OUTBOX.c.referral_id, _OUTBOX.c.routing_key,
                   _OUTBOX.c.envelope)
            .where(_OUTBOX.c.published_at.is_(None)).order_by(_OUTBOX.c.id)
            .limit(bindparam("batch")).with_for_update(skip_locked=True))
_MARK = (update(_OUTBOX).where(_OUTBOX.c.id.in_(bindparam("ids", expanding=True)))
         .values(publish_attempts=_OUTBOX.c.publish_attempts + 1,
                 published_at=bindparam("now")))
Pending = Row[Any, Any, Any, Any]  # id, referral_id, routing_key, envelope


def partner_ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Partner.id).order_by(Partner.id)))


def relay_once(*, sessions: sessionmaker[Session], publisher: broker.BatchPublisher,
               batch: int, settings: Settings) -> int:
    """Publish up to `batch` pending outbox rows; returns how many were published."""
    with unit_of_work(sessions) as session:
        rows = session.execute(_PENDING, {"batch": batch}).all()
        # The rows stay locked until the one commit, so another relay skips them. Should
        # the publish fail, rows the broker took are published again next time: at least
        # once, and workers are idempotent.
        if not rows:
            return 0
        _publish(publisher, rows, settings)
        take_write_turn(session)
        session.execute(_MARK, {"ids": [row.id for row in rows], "now": utcnow()})
        for row in rows:
            log.info("outbox_published", referral_id=row.referral_id, routing_key=row.routing_key,
                     correlation_id=row.envelope.get("correlation_id"))
        return len(rows)


def _publish(publisher: broker.BatchPublisher, rows: Sequence[Pending],
             settings: Settings) -> None:
    """Publish `rows` and wait for the broker's confirms of them all."""
    returned = publisher.publish([_message(row) for row in rows])
    if returned:
        # A partner registered after this relay started: declare its queues, publish again.
        again = [row for row in rows if row.envelope["message_id"] in returned]
        topology.declare(publisher.channel, delays=settings.retry_delays,
                         partner_ids=sorted({row.envelope["target"] for row in again}),
                         delivery_limit=settings.delivery_limit)
        if publisher.publish([_message(row) for row in again]):
            raise UnroutableError([])


def _message(row: Pending) -> broker.Message:
    return (topology.EXCHANGE, row.routing_key, broker.encode(row.envelope),
            broker.properties(row.envelope, attempt=1))


def run_relay(*, settings: Settings, sessions: sessionmaker[Session],
              stop: threading.Event) -> None:
    """Relay until `stop` is set, reconnecting to the broker and riding out database outages."""
    for attempt in broker.reconnecting("relay", stop):
        with attempt, broker.open_channel(settings, partner_ids=partner_ids(sessions),
                                          confirms=False) as channel:
            publisher = broker.BatchPublisher(channel)
            log.info("relay_started")
            while not stop.is_set():
                try:
                    published = relay_once(sessions=sessions, publisher=publisher,
                                           batch=settings.relay_batch, settings=settings)
                except OperationalError as error:
                    log.warning("database_unavailable", process="relay",
                                error_type=type(error).__name__)
                    stop.wait(1.0)
                    continue
                if not published:
                    channel.connection.process_data_events(time_limit=0)  # heartbeats
                    stop.wait(settings.relay_interval)
            return
