"""The partner's own reason for a refusal, from the real proGres sandbox through the worker's
deliverer to the delivery attempt and the dead letter: stored encrypted, shown by the
`dead-letters` command, and never in the detail that travels in broker headers."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from gateway.casework import submit_referral
from gateway.contracts import Contracts
from gateway.delivery import dead_letters
from gateway.delivery.worker import Dead, Deliverer
from gateway.mapping.translator import MappingTranslator
from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import DeadLetter, Delivery, OutboxMessage, Partner
from sandboxes.progres.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app
from servers import LiveServer
from sharing import agreed

# The sandbox's own words, as Dataverse words a value longer than its column.
REFUSAL = "The length of the 'progres_familyname' attribute"


@pytest.fixture
def progres(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(create_app(database=tmp_path / "progres.db")) as server:
        yield server


def test_progres_refusal_keeps_its_code_and_message_for_operators_only(
        settings: Settings, isolated_database_url: str, progres: LiveServer,
        make_referral: Any, cli: Any, capsys: pytest.CaptureFixture[str]) -> None:
    sessions = make_sessionmaker(make_engine(isolated_database_url))
    contracts = Contracts(settings.contracts_dir)
    sender, receiver = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("primero", "progres"))
    with unit_of_work(sessions) as session:
        register_partner(session=session, partner_id=sender, name="UNICEF", system="primero")
        partner, _ = register_partner(session=session, partner_id=receiver, name="UNHCR",
                                      system="progres")
        partner.connection = {"base_url": progres.url, "credentials": {
            "client_id": DEFAULT_CLIENT_ID, "client_secret": DEFAULT_CLIENT_SECRET}}
    # A family name longer than proGres's 100-character column (a fictional one).
    document = make_referral(sender, receiver)
    document["subject"]["family_name"] = "Fictionalson-" * 9
    with unit_of_work(sessions) as session:
        referral = submit_referral(
            session=session, contracts=contracts, agreements=agreed(settings, sender, receiver),
            sender=session.get_one(Partner, sender), document=document,
            idempotency_key=uuid.uuid4().hex, correlation_id=f"corr-{sender}").referral
        envelope = session.scalars(select(OutboxMessage.envelope).where(
            OutboxMessage.referral_id == referral.id)).one()

    deliverer = Deliverer(sessions=sessions, contracts=contracts, translator=MappingTranslator(
        settings.mappings_dir, contracts=contracts))
    outcome = deliverer.handle(envelope, 1)

    assert isinstance(outcome, Dead) and outcome.reason == "partner_refused"
    assert "0x80044331" in outcome.detail and REFUSAL not in outcome.detail
    with sessions() as session:
        attempt = session.scalars(select(Delivery).where(
            Delivery.referral_id == referral.id)).one()
        assert attempt.partner_error is not None
        assert (attempt.partner_error["status"], attempt.partner_error["code"]) == (
            400, "0x80044331")
        assert REFUSAL in attempt.partner_error["message"]
        raw = session.execute(text("SELECT partner_error FROM deliveries WHERE id = :id"),
                              {"id": attempt.id}).scalar_one()
        assert raw.startswith("cb1:") and REFUSAL not in raw  # encrypted at rest

    # What the dead-letter consumer gets from the broker: ids and the reason, no message.
    headers = {"x-casebridge-reason": outcome.reason, "x-casebridge-detail": outcome.detail,
               "x-attempt": 1}
    assert REFUSAL not in json.dumps(headers)
    with unit_of_work(sessions) as session:
        letter = dead_letters.record(session=session, contracts=contracts, envelope=envelope,
                                     headers=headers, routing_key=f"deliver.{receiver}",
                                     message_id=envelope["message_id"])
        assert letter is not None
        letter_id = letter.id
    with sessions() as session:
        stored = session.get_one(DeadLetter, letter_id)
        assert stored.partner_error == attempt.partner_error
    capsys.readouterr()
    listed = cli("dead-letters", "--partner", receiver, database_url=isolated_database_url)
    assert listed.exit_code == 0
    assert "partner said: 400 0x80044331 " in listed.output and REFUSAL in listed.output
    assert REFUSAL not in capsys.readouterr().out  # the logs of all of it
