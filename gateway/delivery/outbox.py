"""The transactional outbox: a message to a partner is written in the same transaction as
the change it announces, and the relay (`relay.py`) publishes it after the commit — so a
commit and its publish cannot part.
"""

from sqlalchemy.orm import Session

from gateway.store.models import OutboxMessage, Referral, StatusEvent, new_id

# What the envelope of a deadline alert says besides the referral's ids: which deadline
# event, which flag (overdue, escalated, cleared), which deadline, and the target's role.
ALERT_FIELDS = ("deadline_event_id", "flag", "deadline", "role")


def enqueue(session: Session, referral: Referral, event: StatusEvent | None, *,
            message_type: str, target: str, **metadata: str | int) -> OutboxMessage:
    """Write the outbox row announcing a change of `referral` to `target`: ids and metadata
    only. `event` is the status event it announces, if any (a deadline alert has none: its
    `metadata` names the deadline event; a FHIR notification's names its subscription)."""
    message = outbox_message(referral, event, message_type=message_type, target=target,
                             **metadata)
    session.add(message)
    return message


def outbox_message(referral: Referral, event: StatusEvent | None, *, message_type: str,
                   target: str, **metadata: str | int) -> OutboxMessage:
    """The outbox row `enqueue` writes, not yet added to a session (see `insert_now`)."""
    envelope: dict[str, str | int] = {
        "message_id": new_id(), "type": message_type, "referral_id": referral.id,
        "kind": referral.kind, "sender": referral.sender_id, "receiver": referral.receiver_id,
        "target": target, "correlation_id": referral.correlation_id, **metadata}
    if event is not None:
        envelope |= {"status_event_id": event.id, "state": event.to_state}
    # Ids, not relationships: a referral written by `insert_now` is not in the session,
    # and a relationship would cascade it in to be inserted twice.
    return OutboxMessage(referral_id=referral.id,
                         status_event_id=event.id if event is not None else None,
                         message_type=message_type, routing_key=f"{message_type}.{target}",
                         envelope=envelope)
