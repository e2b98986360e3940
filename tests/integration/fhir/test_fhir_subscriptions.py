"""FHIR subscriptions: kept per partner, and notified through the outbox by the worker's
Deliverer to a real rest-hook endpoint, with the retry ladder's outcomes."""

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.subscription import Subscription
from sqlalchemy import select

from fhir_kit import FHIR_JSON, JSON_PATCH, NotificationSink, referral_bundle
from gateway.contracts import Contracts
from gateway.delivery.dead_letters import redrive
from gateway.delivery.worker import Dead, Deliverer, Done, Retry
from gateway.mapping.translator import MappingTranslator
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import DeadLetter, OutboxMessage
from servers import LiveServer, gateway_marks_delivered
from sharing import audit_actions, two_partners

Client = Callable[[str], httpx.Client]


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[NotificationSink, str]]:
    """A partner's notification endpoint on 127.0.0.1, and its URL."""
    endpoint = NotificationSink()
    with LiveServer(endpoint.app) as server:
        yield endpoint, f"{server.url}/hook"


def subscription(endpoint: str, criteria: str = "Task", **channel: Any) -> dict[str, Any]:
    return {"resourceType": "Subscription", "status": "requested",
            "reason": "Tell our referral desk", "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": endpoint, **channel}}


def test_a_partner_keeps_its_own_subscriptions_and_only_valid_ones(
        new_partner: Callable[..., tuple[str, str]], client_for: Client,
        settings: Settings) -> None:
    (partner, key), (_, other_key) = new_partner(agreement=False), new_partner(agreement=False)
    clinic, other = client_for(key), client_for(other_key)
    made = clinic.post("/fhir/Subscription", headers=FHIR_JSON, json=subscription(
        "https://clinic.example/fhir-hook", "Task?status=completed,failed",
        payload="application/fhir+json", header=["Authorization: Bearer hook-secret"]))
    assert made.status_code == 201, made.text
    kept = Subscription.model_validate(made.json())
    assert made.headers["location"].endswith(f"/fhir/Subscription/{kept.id}")
    assert (kept.status, kept.criteria) == ("active", "Task?status=completed,failed")
    assert kept.channel.header == ["Authorization: (hidden)"]  # never shown again
    assert Subscription.model_validate(clinic.get(f"/fhir/Subscription/{kept.id}").json()) \
        .channel.endpoint == "https://clinic.example/fhir-hook"
    listed = Bundle.model_validate(clinic.get("/fhir/Subscription").json())
    assert [e.resource.id for e in listed.entry] == [kept.id]
    assert other.get(f"/fhir/Subscription/{kept.id}").status_code == 404
    assert Bundle.model_validate(other.get("/fhir/Subscription").json()).entry is None

    for body, expression in [
        (subscription("http://clinic.example/hook"), "Subscription.channel.endpoint"),
        (subscription("https://clinic.example/hook", "Patient?name=x"), "Subscription.criteria"),
        (subscription("https://clinic.example/hook", "Task?patient=x"), "Subscription.criteria"),
        (subscription("https://clinic.example/hook", payload="application/fhir+xml"),
         "Subscription.channel.payload"),
        ({**subscription("https://clinic.example/hook"), "channel": {
            "type": "websocket", "endpoint": "https://clinic.example/hook"}},
         "Subscription.channel.type"),
    ]:
        answer = clinic.post("/fhir/Subscription", headers=FHIR_JSON, json=body)
        assert answer.status_code == 400, answer.text
        outcome = OperationOutcome.model_validate(answer.json())
        assert expression in [e for i in outcome.issue for e in i.expression or []]

    assert clinic.delete(f"/fhir/Subscription/{kept.id}").status_code == 204
    assert clinic.get(f"/fhir/Subscription/{kept.id}").status_code == 404
    assert [d["change"] for a, d in audit_actions(settings, partner)
            if a == "fhir.subscription"] == ["create", "delete"]


