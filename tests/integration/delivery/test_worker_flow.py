"""Relay, workers and dead letters together, over the real RabbitMQ and both databases."""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pika
import pytest
from sqlalchemy import select

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.delivery import topology
from gateway.partners import register_partner
from gateway.store.db import unit_of_work
from gateway.store.models import DeadLetter, Delivery, Partner, Referral
from servers import LiveServer
from sharing import agreed
from stack import NoTranslation, relay_and_worker, status_of, wait_for


@pytest.fixture
def partners(sessions, amqp_url: str) -> Iterator[Callable[..., str]]:
    made: list[str] = []

    def make(connection: dict[str, Any] | None = None, system: str = "other") -> str:
        partner_id = f"flow-{uuid.uuid4().hex[:10]}"
        with unit_of_work(sessions) as session:
            partner, _ = register_partner(session=session, partner_id=partner_id,
                                          name=partner_id, system=system)
            partner.connection = connection
        made.append(partner_id)
        return partner_id

    yield make
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for partner_id in made:
        for message_type in topology.MESSAGE_TYPES:
            channel.queue_delete(topology.queue_name(message_type, partner_id))
    connection.close()


@pytest.fixture
def running(delivery_settings, sessions) -> Iterator[None]:
    """A relay and a worker in threads, as `casebridge relay` and `casebridge worker` run."""
    with relay_and_worker(delivery_settings, sessions, NoTranslation()):
        yield


def submit(sessions, settings, sender_id, receiver_id, make_referral) -> str:
    with unit_of_work(sessions) as session:
        sender = session.get(Partner, sender_id)
        return submit_referral(
            session=session, contracts=Contracts(settings.contracts_dir), sender=sender,
            agreements=agreed(settings, sender_id, receiver_id),
            document=make_referral(sender_id, receiver_id), idempotency_key=uuid.uuid4().hex,
            correlation_id=uuid.uuid4().hex).referral.id



def test_referral_to_an_api_partner_is_marked_delivered(
    running, sessions, delivery_settings, partners, make_referral
) -> None:
    sender, receiver = partners(), partners()
    referral_id = submit(sessions, delivery_settings, sender, receiver, make_referral)
    wait_for(lambda: status_of(sessions, referral_id) == "delivered")
    with sessions() as session:
        outcomes = session.scalars(select(Delivery.outcome).where(
            Delivery.referral_id == referral_id)).all()
    assert outcomes == ["delivered"]


def test_a_poison_body_is_dead_lettered_and_visible(
    running, sessions, delivery_settings, partners
) -> None:
    receiver = partners()
    wait_for(lambda: _queue_exists(delivery_settings.amqp_url, f"deliver.{receiver}"))
    connection = pika.BlockingConnection(pika.URLParameters(delivery_settings.amqp_url))
    message_id = f"poison-{uuid.uuid4().hex}"
    connection.channel().basic_publish(topology.EXCHANGE, f"deliver.{receiver}",
                                       b"\xff not json", pika.BasicProperties(
                                           message_id=message_id))
    connection.close()
    letter = wait_for(lambda: _letter(sessions, message_id))
    assert letter.reason == "poison" and "not a CaseBridge envelope" in letter.detail


def test_a_crashing_delivery_becomes_a_dead_letter_and_is_redriven_once_fixed(
    running, sessions, delivery_settings, partners, make_referral, cli
) -> None:
    sender = partners()
    # A connection to a system no adapter speaks: every attempt crashes in the worker.
    receiver = partners(connection={"base_url": "http://127.0.0.1:9"}, system="unknown")
    referral_id = submit(sessions, delivery_settings, sender, receiver, make_referral)
    wait_for(lambda: status_of(sessions, referral_id) == "failed", timeout=30)
    with sessions() as session:
        letter = session.scalars(select(DeadLetter).where(
            DeadLetter.referral_id == referral_id)).one()
    assert letter.reason == "delivery_limit"
    assert "delivery limit" in letter.detail

    listed = cli("dead-letters", "--partner", receiver,
                 database_url=delivery_settings.database_url)
    assert f"{letter.id}\t" in listed.output and "delivery_limit" in listed.output

    with unit_of_work(sessions) as session:
        session.get(Partner, receiver).connection = None  # the operator fixes the partner
    ops = delivery_settings.model_copy(update={"operator_key": "ops-key-for-tests-only"})
    with LiveServer(ops) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": "Bearer ops-key-for-tests-only"}
    ) as client:
        shown = client.get("/v1/ops/dead-letters", params={"partner": receiver}).json()
        assert [d["id"] for d in shown] == [letter.id]
        assert shown[0]["reason"] == "delivery_limit"
        assert client.post("/v1/ops/dead-letters/redrive", json={"ids": [letter.id]}).json() == {
            "redriven": [letter.id]}
        assert client.post("/v1/ops/dead-letters/redrive", json={}).status_code == 422
        assert httpx.get(f"{server.url}/v1/ops/dead-letters").status_code == 401
    wait_for(lambda: status_of(sessions, referral_id) == "delivered")
    with sessions() as session:
        history = [e.to_state for e in session.get(Referral, referral_id).events]
        redriven = session.get(DeadLetter, letter.id)
    assert history == ["submitted", "failed", "submitted", "delivered"]
    assert redriven.redriven_by == "operator-api"


def _letter(sessions, message_id: str) -> DeadLetter | None:
    with sessions() as session:
        return session.scalar(select(DeadLetter).where(DeadLetter.message_id == message_id))


def _queue_exists(amqp_url: str, name: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().queue_declare(name, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()
