"""A delivery worker without partner systems: an adapter that stores what it is sent, a
translator that maps nothing, and referrals between two new partners, ready to deliver."""

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.delivery.worker import Deliverer
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import unit_of_work
from gateway.store.models import OutboxMessage, Partner
from sharing import agreed


class StoringAdapter:
    """A partner system that stores whatever it is sent under one native id."""

    system = "other"
    channel = None
    shows_alerts = False

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(self, *, referral_id: str, kind: str, record: dict[str, Any]) -> str:
        self.created.append(referral_id)
        return f"native-{referral_id}"


class OneAdapter:
    """An adapter pool: the partners with a connection reach `adapter`."""

    def __init__(self, adapter: StoringAdapter) -> None:
        self.adapter = adapter

    def for_partner(self, partner_id: str, system: str,
                    connection: dict[str, Any] | None) -> StoringAdapter | None:
        return self.adapter if connection else None


class PlainTranslator:
    def outbound(self, system: str, kind: str, content: dict[str, Any], *,
                 channel: str | None = None) -> tuple[dict[str, Any], str]:
        return {"kind": kind}, "mapping-hash"


def referral_between(sessions: sessionmaker[Session], settings: Settings, make_referral: Any,
                     *, receiver_connected: bool) -> tuple[str, str, dict[str, Any]]:
    """(sender, receiver, the deliver envelope) of a new referral."""
    sender, receiver = (f"reads-{uuid.uuid4().hex[:8]}" for _ in range(2))
    with unit_of_work(sessions) as session:
        register_partner(session=session, partner_id=sender, name="Sender", system="other")
        partner, _ = register_partner(session=session, partner_id=receiver, name="Receiver",
                                      system="other")
        partner.connection = {"base_url": "http://127.0.0.1:9"} if receiver_connected else None
    with unit_of_work(sessions) as session:
        referral = submit_referral(
            session=session, contracts=Contracts(settings.contracts_dir),
            agreements=agreed(settings, sender, receiver),
            sender=session.get_one(Partner, sender), document=make_referral(sender, receiver),
            idempotency_key=uuid.uuid4().hex, correlation_id=uuid.uuid4().hex).referral
        envelope = session.scalars(select(OutboxMessage.envelope).where(
            OutboxMessage.referral_id == referral.id)).one()
    return sender, receiver, envelope


def deliverer(sessions: sessionmaker[Session], settings: Settings,
              adapter: StoringAdapter) -> Deliverer:
    return Deliverer(sessions=sessions, contracts=Contracts(settings.contracts_dir),
                     translator=PlainTranslator(),  # type: ignore[arg-type]
                     adapters=OneAdapter(adapter))  # type: ignore[arg-type]