def test_each_side_is_notified_of_the_task_changes_its_criteria_ask_for(
        new_partner: Callable[..., tuple[str, str]], client_for: Client, settings: Settings,
        sink: tuple[NotificationSink, str]) -> None:
    endpoint, url = sink
    sender, sender_key, receiver, receiver_key = two_partners(new_partner, settings)
    clinic, agency = client_for(sender_key), client_for(receiver_key)
    watching = Subscription.model_validate(clinic.post(
        "/fhir/Subscription", headers=FHIR_JSON, json=subscription(
            f"{url}?for={sender}", payload="application/fhir+json",
            header=["Authorization: Bearer hook-secret"])).json())
    agency.post("/fhir/Subscription", headers=FHIR_JSON, json=subscription(
        f"{url}?for={receiver}", f"Task?owner={receiver}&status=completed"))
    # An unrelated partner's subscription is never told of this referral.
    _, stranger_key = new_partner(agreement=False)
    client_for(stranger_key).post("/fhir/Subscription", headers=FHIR_JSON,
                                  json=subscription(url))

    sessions = make_sessionmaker(make_engine(settings.database_url))
    contracts = Contracts(settings.contracts_dir)
    # A worker translates with every system's mappings; notifications need only FHIR's.
    deliverer = Deliverer(sessions=sessions, contracts=contracts, translator=MappingTranslator(
        settings.mappings_dir, contracts=contracts, system="fhir"))
    taken: set[int] = set()

    def deliver_notifications(referral_id: str) -> list[Any]:
        """What a worker does with the fhir-notify messages written since the last call."""
        with sessions() as session:
            rows = session.scalars(select(OutboxMessage).where(
                OutboxMessage.referral_id == referral_id,
                OutboxMessage.message_type == "fhir-notify").order_by(OutboxMessage.id)).all()
        found = []
        for row in rows:
            if row.id not in taken:
                taken.add(row.id)
                found.append(deliverer.handle(row.envelope, 1))
        return found

    answer = clinic.post("/fhir", headers=FHIR_JSON, json=referral_bundle(sender, receiver))
    referral_id = answer.json()["entry"][0]["response"]["location"].split("/")[1]
    before = len(endpoint.notifications())
    skipped = Done("the Task at this event is not one the subscription asks for")
    assert sorted(map(str, deliver_notifications(referral_id))) == sorted(map(str, [
        Done("notification sent"), skipped]))
    headers, body = endpoint.received[before]
    assert headers["authorization"] == "Bearer hook-secret"
    assert headers["content-type"] == "application/fhir+json"
    notification = Bundle.model_validate(body)
    assert notification.type == "history"
    assert endpoint.focus()[-1] == ("1", f"Task/{referral_id}")
    status = {p.name: p for p in notification.entry[0].resource.parameter}
    assert status["subscription"].valueReference.reference == f"Subscription/{watching.id}"
    assert "entry" not in str(body["entry"][1])  # id-only: no resource, no personal data

    # The receiver's endpoint fails for a while: the message goes up the retry ladder and
    # the subscription shows the failure until a notification gets through again.
    gateway_marks_delivered(settings, referral_id)
    endpoint.status = 503
    [retry] = [o for o in deliver_notifications(referral_id) if o != skipped]
    assert isinstance(retry, Retry)
    failing = Subscription.model_validate(clinic.get(
        f"/fhir/Subscription/{watching.id}").json())
    assert (failing.status, failing.error) == ("error", "the notification endpoint answered 503")
    endpoint.status = 200
    with sessions() as session:
        [again] = [r.envelope for r in session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == referral_id,
            OutboxMessage.message_type == "fhir-notify"))
            if (r.envelope["state"], r.envelope["target"]) == ("delivered", sender)]
    assert deliverer.handle(again, 2) == Done("notification sent")
    assert Subscription.model_validate(clinic.get(
        f"/fhir/Subscription/{watching.id}").json()).status == "active"

    # The owner completes it: the requester hears of it, and so does the receiver's
    # subscription, which asked for completed Tasks only, with an empty ping.
    for change in ("accepted", "completed"):
        agency.patch(f"/fhir/Task/{referral_id}", headers=JSON_PATCH,
                     json=[{"op": "replace", "path": "/status", "value": change}])
    outcomes = deliver_notifications(referral_id)
    assert outcomes.count(Done("notification sent")) == 3
    assert None in [body for _, body in endpoint.received[-3:]]  # the ping
    assert [number for number, _ in endpoint.focus()][-3:] == ["2", "3", "4"]

    # A notification the endpoint refuses for good is dead-lettered; a re-drive sends it
    # for the same subscription with the same number.
    endpoint.status = 410
    assert deliverer.handle(again, 3) == Dead(
        "partner_refused", "the notification endpoint answered 410")
    endpoint.status = 200
    with unit_of_work(sessions) as session:
        letter = DeadLetter(message_id=uuid.uuid4().hex, referral_id=referral_id,
                            partner_id=again["target"], message_type="fhir-notify",
                            routing_key=f"fhir-notify.{again['target']}", envelope=again,
                            reason="partner_refused")
        session.add(letter)
        session.flush()
        redrive(session=session, contracts=contracts, letters=[letter], actor="user:test")
        copy = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
        assert copy is not None and copy.envelope["message_id"] != again["message_id"]
        assert (copy.envelope["subscription"], copy.envelope["event_number"]) == (
            again["subscription"], again["event_number"])
    assert [d["event_number"] for a, d in audit_actions(settings, sender)
            if a == "delivery.deliver" and d.get("type") == "fhir-notify"] == [1, 2, 3, 4]
