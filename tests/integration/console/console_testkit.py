"""Helpers of the console tests: the password, form tokens, a failed referral in the store."""

import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.orm import Session, sessionmaker

from gateway.partners import register_partner
from gateway.store.db import unit_of_work
from gateway.store.models import DeadLetter, Delivery, Referral, StatusEvent, new_id, utcnow

PASSWORD = "a long fictional passphrase"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    """The form token a console page carries."""
    found = CSRF.search(page.text)
    assert found, "the page carries no form token"
    return found.group(1)


@dataclass(frozen=True)
class StoredReferral:
    id: str
    sender: str
    receiver: str
    correlation_id: str
    dead_letter_id: int


def store_failed_referral(sessions: sessionmaker[Session], make_referral: Any
                          ) -> StoredReferral:
    """A referral about Zawadi Fictionalson (born 2014-03-09) the receiver refused: failed,
    with one dead delivery and its dead letter, written as the worker would have."""
    suffix = uuid.uuid4().hex[:8]
    sender, receiver = f"primero-{suffix}", f"progres-{suffix}"
    document = make_referral(sender, receiver)
    referral_id, correlation_id = new_id(), f"corr-console-{suffix}"
    with unit_of_work(sessions) as session:
        for partner, system in ((sender, "primero"), (receiver, "progres")):
            register_partner(session=session, partner_id=partner, name=f"Test {system}",
                             system=system)
        session.flush()
        referral = Referral(id=referral_id, kind="referral", sender_id=sender,
                            receiver_id=receiver, status="failed", correlation_id=correlation_id,
                            request_hash="0" * 64, content=document, withheld=["/reason"])
        session.add(referral)
        submitted = StatusEvent(id=new_id(), referral=referral, seq=1, from_state=None,
                                to_state="submitted", actor="sender", actor_partner_id=sender,
                                content={})
        session.add(submitted)
        session.add(StatusEvent(id=new_id(), referral=referral, seq=2, from_state="submitted",
                                to_state="failed", actor="gateway",
                                content={"source_status": "partner_refused"}))
        session.flush()  # the rows below point at the referral without a relationship
        session.add(Delivery(referral_id=referral_id, partner_id=receiver, attempt=1,
                             outcome="dead", detail="progres answered 400 (InvalidOptionSet)",
                             finished_at=utcnow()))
        letter = DeadLetter(
            message_id=new_id(), referral_id=referral_id, partner_id=receiver,
            message_type="deliver", routing_key=f"deliver.{receiver}", reason="partner_refused",
            detail="progres answered 400: option set value not valid (InvalidOptionSet)",
            attempts=1, envelope={
                "message_id": new_id(), "type": "deliver", "referral_id": referral_id,
                "status_event_id": submitted.id, "kind": "referral", "sender": sender,
                "receiver": receiver, "target": receiver, "state": "submitted",
                "correlation_id": correlation_id})
        session.add(letter)
        session.flush()
        letter_id = letter.id
    return StoredReferral(referral_id, sender, receiver, correlation_id, letter_id)
