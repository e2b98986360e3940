"""A delivery that dies is told to a Primero sender as a flag on its case, in Primero's own
terms, over the real RabbitMQ and two real Primero sandboxes: not as a rejection, and not
as a dead letter of the status message; a re-drive that delivers it resolves the flag."""

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from sqlalchemy import select

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.delivery import dead_letters, topology
from gateway.mapping.translator import MappingTranslator
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import unit_of_work
from gateway.store.models import DeadLetter, Partner, PartnerRecord, Referral
from sandboxes.primero.app import create_app
from sandboxes.primero.seed import GATEWAY_USER, SANDBOX_PASSWORD
from servers import LiveServer
from sharing import agreed
from stack import relay_and_worker, status_of, wait_for


@pytest.fixture
def sending(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "sender.db")) as server:
        yield server


@pytest.fixture
def receiving(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "receiver.db")) as server:
        yield server


@pytest.fixture
def running(delivery_settings: Settings, sessions: Any) -> Iterator[None]:
    """A relay and a worker (with the dead-letter consumer) in threads, with the mappings."""
    translator = MappingTranslator(delivery_settings.mappings_dir,
                                   contracts=Contracts(delivery_settings.contracts_dir))
    with relay_and_worker(delivery_settings, sessions, translator):
        yield


def connection(server: LiveServer, password: str = SANDBOX_PASSWORD) -> dict[str, Any]:
    return {"base_url": server.url, "credentials": {"user": GATEWAY_USER,
                                                    "password": password}}


def caseworker(server: LiveServer) -> httpx.Client:
    answer = httpx.post(f"{server.url}/api/v2/tokens", json={
        "user": {"user_name": "cp_worker", "password": SANDBOX_PASSWORD}})
    return httpx.Client(base_url=f"{server.url}/api/v2", timeout=10,
                        headers={"Authorization": f"Bearer {answer.json()['token']}"})


def raise_referral(worker: httpx.Client) -> tuple[str, str]:
    """A caseworker refers one of their cases to CaseBridge, for UNHCR: (case id, native id)."""
    case = worker.get("/cases", params={"consent_for_services": "true", "per": 1}).json()
    row = case["data"][0]["services_section"][0]
    case_id = case["data"][0]["id"]
    made = worker.post(f"/cases/{case_id}/referrals", json={"data": {
        "transitioned_to": GATEWAY_USER, "transitioned_to_agency": "agency-unhcr-eth",
        "service": row["service_type"], "service_record_id": row["unique_id"]}})
    assert made.status_code == 200, made.text
    return case_id, f"{case_id}/referrals/{made.json()['data']['id']}"


def our_flags(worker: httpx.Client, case_id: str) -> list[dict[str, Any]]:
    return [f for f in worker.get(f"/cases/{case_id}/flags").json()["data"]
            if "urn:casebridge:undelivered:" in f["message"]]


def test_a_dead_delivery_flags_the_primero_senders_case_and_a_redrive_resolves_it(
        running: None, sessions: Any, delivery_settings: Settings, sending: LiveServer,
        receiving: LiveServer, make_referral: Any, amqp_url: str) -> None:
    sender, receiver = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("primero", "unhcr"))
    with unit_of_work(sessions) as session:
        register_partner(session=session, partner_id=sender, name="UNICEF Gambella",
                         system="primero")[0].connection = connection(sending)
        # The gateway's password at the receiver is out of date: it refuses every call.
        register_partner(session=session, partner_id=receiver, name="UNHCR Gambella",
                         system="primero")[0].connection = connection(
            receiving, password="changed-last-week")
    worker = caseworker(sending)
    try:
        case_id, native_id = raise_referral(worker)
        with unit_of_work(sessions) as session:
            referral = submit_referral(
                session=session, contracts=Contracts(delivery_settings.contracts_dir),
                agreements=agreed(delivery_settings, sender, receiver),
                sender=session.get_one(Partner, sender),
                document=make_referral(sender, receiver), idempotency_key=uuid.uuid4().hex,
                correlation_id=uuid.uuid4().hex).referral
            session.add(PartnerRecord(referral_id=referral.id, partner_id=sender,
                                      native_id=native_id, role="sender"))
            referral_id = referral.id

        wait_for(lambda: status_of(sessions, referral_id) == "failed", timeout=30)
        flags = wait_for(lambda: our_flags(worker, case_id), timeout=30)
        assert len(flags) == 1 and flags[0]["removed"] is False
        assert flags[0]["message"].startswith(
            f"CaseBridge could not deliver referral {referral_id} to agency-unhcr-eth; "
            "operations staff are on it.")
        assert flags[0]["flagged_by"] == GATEWAY_USER
        # The caseworker's referral is not rejected: the receiver never answered.
        transition = worker.get(f"/cases/{case_id}/referrals").json()["data"][0]
        assert transition["status"] == "in_progress"
        with sessions() as session:
            letters = session.scalars(select(DeadLetter).where(
                DeadLetter.referral_id == referral_id)).all()
        assert [(d.message_type, d.partner_id, d.reason) for d in letters] == [
            ("deliver", receiver, "partner_refused")]

        # The operator fixes the receiver's connection and re-drives the delivery.
        with unit_of_work(sessions) as session:
            session.get_one(Partner, receiver).connection = connection(receiving)
            assert dead_letters.redrive(
                session=session, contracts=Contracts(delivery_settings.contracts_dir),
                letters=dead_letters.find(session=session, partner=receiver),
                actor="operator-test") == [letters[0].id]
        wait_for(lambda: status_of(sessions, referral_id) == "delivered", timeout=30)
        resolved = wait_for(lambda: [f for f in our_flags(worker, case_id) if f["removed"]],
                            timeout=30)
        assert len(resolved) == 1 and len(our_flags(worker, case_id)) == 1
        assert resolved[0]["unflag_message"].startswith(
            f"CaseBridge has now delivered referral {referral_id}.")
        with sessions() as session:
            history = [e.to_state for e in session.get_one(Referral, referral_id).events]
            letters = session.scalars(select(DeadLetter).where(
                DeadLetter.referral_id == referral_id)).all()
        assert history == ["submitted", "failed", "submitted", "delivered"]
        assert [d.message_type for d in letters] == ["deliver"]  # no status dead-lettered
    finally:
        worker.close()
        channel_to = pika.BlockingConnection(pika.URLParameters(amqp_url))
        for partner_id in (sender, receiver):
            for message_type in topology.MESSAGE_TYPES:
                channel_to.channel().queue_delete(topology.queue_name(message_type, partner_id))
        channel_to.close()
