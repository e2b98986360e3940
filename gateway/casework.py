"""Casework: the services over the referrals and transfers the gateway carries — submit
one, record its status events, withdraw consent, read and list them.

Named for the work, not for one kind of it: a transfer goes through the same functions as
a referral, and `referrals` already names the API and console views of these records.
Plain functions with keyword-only arguments, called by the API, the CLI, workers and tests.
"""

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from gateway.contracts import Contracts
from gateway.delivery.outbox import outbox_message
from gateway.directory.registry import DirectoryRegistry
from gateway.directory.submission import check_referral
from gateway.errors import (
    CaseBridgeError,
    ConsentProblem,
    FieldError,
    Forbidden,
    IdempotencyConflict,
    LifecycleViolation,
    MalformedRequest,
    NotFound,
    ValidationProblem,
)
from gateway.fhir.subscription import announce
from gateway.lifecycle import (
    INITIAL,
    Actor,
    Kind,
    State,
    allowed_next,
    catch_up,
    check_transition,
)
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.consent import Admitted, admit
from gateway.protection.identifiers import digests_of, lookup_digests
from gateway.protection.need_to_know import UNKNOWN, categories_in, category_at, need_to_know
from gateway.store.db import after_commit, insert_now, take_write_turn
from gateway.store.group_commit import GROUPED, once_per_group
from gateway.store.models import (
    IdentifierDigest,
    Partner,
    Referral,
    ReferralService,
    StatusEvent,
    new_id,
    referral_id_for,
    utcnow,
)

log = structlog.get_logger()

