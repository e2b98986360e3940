"""Deadline alerts end to end inside the gateway, on both databases and the real RabbitMQ:
the keeper raises the flag, the relay publishes an alert to each side, the worker records
each delivery, each partner reads its own alerts at GET /v1/alerts, and /metrics counts
the overdue deadline."""

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.deadlines.book import DeadlineBook
from gateway.deadlines.keeper import tick
from gateway.delivery import topology
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AuditEntry, Delivery, Partner, Referral, utcnow
from servers import LiveServer
from sharing import agreed, write_agreement
from stack import NoTranslation, relay_and_worker, wait_for


@pytest.fixture(scope="module")
def alert_settings(settings: Settings, isolated_database_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.model_copy(update={
        "database_url": isolated_database_url, "relay_interval": 0.1, "retry_delays": [1, 2],
        "agreements_dir": tmp_path_factory.mktemp("agreements"),
        "deadlines_dir": tmp_path_factory.mktemp("deadlines")})


@pytest.fixture(scope="module")
def sessions(alert_settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(alert_settings.database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def parties(sessions: sessionmaker[Session]) -> dict[str, tuple[str, str]]:
    """Partners calling the API (no adapter), registered before the worker starts so it
    consumes their queues at once: role → (id, API key)."""
    return {role: partner(sessions) for role in ("sender", "receiver", "observer", "stranger")}


@pytest.fixture(scope="module")
def running(alert_settings: Settings, sessions: sessionmaker[Session],
            parties: dict[str, tuple[str, str]], amqp_url: str) -> Iterator[LiveServer]:
    """The relay and a worker in threads, and the API, on this module's store."""
    with relay_and_worker(alert_settings, sessions, NoTranslation()), \
            LiveServer(alert_settings) as server:
        yield server
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        with sessions() as session:
            for partner_id in session.scalars(select(Partner.id)):
                for message_type in topology.MESSAGE_TYPES:
                    channel.queue_delete(topology.queue_name(message_type, partner_id))


def partner(sessions: sessionmaker[Session]) -> tuple[str, str]:
    """A partner that calls the API (no adapter): (id, API key)."""
    partner_id = f"alert-{uuid.uuid4().hex[:10]}"
    with unit_of_work(sessions) as session:
        _, key = register_partner(session=session, partner_id=partner_id, name=partner_id,
                                  system="other")
    return partner_id, key


def policy_for(folder: Path, receiver: str) -> None:
    """A policy for this receiver alone: acknowledge within an hour, escalate an hour on."""
    (folder / f"ack-{receiver}.yaml").write_text(
        f"id: ack-{receiver}\napplies_to: {{kind: referral, receivers: [{receiver}]}}\n"
        "calendar: gb-eng\ndeadlines:\n  - name: acknowledge\n    state: delivered\n"
        "    within: {calendar_hours: 1}\n    met_by: [acknowledged, accepted, rejected]\n"
        "    escalate_after_due: {calendar_hours: 1}\n")


def test_an_overdue_referral_alerts_both_sides_through_the_broker_and_the_api(
        running: LiveServer, alert_settings: Settings, sessions: sessionmaker[Session],
        parties: dict[str, tuple[str, str]], make_referral: Callable[..., dict[str, Any]]
) -> None:
    (sender, sender_key), (receiver, receiver_key) = parties["sender"], parties["receiver"]
    (observer, observer_key), (_, stranger_key) = parties["observer"], parties["stranger"]
    registry = agreed(alert_settings, sender, receiver)
    write_agreement(alert_settings.agreements_dir, f"obs-{sender}", [sender, receiver],
                    observers=[observer], purposes=["referral"],
                    data_categories={"referral": ["identity", "demographics"]})
    policy_for(alert_settings.deadlines_dir, receiver)
    book = DeadlineBook.from_settings(alert_settings)
    with unit_of_work(sessions) as session:
        referral_id = submit_referral(
            session=session, contracts=Contracts(alert_settings.contracts_dir),
            agreements=registry, sender=session.get_one(Partner, sender),
            document=make_referral(sender, receiver), idempotency_key=uuid.uuid4().hex,
            correlation_id=uuid.uuid4().hex).referral.id
    wait_for(lambda: _status(sessions, referral_id) == "delivered")
    with sessions() as session:
        assert session.get_one(Referral, referral_id).agreement_id == f"obs-{sender}"

    later = utcnow() + timedelta(hours=1, minutes=30)
    report = tick(sessions, book, later, agreements=registry)
    assert (report.started, report.raised) == (1, 1)
    delivered = wait_for(lambda: len(_alert_deliveries(sessions, referral_id)) == 3
                         and _alert_deliveries(sessions, referral_id))
    assert sorted(delivered) == sorted([
        (sender, "delivered", "alert readable through GET /v1/alerts"),
        (receiver, "delivered", "alert readable through GET /v1/alerts"),
        (observer, "delivered", "alert readable through GET /v1/alerts")])
    with sessions() as session:
        audited = session.scalars(select(AuditEntry.detail).where(
            AuditEntry.referral_id == referral_id, AuditEntry.action == "delivery.deliver",
            AuditEntry.partner_id == receiver)).all()
    assert {"type": "alert", "flag": "overdue", "deadline": "acknowledge",
            "role": "receiver", "attempt": 1} in audited

    def read(key: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{running.url}/v1/alerts", params=params,
                         headers={"Authorization": f"Bearer {key}"})

    [alert] = read(receiver_key).json()["items"]
    assert (alert["referral_id"], alert["flag"], alert["deadline"], alert["state"],
            alert["role"]) == (referral_id, "overdue", "acknowledge", "delivered", "receiver")
    assert "Please act on it" in alert["message"]
    assert [a["role"] for a in read(sender_key).json()["items"]] == ["sender"]
    assert [a["role"] for a in read(observer_key).json()["items"]] == ["observer"]
    assert read(stranger_key).json()["items"] == []
    # The observer reads alerts, never the referral.
    assert httpx.get(f"{running.url}/v1/referrals/{referral_id}", headers={
        "Authorization": f"Bearer {observer_key}"}).status_code == 404

    # Escalated an hour on; the receiver follows its cursor and sees only what is new.
    cursor = read(receiver_key).json()["next_cursor"]
    written = utcnow()
    assert tick(sessions, book, later + timedelta(hours=1), agreements=registry).escalated == 1
    page = read(receiver_key, cursor=cursor).json()
    assert [a["flag"] for a in page["items"]] == ["escalated"]
    assert read(receiver_key, cursor=page["next_cursor"]).json() == {
        "items": [], "next_cursor": page["next_cursor"]}
    assert [a["flag"] for a in read(receiver_key, since=written.isoformat()).json()[
        "items"]] == ["escalated"]

    metrics = httpx.get(f"{running.url}/metrics").text
    assert f'casebridge_deadlines_overdue_open{{partner="{receiver}"}} 1.0' in metrics
    assert f'casebridge_deadlines_raised_total{{partner="{receiver}"}} 1.0' in metrics
    assert f'casebridge_deadlines_escalated_total{{partner="{receiver}"}} 1.0' in metrics


def test_a_bad_cursor_or_an_instant_without_offset_is_refused_naming_the_parameter(
        running: LiveServer, sessions: sessionmaker[Session]) -> None:
    _, key = partner(sessions)
    headers = {"Authorization": f"Bearer {key}"}
    bad = httpx.get(f"{running.url}/v1/alerts", params={"cursor": "12a"}, headers=headers)
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/cursor"]
    naive = httpx.get(f"{running.url}/v1/alerts", params={"since": "2027-01-01T00:00:00"},
                      headers=headers)
    assert naive.status_code == 400 and [e["pointer"] for e in naive.json()["errors"]] == [
        "/since"]
    assert httpx.get(f"{running.url}/v1/alerts").status_code == 401


def _status(sessions: sessionmaker[Session], referral_id: str) -> str:
    with sessions() as session:
        return session.get_one(Referral, referral_id).status


def _alert_deliveries(sessions: sessionmaker[Session], referral_id: str
                      ) -> list[tuple[str, str, str | None]]:
    with sessions() as session:
        return [(d.partner_id, d.outcome, d.detail) for d in session.scalars(
            select(Delivery).where(Delivery.referral_id == referral_id,
                                   Delivery.detail.like("alert%")))]
