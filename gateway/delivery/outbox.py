"""The transactional outbox: a message to a partner is written in the same transaction as
the change it announces, and the relay (`relay.py`) publishes it after the commit — so a
commit and its publish cannot part.
"""

from sqlalchemy.orm import Session

from gateway.store.models import OutboxMessage, Referral, StatusEvent, new_id


def enqueue(session: Session, referral: Referral, event: StatusEvent, *, message_type: str,
            target: str) -> None:
    """Write the outbox row announcing `event` to `target`: ids and metadata only."""
    routing_key = f"{message_type}.{target}"
    session.add(OutboxMessage(
        referral=referral, status_event=event, message_type=message_type,
        routing_key=routing_key,
        envelope={"message_id": new_id(), "type": message_type, "referral_id": referral.id,
                  "status_event_id": event.id, "kind": referral.kind,
                  "sender": referral.sender_id, "receiver": referral.receiver_id,
                  "target": target, "state": event.to_state,
                  "correlation_id": referral.correlation_id},
    ))
