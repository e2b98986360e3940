"""Workers: take messages, deliver each to the partner's system, record, commit, then ack.

Each message is handled in three short steps — read what is needed (the partner's
standing and the referral, in one session), call the partner's adapter outside any
database transaction, write the outcome — and then settled in one
place (`settle`): ack when done, re-publish to the retry ladder when the partner failed
transiently, dead-letter when retrying cannot help. The messages a worker holds at one
moment (up to its prefetch on each queue) are handled together (`on_messages`): partners
are called side by side for different referrals (one referral's messages in turn), and
the outcomes are written in one transaction before any message is settled; should that
transaction fail, each outcome is written again alone, so one failure never takes another
message's record with it. A crash anywhere before the ack means the broker redelivers; the
adapters' idempotent create turns that into no second record. Nothing lives in worker
memory that another worker needs (only adapter connections).
"""

import contextvars
import json
from collections.abc import Callable
from concurrent.futures import Executor, wait
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.spec import Basic, BasicProperties
from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, defer, sessionmaker
from structlog.contextvars import bind_contextvars, clear_contextvars

from adapters.base import PartnerAdapter
from adapters.registry import AdapterPool
from gateway.casework import record_status_event
from gateway.contracts import Contracts
from gateway.deadlines.alerts import alert_document
from gateway.delivery import broker, circuit, topology
from gateway.delivery.broker import CONNECTION_ERRORS
from gateway.delivery.outbox import enqueue
from gateway.delivery.translate import Translator
from gateway.errors import (
    MappingError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.fhir.subscription import NOTIFY, Notifier
from gateway.lifecycle import Actor, State
from gateway.protection import audit
from gateway.settings import get_settings
from gateway.store.db import insert_now, unit_of_work
from gateway.store.group_commit import write_together
from gateway.store.models import (
    DeadlineEvent,
    Delivery,
    Partner,
    PartnerRecord,
    Referral,
    StatusEvent,
    utcnow,
    why_stopped,
)

log = structlog.get_logger()

# Core reads built once, of the columns the hot path needs (an ORM read of whole rows, and
# building each statement anew, cost several times what the database does).
_PARTNERS: Table = Partner.__table__  # type: ignore[assignment]
_RECORDS: Table = PartnerRecord.__table__  # type: ignore[assignment]
_EVENTS: Table = StatusEvent.__table__  # type: ignore[assignment]
# The target's standing (suspended, circuit) and how to reach its system, in one read.
_TARGET = select(_PARTNERS.c.id, _PARTNERS.c.system, _PARTNERS.c.connection,
                 _PARTNERS.c.suspended_at, _PARTNERS.c.circuit_open_until,
                 _PARTNERS.c.delivery_failures).where(_PARTNERS.c.id == bindparam("id"))
_RECORD_OF = select(_RECORDS.c.native_id).where(_RECORDS.c.referral_id == bindparam("referral"),
                                                _RECORDS.c.partner_id == bindparam("partner"))
_EVENT_EXISTS = select(_EVENTS.c.id).where(_EVENTS.c.id == bindparam("id"))
_REFERRALS: Table = Referral.__table__  # type: ignore[assignment]
# What a delivery reads of its referral: whether it may leave, and what leaves.
_TO_DELIVER = select(_REFERRALS.c.kind, _REFERRALS.c.status, _REFERRALS.c.receiver_id,
                     _REFERRALS.c.content, _REFERRALS.c.consent_withdrawn_at,
                     _REFERRALS.c.restricted_at, _REFERRALS.c.erased_at
                     ).where(_REFERRALS.c.id == bindparam("id"))
_NO_CONTENT = [defer(Referral.content)]


@dataclass(frozen=True)
class Done:
    note: str
    # What records the outcome, written before the message is acknowledged.
    write: Callable[[Session], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Retry:
    detail: str
    retry_after: float | None


@dataclass(frozen=True)
class Dead:
    reason: str
    detail: str


@dataclass(frozen=True)
class Wait:
    """The partner is suspended or its circuit open: the message goes back unattempted."""

    why: str


Outcome = Done | Retry | Dead | Wait


@dataclass(frozen=True)
class Target:
    """The partner a message goes to, as its adapter needs it."""

    id: str
    system: str
    connection: dict[str, Any] | None


@dataclass(frozen=True)
class ToDeliver:
    """What a delivery needs, read before the partner is called (no transaction open)."""

    kind: str
    content: dict[str, Any]
    system: str
    adapter: PartnerAdapter | None


class Deliverer:
    """Delivers one envelope; the same object serves every message of a worker, from
    several threads at once (its adapters are shared, each thread has its own sessions)."""

    def __init__(self, *, sessions: sessionmaker[Session], contracts: Contracts,
                 translator: Translator, adapters: AdapterPool | None = None,
                 breaker: circuit.Breaker | None = None) -> None:
        self.sessions = sessions
        self.contracts = contracts
        self.translator = translator
        self.adapters = adapters or AdapterPool()
        self.notifier = Notifier(sessions=sessions, translator=translator,
                                 base_url=get_settings().fhir_base_url)
        self.breaker = breaker or circuit.Breaker(failures=0, seconds=60.0)

    def adapter_for(self, partner: Partner | Target) -> PartnerAdapter | None:
        return self.adapters.for_partner(partner.id, partner.system, partner.connection)

    def handle(self, envelope: dict[str, Any], attempt: int) -> Outcome:
        """Deliver one message and write its outcome in a transaction of its own."""
        outcome = self.outcome_of(envelope, attempt)
        if isinstance(outcome, Done) and outcome.write is not None:
            with unit_of_work(self.sessions) as session:
                outcome.write(session)
        return outcome

    def outcome_of(self, envelope: dict[str, Any], attempt: int) -> Outcome:
        """Deliver, unless the target is suspended or its circuit open; keep its circuit.
        A `Done` still has its record to write (`Done.write`)."""
        target = envelope["target"]
        with self.sessions() as session:
            # One session: the partner's standing and system, and what a delivery delivers.
            row = session.execute(_TARGET, {"id": target}).one_or_none()
            standing = circuit.standing_of(row)
            if standing.paused is not None:
                return Wait(standing.paused)
            to = None if row is None else Target(row.id, row.system, row.connection)
            ready = (self._read_delivery(session, envelope, attempt, to)
                     if envelope.get("type") == "deliver" else None)
        outcome = self._handle(envelope, attempt, ready, to)
        # A refusal is an answer too: the partner's system is up.
        answered = isinstance(outcome, Done) or (isinstance(outcome, Dead)
                                                 and outcome.reason == "partner_refused")
        if isinstance(outcome, Retry) or (answered and standing.failing):
            with unit_of_work(self.sessions) as session:
                if isinstance(outcome, Retry):
                    circuit.record_failure(session, target, self.breaker)
                else:
                    circuit.record_success(session, target)
        return outcome

    def _handle(self, envelope: dict[str, Any], attempt: int,
                ready: ToDeliver | Outcome | None, to: Target | None) -> Outcome:
        try:
            if envelope.get("type") == "deliver":
                if not isinstance(ready, ToDeliver):
                    assert ready is not None
                    return ready  # nothing to deliver: the read said why
                return self._deliver(envelope, attempt, ready)
            if envelope.get("type") == "status":
                return self._send_status(envelope, attempt, to)
            if envelope.get("type") == "alert":
                return self._send_alert(envelope, attempt)
            if envelope.get("type") == NOTIFY:
                return Done(self.notifier.notify(envelope, attempt))
            return Dead("poison", "the envelope has no known type")
        except TransientDeliveryError as error:
            self._record(envelope, attempt, "transient_failure", error.detail,
                         partner_error=error.partner_error())
            return Retry(error.detail, error.retry_after)
        except PermanentDeliveryError as error:
            self._record(envelope, attempt, "permanent_failure", error.detail,
                         partner_error=error.partner_error())
            return Dead("partner_refused", error.detail)
        except MappingError as error:
            self._record(envelope, attempt, "mapping_error", error.detail)
            return Dead("mapping_error", error.detail)

    def _read_delivery(self, session: Session, envelope: dict[str, Any], attempt: int,
                       to: Target | None) -> ToDeliver | Outcome:
        """The referral to deliver and its receiver's adapter, or why nothing is delivered."""
        referral = session.execute(_TO_DELIVER, {"id": envelope["referral_id"]}).one_or_none()
        if referral is None:
            return Dead("unknown_referral", "no referral with the envelope's id")
        stopped = why_stopped(referral)
        if stopped is not None:
            return self._withhold(envelope, attempt, stopped)
        if referral.status != State.SUBMITTED:
            return Done(f"already {referral.status}: nothing to deliver")
        # The receiver is the envelope's target, read already (else read it now).
        receiver = to if to is not None and to.id == referral.receiver_id \
            else session.get(Partner, referral.receiver_id)
        assert receiver is not None  # a foreign key guarantees it
        return ToDeliver(referral.kind, referral.content, receiver.system,
                         self.adapter_for(receiver))

    def _deliver(self, envelope: dict[str, Any], attempt: int, ready: ToDeliver) -> Outcome:
        kind, content, system, adapter = ready.kind, ready.content, ready.system, ready.adapter
        native_id = mapping_hash = None
        if adapter is not None:
            native, mapping_hash = self.translator.outbound(system, kind, content,
                                                            channel=adapter.channel)
            native_id = adapter.create(referral_id=envelope["referral_id"], kind=kind,
                                       record=native)
        return Done("delivered", partial(self._write_delivered, envelope, attempt, native_id,
                                         mapping_hash))

    def _write_delivered(self, envelope: dict[str, Any], attempt: int, native_id: str | None,
                         mapping_hash: str | None, session: Session) -> None:
        # Recording the outcome needs no content: it is not decrypted a second time.
        referral = session.get(Referral, envelope["referral_id"], with_for_update=True,
                               options=_NO_CONTENT)
        assert referral is not None
        delivery = _delivery(envelope, attempt, "delivered",
                             f"stored at the partner as {native_id}" if native_id
                             else "available to the partner through the API")
        delivery.mapping_hash = mapping_hash
        # Core INSERTs: nothing in this transaction reads these rows back.
        insert_now(session, delivery, *(
            [PartnerRecord(referral_id=referral.id, partner_id=referral.receiver_id,
                           native_id=native_id, role="receiver")]
            if native_id is not None and session.scalar(_RECORD_OF, {
                "referral": referral.id, "partner": referral.receiver_id}) is None
            else []))
        audit.record(session, actor="system:worker", action="delivery.deliver",
                     partner_id=referral.receiver_id, referral_id=referral.id,
                     correlation_id=referral.correlation_id,
                     detail={"type": "deliver", "attempt": attempt,
                             "mapping_hash": mapping_hash})
        if referral.status == State.SUBMITTED:
            record_status_event(session=session, contracts=self.contracts,
                                referral=referral, actor=Actor.GATEWAY, actor_partner=None,
                                document={"status": "delivered"})
        elif referral.status == State.WITHDRAWN and native_id is not None:
            # Withdrawn while the receiver was storing it: tell it now it has a record.
            enqueue(session, referral, referral.events[-1], message_type="status",
                    target=referral.receiver_id)

    def _withhold(self, envelope: dict[str, Any], attempt: int, why: str) -> Outcome:
        """Consent was withdrawn, or the person's data restricted or erased, before
        delivery: nothing leaves, and that is on record."""
        def write(session: Session) -> None:
            session.add(_delivery(envelope, attempt, "withheld", why))
            audit.record(session, actor="system:worker", action="delivery.withhold",
                         partner_id=envelope["target"], referral_id=envelope["referral_id"],
                         correlation_id=envelope.get("correlation_id"),
                         detail={"why": why})
        return Done(f"{why}: nothing delivered", write)

    def _send_status(self, envelope: dict[str, Any], attempt: int,
                     target: Target | None) -> Outcome:
        adapter = None if target is None else self.adapter_for(target)
        with self.sessions() as session:
            if target is None or adapter is None:
                # An API partner reads its status: only whether the event exists matters.
                if target is None or session.scalar(
                        _EVENT_EXISTS, {"id": envelope["status_event_id"]}) is None:
                    return Dead("unknown_referral", "no status event or partner with these ids")
                return Done("the partner reads status through the API")
            event = session.get(StatusEvent, envelope["status_event_id"])
            if event is None:
                return Dead("unknown_referral", "no status event or partner with these ids")
            native_id = session.scalar(_RECORD_OF, {"referral": event.referral_id,
                                                    "partner": target.id})
            if native_id is None and event.to_state == State.WITHDRAWN:
                return Done("the partner never stored it: nothing to withdraw there")
            if native_id is None:
                return Dead("no_partner_record",
                            "the partner holds no record of this referral to update")
            document = {"status": event.to_state, **event.content}
            kind, system = event.referral.kind, target.system
        native_status = self.translator.status_out(system, kind, document,
                                                   channel=adapter.channel)
        adapter.update_status(native_id=native_id, referral_id=envelope["referral_id"],
                              status=native_status)

        def write(session: Session) -> None:
            session.add(_delivery(envelope, attempt, "delivered",
                                  f"status {envelope.get('state')} set"))
            audit.record(session, actor="system:worker", action="delivery.deliver",
                         partner_id=envelope["target"], referral_id=envelope["referral_id"],
                         correlation_id=envelope.get("correlation_id"),
                         detail={"type": "status", "state": envelope.get("state"),
                                 "attempt": attempt})
        return Done("status delivered", write)

    def _send_alert(self, envelope: dict[str, Any], attempt: int) -> Outcome:
        """A deadline alert: shown on the partner's own record when its system can take it;
        otherwise (an API partner, an observer) it waits at GET /v1/alerts."""
        with self.sessions() as session:
            event = session.get(DeadlineEvent, envelope.get("deadline_event_id", 0))
            target = session.get(Partner, envelope["target"])
            if event is None or target is None:
                return Dead("unknown_referral", "no deadline event or partner with these ids")
            alert = alert_document(event, kind=envelope["kind"], role=envelope["role"])
            # An observer holds no record of the referral: it reads its alerts from the API.
            adapter = None if envelope["role"] == "observer" else self.adapter_for(target)
            native_id = None if adapter is None else session.scalar(
                select(PartnerRecord.native_id).where(
                    PartnerRecord.referral_id == event.referral_id,
                    PartnerRecord.partner_id == target.id))
        errors = self.contracts.validate("alert", alert)
        if errors:
            return Dead("invalid_alert", "the alert breaks contracts/alert.json: " + "; ".join(
                f"{e.pointer} {e.rule}" for e in errors))
        if adapter is None or native_id is None or not adapter.shows_alerts:
            note = "alert readable through GET /v1/alerts"
        else:
            adapter.alert(native_id=native_id, referral_id=envelope["referral_id"], alert=alert)
            note = f"alert {alert['flag']} shown at the partner"

        def write(session: Session) -> None:
            session.add(_delivery(envelope, attempt, "delivered", note))
            audit.record(session, actor="system:worker", action="delivery.deliver",
                         partner_id=envelope["target"], referral_id=envelope["referral_id"],
                         correlation_id=envelope.get("correlation_id"),
                         detail={"type": "alert", "flag": alert["flag"],
                                 "deadline": alert["deadline"], "role": alert["role"],
                                 "attempt": attempt})
        return Done(note, write)

    def _record(self, envelope: dict[str, Any], attempt: int, outcome: str, detail: str, *,
                partner_error: dict[str, Any] | None = None) -> None:
        """Note a failed attempt; the partner's answer goes only to the encrypted column."""
        with unit_of_work(self.sessions) as session:
            if session.get(Referral, envelope.get("referral_id", "")) is not None:
                delivery = _delivery(envelope, attempt, outcome, detail)
                delivery.partner_error = partner_error
                session.add(delivery)


def _delivery(envelope: dict[str, Any], attempt: int, outcome: str, detail: str) -> Delivery:
    return Delivery(referral_id=envelope["referral_id"],
                    status_event_id=envelope.get("status_event_id")
                    if envelope.get("type") == "status" else None,
                    partner_id=envelope["target"], message_type=envelope.get("type"),
                    attempt=attempt, outcome=outcome, detail=detail, finished_at=utcnow())


def settle(channel: BlockingChannel, method: Basic.Deliver, props: BasicProperties,
           envelope: dict[str, Any] | None, attempt: int, outcome: Outcome,
           steps: list[topology.RetryStep], *, acknowledge: bool = True) -> None:
    """The one place where a message is acknowledged, retried or dead-lettered. With
    `acknowledge` False, all but the ack: the caller acknowledges it with others."""
    if isinstance(outcome, Wait):
        # Back through the first rung of the ladder with the same attempt: by the time it
        # returns, workers have stopped taking the partner's queue and it waits there.
        assert envelope is not None
        log.info("delivery_waits", why=outcome.why, attempt=attempt)
        if not steps:  # no ladder: straight back to its queue
            channel.basic_nack(method.delivery_tag, requeue=True)
            return  # settled: the caller acknowledges nothing for it
        channel.basic_publish(steps[0].name, method.routing_key, broker.encode(envelope),
                              broker.properties(envelope, attempt=attempt))
    if isinstance(outcome, Retry):
        step = topology.retry_step_for(attempt, outcome.retry_after, steps)
        if step is None:
            outcome = Dead("retries_exhausted", f"{attempt} attempts failed; last: "
                                                f"{outcome.detail}")
        else:
            assert envelope is not None
            channel.basic_publish(step.name, method.routing_key, broker.encode(envelope),
                                  broker.properties(envelope, attempt=attempt + 1))
            log.info("delivery_retry_scheduled", attempt=attempt, delay_s=step.seconds)
    if isinstance(outcome, Dead):
        headers = {"x-casebridge-reason": outcome.reason, "x-casebridge-detail": outcome.detail,
                   "x-casebridge-routing-key": method.routing_key}
        body = broker.encode(envelope) if envelope is not None else b"{}"
        message_id = props.message_id or f"poison-{method.delivery_tag}"
        channel.basic_publish(topology.DEAD_EXCHANGE, method.routing_key, body,
                              broker.properties({"message_id": message_id, **(envelope or {})},
                                                attempt=attempt, headers=headers))
        log.warning("delivery_dead_lettered", reason=outcome.reason, attempt=attempt)
    if isinstance(outcome, Done):
        log.info("delivery_done", note=outcome.note, attempt=attempt)
    if acknowledge:
        channel.basic_ack(method.delivery_tag)


def parse(body: bytes) -> dict[str, Any] | None:
    """The envelope, or None when the body is not one (a poison message)."""
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    required = {"message_id", "type", "referral_id", "target"}
    return envelope if isinstance(envelope, dict) and required <= envelope.keys() else None


@dataclass
class _Message:
    """One message of a batch, in the context (log fields) of its own referral."""

    method: Basic.Deliver
    props: BasicProperties
    envelope: dict[str, Any] | None
    attempt: int
    context: contextvars.Context
    outcome: Outcome | None = None  # None: it crashed, and goes back to its queue


def on_messages(deliverer: Deliverer, steps: list[topology.RetryStep],
                channel: BlockingChannel,
                messages: list[tuple[Basic.Deliver, BasicProperties, bytes]],
                pool: Executor | None = None) -> None:
    """Handle the messages a worker holds (from the deliver.*, status.* and alert.*
    queues): partners called side by side on `pool` (one referral's messages in turn, in
    the order they came), then every outcome written in one transaction (each alone if
    that fails), then each message settled, and all acknowledged at once."""
    batch = _take_all(deliverer, messages, pool)
    writing = [(m, m.outcome.write) for m in batch
               if isinstance(m.outcome, Done) and m.outcome.write is not None]
    written = write_together(deliverer.sessions, [(m.context, write) for m, write in writing],
                             problems=())
    for (message, _), (succeeded, error) in zip(writing, written, strict=True):
        if isinstance(error, CONNECTION_ERRORS):
            # The store is out of reach: reconnect, and the broker gives them all again
            # (those written meanwhile are then found delivered already).
            raise error
        if not succeeded:
            message.outcome = message.context.run(_failed, error, message.attempt,
                                                  message.props)
    acknowledged = None
    for m in batch:
        if m.outcome is None:
            channel.basic_nack(m.method.delivery_tag, requeue=True)
            continue
        m.context.run(settle, channel, m.method, m.props, m.envelope, m.attempt, m.outcome,
                      steps, acknowledge=False)
        if not (isinstance(m.outcome, Wait) and not steps):  # that one went back unacked
            acknowledged = m.method.delivery_tag
    if acknowledged is not None:
        # Every message of this channel up to this one is this batch's, settled above
        # (the dead-letter queue's are acknowledged as they come).
        channel.basic_ack(acknowledged, multiple=True)


def _take_all(deliverer: Deliverer,
              messages: list[tuple[Basic.Deliver, BasicProperties, bytes]],
              pool: Executor | None) -> list[_Message]:
    """Each message with its outcome, in the order they came: the messages about one
    referral taken in turn, those about others side by side on `pool`."""
    envelopes = [parse(body) for _, _, body in messages]
    lanes: dict[object, list[int]] = {}
    for index, envelope in enumerate(envelopes):
        lanes.setdefault(index if envelope is None else envelope["referral_id"],
                         []).append(index)
    taken: dict[int, _Message] = {}

    def lane(indexes: list[int]) -> None:
        seen: set[str] = set()
        for index in indexes:
            method, props, _ = messages[index]
            envelope = envelopes[index]
            copy = envelope is not None and envelope["message_id"] in seen
            taken[index] = _take(deliverer, method, props, envelope, copy=copy)
            if envelope is not None:
                seen.add(envelope["message_id"])

    if pool is None or len(lanes) == 1:
        for indexes in lanes.values():
            lane(indexes)
    else:
        running = [pool.submit(lane, indexes) for indexes in lanes.values()]
        wait(running)  # every lane done before any error is raised: none left calling
        for future in running:
            future.result()
    return [taken[index] for index in range(len(messages))]


def _take(deliverer: Deliverer, method: Basic.Deliver, props: BasicProperties,
          envelope: dict[str, Any] | None, *, copy: bool = False) -> _Message:
    """The message with its outcome, the partner called but the outcome not yet written.
    A `copy` of a message in hand (published twice) is dropped: delivered and recorded
    once, by the one in hand."""
    clear_contextvars()
    attempt = int((props.headers or {}).get("x-attempt", 1))
    if envelope is not None:
        bind_contextvars(correlation_id=envelope.get("correlation_id"),
                         referral_id=envelope["referral_id"], target=envelope["target"],
                         message_type=envelope["type"])
    message = _Message(method, props, envelope, attempt, contextvars.copy_context())
    clear_contextvars()
    if envelope is None:
        message.outcome = Dead("poison", "the message body is not a CaseBridge envelope")
        return message
    if copy:
        message.outcome = Done("a copy of a message in hand: dropped")
        return message
    try:
        message.outcome = message.context.run(deliverer.outcome_of, envelope, attempt)
    except CONNECTION_ERRORS:
        raise  # the worker reconnects; the broker redelivers the unacknowledged messages
    except Exception as error:
        message.outcome = message.context.run(_failed, error, attempt, props)
    return message


def _failed(error: Exception, attempt: int, props: BasicProperties) -> Outcome | None:
    """What becomes of a message whose handling raised `error`: None to give it back."""
    if isinstance(error, DataError):
        # A value that does not fit the store fails the same way every time: say so at once.
        return Dead("store_error", f"the store refused a value ({type(error).__name__})")
    # A fault nobody classified (a bug, a broken partner connection): give the message
    # back. If it keeps failing, the quorum queue's delivery limit dead-letters it as
    # poison, where an operator sees it. Only the type is logged, never the message.
    log.error("delivery_crashed", error_type=type(error).__name__, attempt=attempt,
              delivery_count=(props.headers or {}).get("x-delivery-count", 0))
    return None
