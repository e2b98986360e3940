"""Dead letters: recorded with their reason, visible to operators, re-driven on demand.

Everything dead passes through the `casebridge.dead` queue — what a worker gave up on
(with `x-casebridge-reason`) and what the broker gave up on (a poison message past the
quorum delivery limit, with `x-first-death-reason`) — and the recorder stores each once,
with the partner's own answer to the last attempt (encrypted, from the delivery record:
it never travels on the broker).

Inbound dead letters (changes the poller could not take) are written by the poller; a
re-drive marks them, and the poller takes each marked change again on its next round.
"""

import json
from collections.abc import Sequence
from typing import Any

import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.casework import record_status_event
from gateway.contracts import Contracts
from gateway.delivery.outbox import ALERT_FIELDS, enqueue
from gateway.fhir.subscription import NOTIFY_FIELDS
from gateway.lifecycle import Actor, State
from gateway.protection import audit
from gateway.store.db import unit_of_work
from gateway.store.models import DeadLetter, Delivery, Referral, StatusEvent, new_id, utcnow

log = structlog.get_logger()

BROKER_REASONS = {
    "delivery_limit": "the message was handed out more times than the delivery limit "
                      "(workers crashed or failed on it each time)",
    "rejected": "a consumer rejected the message",
    "expired": "the message expired before anyone took it",
    "maxlen": "the queue was full",
}


def record(*, session: Session, contracts: Contracts, envelope: dict[str, Any] | None,
           headers: dict[str, Any], routing_key: str, message_id: str) -> DeadLetter | None:
    """Store one dead letter (once per message id); a dead delivery marks the referral failed."""
    if session.scalar(select(DeadLetter.id).where(DeadLetter.message_id == message_id)):
        return None
    reason = headers.get("x-casebridge-reason")
    detail = headers.get("x-casebridge-detail")
    if reason is None:
        broker_reason = str(headers.get("x-first-death-reason", "unknown"))
        reason, detail = broker_reason, BROKER_REASONS.get(broker_reason, "dead-lettered")
    envelope = envelope or {}
    referral = session.get(Referral, envelope.get("referral_id", ""))
    letter = DeadLetter(
        message_id=message_id, referral_id=referral.id if referral else None,
        partner_id=envelope.get("target") if referral else None,
        message_type=envelope.get("type"),
        routing_key=headers.get("x-casebridge-routing-key", routing_key),
        envelope=envelope or None, reason=str(reason), detail=detail,
        attempts=int(headers.get("x-attempt", 0)),
        partner_error=_last_partner_error(session, envelope) if referral else None,
    )
    session.add(letter)
    if referral is not None and envelope.get("type") == "deliver" \
            and referral.status == State.SUBMITTED:
        record_status_event(session=session, contracts=contracts, referral=referral,
                            actor=Actor.GATEWAY, actor_partner=None,
                            document={"status": "failed", "source_status": str(reason)[:100]})
    session.flush()
    audit.record(session, actor="system:worker", action="delivery.dead_letter",
                 partner_id=letter.partner_id, referral_id=letter.referral_id,
                 correlation_id=envelope.get("correlation_id"),
                 detail={"dead_letter": letter.id, "reason": letter.reason,
                         "type": letter.message_type})
    log.warning("dead_letter_recorded", dead_letter_id=letter.id, reason=reason,
                referral_id=letter.referral_id)
    return letter


def _last_partner_error(session: Session, envelope: dict[str, Any]) -> dict[str, Any] | None:
    """What the partner said to the last failed attempt of this message, if it said anything."""
    query = select(Delivery.partner_error).where(
        Delivery.referral_id == envelope.get("referral_id"),
        Delivery.partner_id == envelope.get("target"), Delivery.partner_error.is_not(None))
    if envelope.get("type") == "status":
        query = query.where(Delivery.status_event_id == envelope.get("status_event_id"))
    return session.scalar(query.order_by(Delivery.id.desc()).limit(1))


