"""The messages a worker holds at one moment, over the real RabbitMQ on SQLite and
PostgreSQL: their outcomes are written in one transaction and acknowledged at once; a
write that fails takes nothing of the others with it, and its message goes back to its
queue; partners are called side by side for different referrals."""

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from gateway.delivery import broker
from gateway.delivery.worker import Deliverer, on_messages
from gateway.protection import audit
from gateway.settings import Settings
from gateway.store.models import Delivery, Referral
from worker_doubles import StoringAdapter, deliverer, referral_between

Held = list[tuple[Any, Any, bytes]]


@pytest.fixture
def queue(amqp_url: str) -> Iterator[str]:
    name = f"test-batch-{uuid.uuid4().hex[:10]}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().queue_declare(name)
    yield name
    connection.channel().queue_delete(name)
    connection.close()


@pytest.fixture
def channel(amqp_url: str) -> Iterator[BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield connection.channel()
    if connection.is_open:
        connection.close()


@dataclass
class Batch:
    """A worker's channel, a queue of its own, and the store it records deliveries in."""

    sessions: sessionmaker[Session]
    commits: list[int]  # commits so far on the store's engine
    settings: Settings
    make_referral: Any
    channel: BlockingChannel
    queue: str
    amqp_url: str

    def deliverable(self, count: int) -> list[dict[str, Any]]:
        """The deliver envelopes of `count` new referrals, each to a receiver with a system."""
        return [referral_between(self.sessions, self.settings, self.make_referral,
                                 receiver_connected=True)[2] for _ in range(count)]

    def hold(self, envelopes: list[dict[str, Any]]) -> Held:
        """Publish the envelopes and take them all, unacknowledged, as a worker holds them."""
        for envelope in envelopes:
            self.channel.basic_publish("", self.queue, broker.encode(envelope),
                                       broker.properties(envelope, attempt=1))
        held: Held = []
        self.channel.basic_qos(prefetch_count=len(envelopes))
        self.channel.basic_consume(self.queue, lambda _ch, method, props, body: held.append(
            (method, props, body)))
        deadline = time.monotonic() + 10
        while len(held) < len(envelopes) and time.monotonic() < deadline:
            self.channel.connection.process_data_events(time_limit=0.1)
        assert len(held) == len(envelopes)
        return held

    def deliverer(self, adapter: StoringAdapter) -> Deliverer:
        return deliverer(self.sessions, self.settings, adapter)

    def waiting_after_close(self) -> int:
        """Messages ready in the queue once the worker's channel is closed: what it did not
        ack."""
        self.channel.connection.close()
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
        try:
            return int(connection.channel().queue_declare(self.queue, passive=True)
                       .method.message_count)
        finally:
            connection.close()

    def delivered(self, referral_id: str) -> tuple[str, int]:
        """The referral's status and how many deliveries of it are on record."""
        with self.sessions() as session:
            referral = session.get_one(Referral, referral_id)
            rows = session.scalars(select(Delivery.id).where(
                Delivery.referral_id == referral_id, Delivery.outcome == "delivered")).all()
            return referral.status, len(rows)


@pytest.fixture
def batch(counted_sessions: tuple[sessionmaker[Session], list[int]],
          delivery_settings: Settings, make_referral: Any, channel: BlockingChannel,
          queue: str, amqp_url: str) -> Batch:
    sessions, commits = counted_sessions
    return Batch(sessions, commits, delivery_settings, make_referral, channel, queue, amqp_url)


def write_fails_for(monkeypatch: pytest.MonkeyPatch, referral_id: str, error: Exception, *,
                    after_its_rows: bool) -> None:
    """Recording the delivery of `referral_id` raises `error`, before or after its rows."""
    write = Deliverer._write_delivered

    def failing(self: Deliverer, envelope: dict[str, Any], *args: Any) -> None:
        if envelope["referral_id"] == referral_id and not after_its_rows:
            raise error
        write(self, envelope, *args)
        if envelope["referral_id"] == referral_id:
            raise error

    monkeypatch.setattr(Deliverer, "_write_delivered", failing)


def test_messages_held_together_are_written_in_one_transaction_and_acked_at_once(
        batch: Batch) -> None:
    envelopes = batch.deliverable(6)
    adapter = StoringAdapter()
    held = batch.hold(envelopes)

    before = batch.commits[0]
    on_messages(batch.deliverer(adapter), [], batch.channel, held)

    assert batch.commits[0] - before == 1  # six deliveries, one transaction
    assert adapter.created == [e["referral_id"] for e in envelopes]  # each called in turn
    assert [batch.delivered(e["referral_id"]) for e in envelopes] == [("delivered", 1)] * 6
    with batch.sessions() as session:
        assert audit.verify(session).ok
    assert batch.waiting_after_close() == 0  # every one acknowledged


def test_a_failing_write_takes_nothing_of_the_others_and_its_message_goes_back(
        batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    envelopes = batch.deliverable(4)
    broken = envelopes[1]["referral_id"]
    write_fails_for(monkeypatch, broken, RuntimeError("a bug after its rows were written"),
                    after_its_rows=True)
    held = batch.hold(envelopes)

    before = batch.commits[0]
    with capture_logs(processors=[merge_contextvars]) as logs:
        on_messages(batch.deliverer(StoringAdapter()), [], batch.channel, held)

    assert batch.commits[0] - before == 3  # the group rolled back, then each alone; one failed
    outcomes = {e["referral_id"]: batch.delivered(e["referral_id"]) for e in envelopes}
    assert outcomes.pop(broken) == ("submitted", 0)  # nothing of it kept
    assert set(outcomes.values()) == {("delivered", 1)}
    events = [(line["event"], line.get("error") or line.get("error_type")) for line in logs
              if line["event"] in {"group_commit_split", "delivery_crashed"}]
    assert events == [("group_commit_split", "RuntimeError"),
                      ("delivery_crashed", "RuntimeError")]
    crashed = next(line for line in logs if line["event"] == "delivery_crashed")
    assert crashed["referral_id"] == broken  # logged in its own message's context
    with batch.sessions() as session:
        assert audit.verify(session).ok
    assert batch.waiting_after_close() == 1  # the broken one, given back


class MeetingAdapter(StoringAdapter):
    """A partner system whose calls return only once `parties` of them are in at once."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.meeting = threading.Barrier(parties, timeout=10)

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        self.meeting.wait()  # broken (an error) unless the other call comes meanwhile
        return super().create(referral_id=referral_id, kind=kind, record=record)


def test_other_referrals_go_side_by_side_and_a_copy_of_a_message_in_hand_is_dropped(
        batch: Batch) -> None:
    first, second = batch.deliverable(2)
    adapter = MeetingAdapter(parties=2)
    # The relay published the first one twice (it stopped before noting it published).
    held = batch.hold([first, second, first])

    with ThreadPoolExecutor(2) as pool:
        on_messages(batch.deliverer(adapter), [], batch.channel, held, pool)

    assert sorted(adapter.created) == sorted([first["referral_id"], second["referral_id"]])
    assert [batch.delivered(e["referral_id"]) for e in (first, second)] == [
        ("delivered", 1)] * 2
    assert batch.waiting_after_close() == 0


def test_a_store_out_of_reach_while_writing_gives_every_message_back(
        batch: Batch, monkeypatch: pytest.MonkeyPatch) -> None:
    envelopes = batch.deliverable(3)
    lost = envelopes[2]["referral_id"]
    write_fails_for(monkeypatch, lost, OperationalError(
        "INSERT …", {}, Exception("server closed the connection")), after_its_rows=False)
    held = batch.hold(envelopes)

    with pytest.raises(OperationalError):  # the worker reconnects (gateway/delivery/consumer)
        on_messages(batch.deliverer(StoringAdapter()), [], batch.channel, held)

    # Nothing acknowledged: all three come again; the two written alone are then found
    # delivered already, and the lost one is delivered then.
    assert batch.waiting_after_close() == 3
    assert [batch.delivered(e["referral_id"]) for e in envelopes] == [
        ("delivered", 1), ("delivered", 1), ("submitted", 0)]
