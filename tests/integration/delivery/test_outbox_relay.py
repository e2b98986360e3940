"""The outbox relay against the real RabbitMQ and both databases."""

import json
import uuid
from collections.abc import Iterator

import pika
import pytest
from sqlalchemy import select

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.delivery import broker, relay, topology
from gateway.partners import register_partner
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import OutboxMessage
from sharing import agreed


@pytest.fixture
def sessions(isolated_database_url: str):
    return make_sessionmaker(make_engine(isolated_database_url))


@pytest.fixture
def partners(sessions, amqp_url: str) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:8]
    ids = (f"relay-sender-{suffix}", f"relay-receiver-{suffix}")
    with unit_of_work(sessions) as session:
        for partner_id in ids:
            register_partner(session=session, partner_id=partner_id, name=partner_id,
                             system="other")
    yield ids
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for partner_id in ids:
        for message_type in topology.MESSAGE_TYPES:
            channel.queue_delete(topology.queue_name(message_type, partner_id))
    connection.close()


def test_relay_publishes_each_outbox_row_once_confirmed_and_marks_it(
    settings, sessions, partners, make_referral
) -> None:
    # Only this module's partners are in the isolated store, so the relay declares no others.
    sender_id, receiver_id = partners
    contracts = Contracts(settings.contracts_dir)
    referral_ids = []
    with unit_of_work(sessions) as session:
        from gateway.store.models import Partner
        sender = session.get(Partner, sender_id)
        for n in range(3):
            submitted = submit_referral(session=session, contracts=contracts, sender=sender,
                                        agreements=agreed(settings, sender_id, receiver_id),
                                        document=make_referral(sender_id, receiver_id),
                                        idempotency_key=f"k{n}", correlation_id=f"corr-{n}-xyz")
            referral_ids.append(submitted.referral.id)

    # The receiver's queue does not exist yet: the relay declares it when the broker
    # returns the message as unroutable.
    with broker.open_channel(settings, partner_ids=[], confirms=False) as channel:
        publisher = broker.BatchPublisher(channel)
        published = relay.relay_once(sessions=sessions, publisher=publisher, batch=50,
                                     settings=settings)
        assert published >= 3
        assert relay.relay_once(sessions=sessions, publisher=publisher, batch=50,
                                settings=settings) == 0
        bodies = []
        while True:
            method, props, body = channel.basic_get(f"deliver.{receiver_id}", auto_ack=True)
            if method is None:
                break
            assert props.delivery_mode == 2 and props.headers["x-attempt"] == 1
            bodies.append(json.loads(body))
    assert sorted(b["referral_id"] for b in bodies) == sorted(referral_ids)
    assert all("Zawadi" not in json.dumps(b) for b in bodies)
    with sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id.in_(referral_ids))).all()
    assert all(r.published_at is not None and r.publish_attempts == 1 for r in rows)


def test_topology_declaration_is_idempotent(settings, partners) -> None:
    with broker.open_channel(settings, partner_ids=list(partners)) as channel:
        names = topology.declare(channel, partner_ids=list(partners), delays=[10, 60],
                                 delivery_limit=5)
        again = topology.declare(channel, partner_ids=list(partners), delays=[10, 60],
                                 delivery_limit=5)
        assert names == again == [f"{t}.{p}" for p in partners
                                  for t in ("deliver", "status", "alert", "fhir-notify")]
        state = channel.queue_declare(names[0], passive=True)
        assert state.method.message_count == 0


@pytest.mark.parametrize(("attempt", "retry_after", "expected"), [
    (1, None, 10), (2, None, 60), (3, None, 600), (4, None, 3600), (5, None, None),
    (1, 30, 60), (1, 7200, 3600), (2, 5, 60),
])
def test_retry_ladder_climbs_and_honours_retry_after(attempt, retry_after, expected) -> None:
    step = topology.retry_step_for(attempt, retry_after, topology.ladder([10, 60, 600, 3600]))
    assert (step.seconds if step else None) == expected