def on_dead(sessions: sessionmaker[Session], contracts: Contracts, channel: BlockingChannel,
            method: Basic.Deliver, props: BasicProperties, body: bytes) -> None:
    """Consumer callback of the dead-letter queue."""
    try:
        parsed = json.loads(body)
        envelope = parsed if isinstance(parsed, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        envelope = None
    message_id = props.message_id or (envelope or {}).get("message_id") or new_id()
    with unit_of_work(sessions) as session:
        record(session=session, contracts=contracts, envelope=envelope,
               headers=dict(props.headers or {}), routing_key=method.routing_key,
               message_id=str(message_id))
    channel.basic_ack(method.delivery_tag)


def can_redrive(letter: DeadLetter) -> bool:
    """Whether a re-drive has something to send (outbound) or to take again (inbound)."""
    if letter.redriven_at is not None:
        return False
    if letter.direction == "inbound":
        return letter.change is not None
    return bool(letter.envelope) and letter.referral_id is not None


def partner_said(item: DeadLetter | Delivery) -> str:
    """The partner's answer as one line for operators: status, code, message ('' if none).

    It may quote the record: show it on the console or the terminal, never log it.
    """
    answer = item.partner_error or {}
    parts = [str(answer[k]) for k in ("status", "code", "message") if answer.get(k) is not None]
    return " ".join(parts)


def find(*, session: Session, ids: Sequence[int] = (), reason: str | None = None,
         partner: str | None = None, include_redriven: bool = False) -> list[DeadLetter]:
    """Dead letters by id or by filter, oldest first."""
    query = select(DeadLetter).order_by(DeadLetter.id)
    if ids:
        query = query.where(DeadLetter.id.in_(ids))
    if reason:
        query = query.where(DeadLetter.reason == reason)
    if partner:
        query = query.where(DeadLetter.partner_id == partner)
    if not include_redriven:
        query = query.where(DeadLetter.redriven_at.is_(None))
    return list(session.scalars(query))


def redrive(*, session: Session, contracts: Contracts, letters: Sequence[DeadLetter],
            actor: str) -> list[int]:
    """Send dead letters through delivery again, from the first rung of the ladder; an
    inbound one goes back to the poller, which takes its change again on its next round."""
    done = []
    for letter in letters:
        if letter.redriven_at is not None:
            continue
        if letter.direction == "inbound":
            if letter.change is not None:
                _mark_redriven(session, letter, actor)
                done.append(letter.id)
            continue
        if not letter.envelope or letter.referral_id is None:
            continue
        referral = session.get(Referral, letter.referral_id, with_for_update=True)
        assert referral is not None
        if referral.stopped is not None and letter.message_type == "deliver":
            log.info("redrive_refused_stopped", dead_letter_id=letter.id,
                     referral_id=referral.id, why=referral.stopped)
            continue
        if letter.message_type == "alert":
            # A deadline alert announces no status event: the same alert goes again.
            enqueue(session, referral, None, message_type="alert",
                    target=str(letter.envelope["target"]),
                    **{key: letter.envelope[key] for key in ALERT_FIELDS})
            _mark_redriven(session, letter, actor, correlation_id=referral.correlation_id)
            done.append(letter.id)
            continue
        if letter.message_type == "deliver":
            if referral.status == State.FAILED:
                record_status_event(session=session, contracts=contracts, referral=referral,
                                    actor=Actor.GATEWAY, actor_partner=None,
                                    document={"status": "submitted",
                                              "source_status": "redrive"})
            event: StatusEvent | None = referral.events[0]
        else:
            event = session.get(StatusEvent, letter.envelope.get("status_event_id", ""))
        if event is None:
            continue
        enqueue(session, referral, event, message_type=str(letter.message_type),
                target=str(letter.envelope["target"]),
                # A FHIR notification goes again for the same subscription, same number.
                **{key: letter.envelope[key] for key in NOTIFY_FIELDS
                   if key in letter.envelope})
        _mark_redriven(session, letter, actor, correlation_id=referral.correlation_id)
        done.append(letter.id)
    session.flush()
    return done


def _mark_redriven(session: Session, letter: DeadLetter, actor: str, *,
                   correlation_id: str | None = None) -> None:
    letter.redriven_at, letter.redriven_by = utcnow(), actor
    audit.record(session, actor=actor, action="redrive", partner_id=letter.partner_id,
                 referral_id=letter.referral_id, correlation_id=correlation_id,
                 detail={"dead_letter": letter.id, "reason": letter.reason,
                         "direction": letter.direction})
    log.info("dead_letter_redriven", dead_letter_id=letter.id, referral_id=letter.referral_id,
             direction=letter.direction, actor=actor)