REFERRAL_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# A page ends after (microseconds since 1970 of updated_at, id); 17 digits reach the year 5138.
CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_REFERRAL_ID = re.compile(REFERRAL_ID_PATTERN)
_CURSOR = re.compile(CURSOR_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def disclosed(admitted: Admitted, contracts: Contracts) -> dict[str, Any]:
    """For the audit entry and the disclosure register: the data categories the receiver's
    copy carries, and those the need-to-know filter removed, by whose rule (codes only)."""
    allowed = admitted.agreement.categories[admitted.document["kind"]]
    removed: dict[str, set[str]] = {"agreement": set(), "consent": set()}
    for withheld in admitted.withheld:
        for category in withheld.category.split(", "):
            if category != UNKNOWN:
                removed["consent" if category in allowed else "agreement"].add(category)
    return {"categories": sorted(categories_in(admitted.document, contracts=contracts)),
            "removed": {rule: sorted(found) for rule, found in removed.items()}}


def request_hash(document: Any) -> str:
    """A stable hash of a JSON document, independent of key order and whitespace."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Submitted:
    referral: Referral
    replayed: bool
    # What the service directory noted (a waiting list, an area it could not check …);
    # given with the first answer only, not with a replay.
    warnings: tuple[FieldError, ...] = ()


def submit_referral(
    *,
    session: Session,
    contracts: Contracts,
    agreements: AgreementRegistry,
    sender: Partner,
    document: Any,
    idempotency_key: str,
    correlation_id: str,
    directory: DirectoryRegistry | None = None,
) -> Submitted:
    """Validate a canonical referral or transfer, check it against the service directory,
    pass it through the consent gate, and store the receiver's copy with its first event
    and outbox row.

    The directory (when given) refuses a service the receiver does not offer in the
    person's area, or has suspended (ServiceNotOffered, with alternatives), and notes a
    waiting list and what it could not check in `warnings`.

    Only what the consent and the data-sharing agreement let leave is stored: fields of
    other categories are dropped here, before anything is written, and named (by pointer
    only) in `withheld`. A refusal raises ConsentProblem and stores nothing.
    """
    digest = request_hash(document)
    referral_id = referral_id_for(sender.id, idempotency_key)
    # In a group commit a repeat is not looked for first (a read per submission, on
    # PostgreSQL a round trip each, for what a partner's retry alone sends): its id is
    # taken, so the group's INSERT fails, the group is split, and the repeat, run again
    # alone, is answered here. A repeat refused on its way (its agreement has ended since,
    # say) is looked for then, so that it gets the first answer, not the refusal.
    if not session.info.get(GROUPED):
        earlier = _earlier(session, sender.id, idempotency_key, referral_id, digest)
        if earlier is not None:
            return earlier
    try:
        return _submit_new(session=session, contracts=contracts, agreements=agreements,
                           sender=sender, document=document, idempotency_key=idempotency_key,
                           correlation_id=correlation_id, directory=directory,
                           digest=digest, referral_id=referral_id)
    except CaseBridgeError:
        if session.info.get(GROUPED):
            earlier = _earlier(session, sender.id, idempotency_key, referral_id, digest)
            if earlier is not None:
                return earlier
        raise


def _earlier(session: Session, sender_id: str, idempotency_key: str, referral_id: str,
             digest: str) -> Submitted | None:
    """The first answer to a repeat of a submission (same key, same body), or
    IdempotencyConflict for the key with another body; None for a new key."""
    earlier_hash = session.scalar(_KEY_USED, {"id": referral_id})
    if earlier_hash is None:
        return None
    if earlier_hash != digest:
        raise IdempotencyConflict()
    earlier = _by_idempotency_key(session, sender_id, idempotency_key)
    # None: purged between the two reads; taken as new
    return None if earlier is None else Submitted(earlier, replayed=True)


def _submit_new(*, session: Session, contracts: Contracts, agreements: AgreementRegistry,
                sender: Partner, document: Any, idempotency_key: str, correlation_id: str,
                directory: DirectoryRegistry | None, digest: str, referral_id: str
                ) -> Submitted:
    # The structure first; a value breaking its rule in a categorised field is refused
    # only if that field is to reach the receiver (after the need-to-know filter below).
    structure, shared_only = _split_errors(contracts, contracts.validate("referral", document))
    if structure and all(_is_consent_gap(e) for e in structure):
        refusal = ConsentProblem(
            "The referral carries no consent that covers sharing it; nothing was stored.",
            structure, title="Consent does not cover this referral")
        named = (document.get("receiver") or {}).get("partner")
        known = session.get(Partner, named) if isinstance(named, str) else None
        refusal.receiver = known.id if known is not None else None
        raise refusal
    if structure:
        raise ValidationProblem("The referral breaks the referral contract.", structure)
    if document["sender"]["partner"] != sender.id:
        raise Forbidden("A partner may only submit referrals it sends.", [
            FieldError("/sender/partner", "sender-is-caller",
                       f"must be your own partner id '{sender.id}'")])
    named = document["receiver"]["partner"]
    receiver = once_per_group(session, ("partner", named), lambda: session.get(Partner, named))
    if receiver is None or not receiver.active or receiver.id == sender.id:
        raise ValidationProblem("The receiver is not a partner that can receive.", [
            FieldError("/receiver/partner", "known-partner",
                       "must be the id of another active partner")])
    now = utcnow()
    warnings = (check_referral(directory.view(session, partner=receiver.id), document,
                               today=now.date())
                if directory is not None else [])
    try:
        # The agreements' files are looked at once a group: its works commit together.
        admitted = admit(document, agreements=agreements, contracts=contracts,
                         today=now.date(),
                         in_force=once_per_group(session, agreements, agreements.in_force))
    except ConsentProblem as refusal:
        refusal.receiver = receiver.id
        raise
    shared = _not_withheld(shared_only, [w.pointer for w in admitted.withheld])
    if shared:
        raise ValidationProblem("The referral breaks the referral contract in fields the "
                                "receiver would get.", shared)
    if admitted.minor_contradicted:
        log.warning("minor_status_corrected", sender=sender.id,
                    pointers=list(admitted.minor_contradicted))
    referral = Referral(
        id=referral_id, kind=document["kind"],
        subtype=document.get("subtype"),
        sender_id=sender.id, receiver_id=receiver.id, status=INITIAL,
        correlation_id=correlation_id, idempotency_key=idempotency_key, request_hash=digest,
        content=admitted.document, withheld=[w.pointer for w in admitted.withheld],
        agreement_id=admitted.agreement.id, retention_days=admitted.agreement.retention_days,
        agreement_categories=sorted(admitted.agreement.categories[document["kind"]]),
        created_at=now, updated_at=now,
        receiver_unit=admitted.document["receiver"].get("unit"),
        service_types=sorted({s["type"] for s in admitted.document.get("services", [])}),
    )
    event = StatusEvent(id=new_id(), referral=referral, referral_id=referral.id, seq=1,
                        from_state=None, to_state=INITIAL, actor=Actor.SENDER,
                        actor_partner_id=sender.id, inferred=False, content={},
                        occurred_at=now, recorded_at=now)
    try:
        # Core INSERTs, parents first: the unit of work would cost several times as much.
        insert_now(session, referral, event, *(
            ReferralService(referral_id=referral.id, service_type=service, created_at=now)
            for service in referral.service_types or []),
            outbox_message(referral, event, message_type="deliver", target=receiver.id),
            *digests_of(referral))
    except IntegrityError:
        if session.info.get(GROUPED):
            raise  # its group rolls back and runs it again alone, to come here
        # Another request with the same key won the race: answer as it did.
        session.rollback()
        winner = _by_idempotency_key(session, sender.id, idempotency_key)
        if winner is None:
            raise
        if winner.request_hash != digest:
            raise IdempotencyConflict() from None
        return Submitted(winner, replayed=True)
    announce(session, referral, event)
    audit.record(session, actor=f"partner:{sender.id}", action="referral.create",
                 partner_id=sender.id, referral_id=referral.id, correlation_id=correlation_id,
                 detail={"kind": referral.kind, "receiver": receiver.id,
                         "agreement": referral.agreement_id, "withheld": referral.withheld,
                         **disclosed(admitted, contracts),
                         **({"minor_contradicted": list(admitted.minor_contradicted)}
                            if admitted.minor_contradicted else {}),
                         **({"directory": sorted({w.rule for w in warnings})}
                            if warnings else {})})
    after_commit(session, functools.partial(
        log.info, "referral_submitted", referral_id=referral.id, kind=referral.kind,
        sender=sender.id, receiver=receiver.id, agreement=referral.agreement_id,
        withheld=len(referral.withheld), directory_warnings=sorted({w.rule for w in warnings})))
    return Submitted(referral, replayed=False, warnings=tuple(warnings))


# Structure errors no need-to-know filter can cure: a missing field, a field the contract
# does not know of.
_STRUCTURE_RULES = frozenset({"required", "additionalProperties"})


def _split_errors(contracts: Contracts, errors: Sequence[FieldError], *,
                  contract: str = "referral") -> tuple[list[FieldError], list[FieldError]]:
    """(errors of the structure, errors in categorised fields the filter may remove)."""
    structure, shared_only = [], []
    for error in errors:
        if error.rule in _STRUCTURE_RULES or category_at(
                contracts, error.pointer, contract) is None:
            structure.append(error)
        else:
            shared_only.append(error)
    return structure, shared_only


def _not_withheld(errors: Sequence[FieldError], removed: Sequence[str]) -> list[FieldError]:
    """The errors in fields that stay: not at or under a pointer the filter removed."""
    return [e for e in errors
            if not any(e.pointer == p or e.pointer.startswith(p + "/") for p in removed)]


def _is_consent_gap(error: FieldError) -> bool:
    """A consent that is missing, or says nothing of what it covers: a consent problem."""
    return (error.pointer == "/consent" or error.pointer.startswith("/consent/")) and (
        error.rule in ("required", "minItems"))


def record_status_event(
    *, session: Session, contracts: Contracts, referral: Referral, actor: Actor,
    actor_partner: Partner | None, document: Any, polled: bool = False,
    audit_actor: str | None = None,
) -> StatusEvent | None:
    """Apply a status event checked against the lifecycle; None when it changes nothing.

    `polled` is for changes read from a partner's system: a state the referral has
    already passed is an old report and changes nothing, and states the partner moved
    through between two polls are recorded as inferred steps. `audit_actor` names who
    caused it in the audit trail when no partner did (a console user, say).
    """
    # As for a referral: a value breaking its rule in a field the other side would not get
    # (removed by the need-to-know filter below) refuses nothing.
    structure, shared_only = _split_errors(
        contracts, contracts.validate("status-event", document), contract="status-event")
    if structure:
        raise ValidationProblem("The status event breaks the status-event contract.", structure)
    requested, current, kind = State(document["status"]), State(referral.status), Kind(
        referral.kind)
    skipped: list[State] = []
    try:
        changed = check_transition(kind=kind, current=current, requested=requested, actor=actor)
    except LifecycleViolation:
        if not polled:
            raise
        if requested in {State(e.to_state) for e in referral.events}:
            # A state passed before and not allowed now: an old report, seen again.
            log.info("status_event_stale", referral_id=referral.id, state=current,
                     reported=requested)
            return None
        path = catch_up(kind, current, requested, actor)
        if path is None:
            raise
        skipped, changed = path[:-1], True
    if not changed:
        log.info("status_event_repeated", referral_id=referral.id, state=current)
        return None
    for state in skipped:
        _append_event(session, referral, to_state=state, actor=actor, actor_partner=actor_partner,
                      content={"inferred": True}, reason_code=None, occurred_at=None,
                      audit_actor=audit_actor)
    if referral.agreement_categories is not None:
        # Need-to-know both ways: a reason or note of a category the agreement does not
        # share is neither stored nor sent to the other side; what the sender says about
        # the person stays within the person's consent too. (The receiver's feedback to
        # the case owner is governed by the agreement.)
        allowed = frozenset(referral.agreement_categories)
        if actor is Actor.SENDER:
            allowed &= frozenset(referral.content["consent"]["scope"]["data_categories"])
        filtered = need_to_know(document, allowed=allowed, contracts=contracts,
                                contract="status-event")
        document = filtered.document
        if filtered.withheld:
            log.info("status_event_filtered", referral_id=referral.id,
                     withheld=[w.pointer for w in filtered.withheld])
        shared_only = _not_withheld(shared_only, [w.pointer for w in filtered.withheld])
    if shared_only:
        raise ValidationProblem("The status event breaks the status-event contract.",
                                shared_only)
    return _append_event(
        session, referral, to_state=requested, actor=actor, actor_partner=actor_partner,
        content={k: v for k, v in document.items() if k not in ("status", "occurred_at")},
        reason_code=(document.get("reason") or {}).get("code"),
        occurred_at=document.get("occurred_at"), audit_actor=audit_actor)


def _append_event(session: Session, referral: Referral, *, to_state: State, actor: Actor,
                  actor_partner: Partner | None, content: dict[str, Any],
                  reason_code: str | None, occurred_at: str | None,
                  audit_actor: str | None = None) -> StatusEvent:
    """Store one state change and announce it to the other side through the outbox."""
    now = utcnow()
    current = referral.status
    # The next number from a count (an ORM read: pending events are flushed first), not
    # from loading every earlier event and decrypting its content.
    seq = (session.scalar(_EVENT_COUNT, {"referral": referral.id}) or 0) + 1
    event = StatusEvent(
        id=new_id(), referral_id=referral.id, seq=seq, from_state=current,
        to_state=to_state, actor=actor, actor_partner_id=actor_partner.id if actor_partner
        else None, reason_code=reason_code, inferred=bool(content.get("inferred")),
        content=content,
        occurred_at=datetime.fromisoformat(occurred_at) if occurred_at else now,
        recorded_at=now,
    )
    target = referral.receiver_id if actor is Actor.SENDER else referral.sender_id
    # Core INSERTs (the unit of work cost several times as much); the referral's events,
    # read again when next asked for, hold this very event (it joined the session). The
    # other side is told through the broker only when the gateway writes to its system: a
    # partner on the API reads its status there (or hears of it through its FHIR
    # subscription), and a message to it would travel to a worker with nothing to do.
    insert_now(session, event, *(
        [outbox_message(referral, event, message_type="status", target=target)]
        if once_per_group(session, ("connected", target),
                          lambda: session.scalar(_CONNECTED, {"partner": target}))
        else []))
    session.expire(referral, ["events"])
    # A Core UPDATE of the two columns (the unit of work's flush cost several times it);
    # the object is then given the new values as stored.
    take_write_turn(session)
    if session.connection().execute(_SET_STATUS, {"referral": referral.id, "to_state": to_state,
                                                  "now": now}).rowcount != 1:
        raise RuntimeError("the referral's row is not stored yet")  # in a group: each alone
    set_committed_value(referral, "status", to_state)
    set_committed_value(referral, "updated_at", now)
    announce(session, referral, event)
    session.flush()
    audit.record(session, actor=f"partner:{actor_partner.id}" if actor_partner
                 else audit_actor or f"system:{actor}", action="status.change",
                 partner_id=actor_partner.id if actor_partner else None,
                 referral_id=referral.id, correlation_id=referral.correlation_id,
                 detail={"from": current, "to": str(to_state), "actor": str(actor),
                         "reason_code": reason_code,
                         "inferred": bool(content.get("inferred"))})
    log.info("status_changed", referral_id=referral.id, from_state=current, to_state=to_state,
             actor=actor, inferred=bool(content.get("inferred")))
    return event


def withdraw_consent(*, session: Session, contracts: Contracts, referral: Referral,
                     partner: Partner, withdrawn_on: date) -> StatusEvent | None:
    """Record that the person withdrew consent; only the sender may.

    Nothing more leaves for the receiver: the worker delivers nothing for a referral
    whose consent is withdrawn, and a re-drive of it is refused. A referral still open is
    withdrawn, and that status event tells the receiver in its own vocabulary. Returns the
    event, or None when there was none to send (already withdrawn, closed, or failed).
    """
    if role_of(partner, referral) is not Actor.SENDER:
        raise Forbidden("Only the sender records a withdrawal of consent.", [
            FieldError("", "sender-only", "ask the sender to record it")])
    if referral.consent_withdrawn_at is not None:
        return None
    content = dict(referral.content)
    content["consent"] = {**content["consent"], "withdrawn": True,
                          "withdrawn_date": withdrawn_on.isoformat()}
    referral.content = content
    referral.consent_withdrawn_at = utcnow()
    event = tell_receiver(session=session, contracts=contracts, referral=referral,
                          note="The person withdrew consent.", actor_partner=partner)
    audit.record(session, actor=f"partner:{partner.id}", action="consent.withdraw",
                 partner_id=partner.id, referral_id=referral.id,
                 correlation_id=referral.correlation_id,
                 detail={"state": referral.status, "receiver_told": event is not None})
    log.info("consent_withdrawn", referral_id=referral.id, state=referral.status,
             receiver_told=event is not None)
    return event


def is_referral_id(value: str) -> bool:
    """Whether `value` has the shape of a referral id."""
    return _REFERRAL_ID.fullmatch(value) is not None


def tell_receiver(*, session: Session, contracts: Contracts, referral: Referral, note: str,
                  actor_partner: Partner | None = None, audit_actor: str | None = None
                  ) -> StatusEvent | None:
    """Withdraw a referral still open, in the sender's name: the status event reaches the
    receiver through the outbox, in its own vocabulary. None when it is closed or failed
    (nothing can carry the news: staff tell the receiver themselves)."""
    if State.WITHDRAWN not in allowed_next(Kind(referral.kind), State(referral.status),
                                           Actor.SENDER):
        return None
    return record_status_event(
        session=session, contracts=contracts, referral=referral, actor=Actor.SENDER,
        actor_partner=actor_partner, document={"status": "withdrawn", "note": note},
        audit_actor=audit_actor)


def visible_referral(
    *, session: Session, partner: Partner, referral_id: str, for_update: bool = False
) -> Referral:
    """A referral the partner sent or received, or NotFound (never reveal others exist)."""
    if not is_referral_id(referral_id):  # not even asked of the store
        raise NotFound("referral")
    query = (select(Referral).where(Referral.id == referral_id, _visible_to(partner))
             .options(selectinload(Referral.events)))
    if for_update:
        query = query.with_for_update()
    referral = session.scalar(query)
    if referral is None:
        raise NotFound("referral")
    return referral


def role_of(partner: Partner, referral: Referral) -> Actor:
    return Actor.SENDER if partner.id == referral.sender_id else Actor.RECEIVER


@dataclass(frozen=True)
class Page:
    items: Sequence[Referral]
    next_cursor: str | None


def list_referrals(
    *, session: Session, partner: Partner, status: str | None = None, kind: str | None = None,
    other_partner: str | None = None, updated_since: datetime | None = None,
    identifier: str | None = None, cursor: str | None = None, limit: int = 50,
    where: Sequence[ColumnElement[bool]] = (),
) -> Page:
    """Referrals visible to `partner`, oldest change first, paged by an opaque cursor.

    `identifier` (`<system>:<value>`, or `external_reference:<value>`) is matched through
    the keyed digests, never against plain text. `where` adds conditions on referrals
    (the FHIR face's Task search).
    """
    # Summaries need no content: it is not even decrypted.
    query = (select(Referral).options(defer(Referral.content))
             .where(_visible_to(partner), *where))
    if identifier:
        query = query.where(Referral.id.in_(
            select(IdentifierDigest.referral_id)
            .where(IdentifierDigest.digest.in_(lookup_digests(identifier)))))
    if status:
        query = query.where(Referral.status == status)
    if kind:
        query = query.where(Referral.kind == kind)
    if other_partner:
        query = query.where(or_(Referral.sender_id == other_partner,
                                Referral.receiver_id == other_partner))
    if updated_since:
        query = query.where(Referral.updated_at >= updated_since)
    if cursor:
        after_time, after_id = _decode_cursor(cursor)
        query = query.where(or_(Referral.updated_at > after_time,
                                and_(Referral.updated_at == after_time, Referral.id > after_id)))
    rows = list(session.scalars(query.order_by(Referral.updated_at, Referral.id).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = _encode_cursor(items[-1]) if more else None
    return Page(items, next_cursor)


def _visible_to(partner: Partner) -> ColumnElement[bool]:
    return or_(Referral.sender_id == partner.id, Referral.receiver_id == partner.id)


_EVENT_COUNT = select(func.count(StatusEvent.id)).where(
    StatusEvent.referral_id == bindparam("referral"))
_REFERRALS: Table = Referral.__table__  # type: ignore[assignment]
_PARTNERS: Table = Partner.__table__  # type: ignore[assignment]
# Whether the gateway reaches the partner's own system (else the partner uses the API).
_CONNECTED = select(_PARTNERS.c.connection.is_not(None)).where(
    _PARTNERS.c.id == bindparam("partner"))
_SET_STATUS = update(_REFERRALS).where(_REFERRALS.c.id == bindparam("referral")).values(
    status=bindparam("to_state"), updated_at=bindparam("now"))

# The request hash of the referral a sender stored under an idempotency key, if any: a Core
# read of one column (most submissions are new, and a full ORM read costs several times it),
# by the id the sender and key give (`referral_id_for`), the primary key. (By sender and
# key, PostgreSQL's plan for the prepared statement, made while the table was empty, read
# every referral of the sender: 5 ms a submission at 10,000. A referral stored before ids
# were derived is not found here but by the unique constraint, as in a race, below.)
_KEY_USED = select(Referral.__table__.c.request_hash).where(
    Referral.__table__.c.id == bindparam("id"))


def _by_idempotency_key(session: Session, sender_id: str, key: str) -> Referral | None:
    return session.scalar(select(Referral).where(Referral.sender_id == sender_id,
                                                 Referral.idempotency_key == key)
                          .options(selectinload(Referral.events)))


def _encode_cursor(referral: Referral) -> str:
    return f"{(referral.updated_at - _EPOCH) // _MICROSECOND}.{referral.id}"


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, id) a cursor names. Every string of CURSOR_PATTERN is a place in the
    order, so the pattern in the OpenAPI says exactly which cursors are accepted."""
    if not _CURSOR.fullmatch(cursor):
        raise MalformedRequest("The cursor is not one this API gave out.", errors=[
            FieldError("/cursor", "cursor", "pass next_cursor from the previous page unchanged")
        ])
    micros, referral_id = cursor.split(".")
    return _EPOCH + timedelta(microseconds=int(micros)), referral_id
