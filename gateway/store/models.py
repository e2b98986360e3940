"""Tables of the store.

Personal data lives only in `Referral.content` and `StatusEvent.content`, both encrypted
(`EncryptedJSON`), and in what a partner sent or said that the gateway keeps to show
operators or to take again: `DeadLetter.change`, `DeadLetter.partner_error` and
`Delivery.partner_error`, encrypted the same way. Identifiers to search by are kept only as
keyed digests (`IdentifierDigest`). Nothing else holds a personal value.
"""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from gateway.protection import crypto

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


# The namespace of referral ids (a fixed, random UUID: never change it).
_REFERRAL_IDS = uuid.UUID("6f1c2b0e-5a57-4c1e-9d3a-2f8e41b7c0d5")


def referral_id_for(sender_id: str, idempotency_key: str) -> str:
    """A referral's id, derived from its sender and idempotency key (UUID version 5).

    The same submission taken again gets the same id even where the store no longer knows
    it: a partner record polled again after the store was restored from a backup (its
    idempotency key is the record's native id) reaches each receiver as the referral it
    already holds, which the adapters recognise, instead of as a second one.
    """
    return str(uuid.uuid5(_REFERRAL_IDS, f"{sender_id}\x1f{idempotency_key}"))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EncryptedJSON(TypeDecorator[dict[str, Any]]):
    """A JSON document stored encrypted with AES-GCM under the process's active key.

    `column` ("table.column") is bound into each value as associated data, so a value
    copied to another column does not open. A value without the encrypted prefix was
    written before encryption existed: it reads as plain JSON, and `casebridge keys
    rotate` encrypts it.
    """

    impl = Text
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column
        self._aad = column.encode()

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return crypto.keyring().encrypt(plaintext, aad=self._aad)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        if crypto.key_id_of(value) is None:
            legacy: dict[str, Any] = json.loads(value)
            return legacy
        document: dict[str, Any] = json.loads(crypto.keyring().decrypt(value, aad=self._aad))
        return document


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON}


class Partner(Base):
    """A partner system connected to the gateway (one proGres, Primero or nDelius instance)."""

    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    system: Mapped[str] = mapped_column(String(30))
    # Country of operation, ISO 3166-1 alpha-3 (ETH, GBR): deadline policies narrowed by
    # `countries` match the receiver's. None when not given.
    country: Mapped[str | None] = mapped_column(String(3))
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # OAuth2 client credentials: client_id is the partner id, the secret is stored hashed.
    client_secret_hash: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # How the gateway reaches the partner's own system through its adapter: base_url and
    # credentials (encrypted: they open the partner's system). None for a partner that
    # only calls the API and polls for status.
    connection: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON("partners.connection"))
    # The partner's own rate limit on the API (requests a second, burst); None: the default.
    rate_per_second: Mapped[float | None]
    rate_burst: Mapped[int | None]
    # Delivery to the partner suspended by an operator (messages wait in its queues), and by
    # whom; None while delivery runs.
    suspended_at: Mapped[datetime | None]
    suspended_by: Mapped[str | None] = mapped_column(String(120))
    # The delivery circuit: transient failures of deliveries to the partner in a row, and
    # until when workers leave it alone after too many (see gateway/delivery/circuit.py).
    delivery_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    circuit_open_until: Mapped[datetime | None]


class Referral(Base):
    """A referral or transfer, whatever its state; `content` is the canonical document."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("sender_id", "idempotency_key", name="uq_referrals_idempotency"),
        Index("ix_referrals_updated", "updated_at", "id"),
        # The console's list: latest submitted first, paged by (created_at, id), one index
        # per filter so that a page stays one short index read over millions of rows.
        Index("ix_referrals_created", "created_at", "id"),
        Index("ix_referrals_status_created", "status", "created_at", "id"),
        Index("ix_referrals_kind_created", "kind", "created_at", "id"),
        Index("ix_referrals_sender_created", "sender_id", "created_at", "id"),
        Index("ix_referrals_receiver_created", "receiver_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    subtype: Mapped[str | None] = mapped_column(String(30))
    sender_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    receiver_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    status: Mapped[str] = mapped_column(String(20))
    correlation_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    # The receiver's copy: what the consent and the agreement let leave, and nothing more
    # (the sender's fields outside them are never stored). Encrypted.
    content: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("referrals.content"))
    # JSON Pointers of the fields the need-to-know filter removed (names only, no values).
    withheld: Mapped[list[str]] = mapped_column(JSON, default=list)
    agreement_id: Mapped[str | None] = mapped_column(String(100))
    # The data categories the agreement allows for this referral's purpose: status events
    # are filtered to them too (and, from the sender, to the consent's). None for a
    # referral stored before agreements existed.
    agreement_categories: Mapped[list[str] | None] = mapped_column(JSON)
    # Days the record is kept after it closes, from the agreement when it was submitted.
    retention_days: Mapped[int | None] = mapped_column(Integer)
    consent_withdrawn_at: Mapped[datetime | None]
    # A data-subject request stopped all processing: restricted (the copy kept, frozen,
    # shown to no partner) or erased (every personal value gone; the envelope stays until
    # the retention purge so the receiver can still be told).
    restricted_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    # Hash of the inbound mapping that produced `content` from the sender's native record;
    # None when the sender posted canonical JSON to the API.
    mapping_hash: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None]
    # What the turnaround report groups by, copied from `content` when it is submitted: the
    # receiving unit (`receiver.unit`, e.g. a probation delivery unit) and the service types
    # asked (`services[].type`, sorted). Codes of the organisations' own, not about the
    # person; None for a referral stored before the report existed.
    receiver_unit: Mapped[str | None] = mapped_column(String(100))
    service_types: Mapped[list[str] | None] = mapped_column(JSON)

    events: Mapped[list["StatusEvent"]] = relationship(
        back_populates="referral", order_by="StatusEvent.seq", cascade="all, delete-orphan"
    )

    @property
    def stopped(self) -> str | None:
        """Why nothing more may leave for the receiver, or None (`why_stopped`)."""
        return why_stopped(self)


def why_stopped(referral: Any) -> str | None:
    """Why nothing more may leave for the receiver of `referral` (a `Referral`, or a row of
    its columns), or None: consent withdrawn, or a data-subject request that restricted or
    erased it."""
    if referral.erased_at is not None:
        return "erased"
    if referral.restricted_at is not None:
        return "restricted"
    if referral.consent_withdrawn_at is not None:
        return "consent withdrawn"
    return None


class ReferralService(Base):
    """One service type a referral asks for (`Referral.service_types`, one row each), with
    the referral's submission time: what the console filters and pages its list by."""

    __tablename__ = "referral_services"
    __table_args__ = (
        Index("ix_referral_services_type_created", "service_type", "created_at", "referral_id"),
    )

    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    service_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    created_at: Mapped[datetime]

    referral: Mapped[Referral] = relationship()


class StatusEvent(Base):
    """One change of a referral's state: who, when, from, to, why.

    `deadlines_applied_at` is None until the deadline keeper has started, met or paused the
    deadlines the change concerns; the keeper reads the pending events on a partial index.
    """

    __tablename__ = "status_events"
    __table_args__ = (
        UniqueConstraint("referral_id", "seq", name="uq_status_events_seq"),
        Index("ix_status_events_deadlines_pending", "recorded_at", "id",
              postgresql_where=text("deadlines_applied_at IS NULL"),
              sqlite_where=text("deadlines_applied_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(20))
    actor_partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"))
    reason_code: Mapped[str | None] = mapped_column(String(50))
    # A step the gateway filled in between two polls of a partner's system (the partner
    # reported a later state): its time is when the gateway learned of it.
    inferred: Mapped[bool] = mapped_column(default=False, server_default=false())
    content: Mapped[dict[str, Any]] = mapped_column(
        EncryptedJSON("status_events.content"), default=dict)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadlines_applied_at: Mapped[datetime | None]

    referral: Mapped[Referral] = relationship(back_populates="events")


class Delivery(Base):
    """One attempt to hand a referral or a status event to a partner system, and its outcome."""

    __tablename__ = "deliveries"
    # The console's overview counts each partner's attempts of the last hour and day.
    __table_args__ = (Index("ix_deliveries_partner_finished", "partner_id", "finished_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    status_event_id: Mapped[str | None] = mapped_column(ForeignKey("status_events.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    # What was delivered: the referral itself (deliver), a status change (status) or a
    # deadline alert (alert); None for attempts recorded before the column existed.
    message_type: Mapped[str | None] = mapped_column(String(30))
    attempt: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(30), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    # The partner's answer to a failed attempt: {status, code, message}. Encrypted: the
    # partner's message may quote the record.
    partner_error: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON("deliveries.partner_error"))
    # Hash of the outbound mapping that produced what was sent.
    mapping_hash: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class OutboxMessage(Base):
    """A broker message written in the same transaction as the change it announces.

    The envelope holds ids and metadata only; the relay publishes it and sets
    `published_at` after the broker confirms.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "published_at", "id"),
                      # The console's overview: the messages published to each queue.
                      Index("ix_outbox_routing_published", "routing_key", "published_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    status_event_id: Mapped[str | None] = mapped_column(ForeignKey("status_events.id"))
    message_type: Mapped[str] = mapped_column(String(30))
    routing_key: Mapped[str] = mapped_column(String(100))
    envelope: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)

    referral: Mapped[Referral] = relationship()
    status_event: Mapped[StatusEvent | None] = relationship()


# A deadline whose overdue flag is up: raised, and neither met nor ended since.
FLAG_UP = "raised_at IS NOT NULL AND met_at IS NULL AND cleared_at IS NULL"


class TrackedDeadline(Base):
    """One deadline of one referral: from which state, due and escalating when, and how it
    ended. No personal data: ids, states, policy and calendar ids, instants.

    `next_alert_at` is when the overdue scan must next act on the row: `due_at` until the
    overdue flag is raised, then `escalate_at` until it escalates, and None once nothing is
    left to do or while the clock is paused. The scan reads that one indexed column.
    """

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("referral_id", "state", "name", name="uq_deadlines_referral"),
        # Partial: most rows are done (no next alert) and stay out of the scan's index.
        Index("ix_deadlines_next_alert", "next_alert_at", "id",
              postgresql_where=text("next_alert_at IS NOT NULL"),
              sqlite_where=text("next_alert_at IS NOT NULL")),
        # The overdue flags up now (metrics, the console's overdue page and filter): few
        # rows, found without a table scan.
        Index("ix_deadlines_flag_up", "referral_id", postgresql_where=text(FLAG_UP),
              sqlite_where=text(FLAG_UP)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"))
    state: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(40))
    policy_id: Mapped[str] = mapped_column(String(100))
    calendar_id: Mapped[str] = mapped_column(String(63))
    started_at: Mapped[datetime]
    due_at: Mapped[datetime]
    escalate_at: Mapped[datetime | None]
    next_alert_at: Mapped[datetime | None]
    raised_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    met_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]  # since when the clock stands still, if it does
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)  # all pauses so far


def overdue_open() -> ColumnElement[bool]:
    """OVERDUE_OPEN as an expression on TrackedDeadline (what the partial index covers)."""
    return and_(TrackedDeadline.raised_at.is_not(None), TrackedDeadline.met_at.is_(None),
                TrackedDeadline.cleared_at.is_(None))


class DeadlineEvent(Base):
    """What happened to a deadline, in order: the referral's timeline and the source of its
    alerts. No personal data: ids, an event name, an instant and envelope details.

    `event` is one of: started, paused, resumed, met (in time), missed (met after it fell
    due), ended (no longer applies: the referral left the state otherwise), raised (the
    overdue flag went up), escalated, cleared (the overdue flag came down).
    """

    __tablename__ = "deadline_events"
    # Counting flags raised and escalated (metrics) reads only those events.
    __table_args__ = (Index("ix_deadline_events_event", "event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    deadline_id: Mapped[int] = mapped_column(ForeignKey("deadlines.id"), index=True)
    event: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ServiceAvailability(Base):
    """An organisation's own word on the availability of one of its directory services,
    given through the API. No personal data: a service id, a status, the organisation's
    note on its service, when, and which partner said it."""

    __tablename__ = "service_availability"

    service_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(63))


class PartnerRecord(Base):
    """The partner system's own id of a referral exchanged through the gateway."""

    __tablename__ = "partner_records"
    __table_args__ = (
        UniqueConstraint("referral_id", "partner_id", name="uq_partner_records_referral"),
        UniqueConstraint("partner_id", "native_id", name="uq_partner_records_native"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    native_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PartnerCursor(Base):
    """Where the last poll of a partner system stopped."""

    __tablename__ = "partner_cursors"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(500))
    polled_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The poll's health, for the console and /metrics: the last poll that went through,
    # how many have failed since, and what the last failure was (a code, never a message).
    last_success_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(100))
    last_failure_at: Mapped[datetime | None]


class DeadLetter(Base):
    """A message that could not be delivered, with why: visible to operators, re-drivable.

    `reason` is a short code (partner_refused, mapping_error, retries_exhausted,
    delivery_limit, unknown-referral, unreadable-change …); `detail` names rules, fields and
    partner answers, never personal values. What may hold them is encrypted: the
    `partner_error` (status, code and the partner's own message) and, for an inbound letter,
    the `change` the poller could not take (kind, native id, referral id, changed_at,
    record), kept so that a re-drive takes it again.
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    referral_id: Mapped[str | None] = mapped_column(ForeignKey("referrals.id"), index=True)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    direction: Mapped[str] = mapped_column(String(10), default="outbound")
    message_type: Mapped[str | None] = mapped_column(String(30))
    routing_key: Mapped[str | None] = mapped_column(String(100))
    envelope: Mapped[dict[str, Any] | None]
    reason: Mapped[str] = mapped_column(String(50), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    partner_error: Mapped[dict[str, Any] | None] = mapped_column(
        EncryptedJSON("dead_letters.partner_error"))
    change: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("dead_letters.change"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dead_at: Mapped[datetime] = mapped_column(default=utcnow)
    redriven_at: Mapped[datetime | None]
    redriven_by: Mapped[str | None] = mapped_column(String(100))


class IdentifierDigest(Base):
    """A keyed hash of one identifier of a referral's subject, to find referrals by it."""

    __tablename__ = "identifier_digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)


class AuditEntry(Base):
    """One entry of the append-only, hash-chained audit trail: who did what to which referral.

    No personal data: ids, actions, codes. `hash` is SHA-256 over the entry and the previous
    entry's hash, so `casebridge audit verify` finds an edited, inserted or removed entry.
    `referral_id` is kept without a foreign key: the trail outlives a purged referral.
    """

    __tablename__ = "audit_log"
    # The disclosure register reads the entries of a few actions over a period.
    __table_args__ = (Index("ix_audit_log_action_at", "action", "at"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(120))
    partner_id: Mapped[str | None] = mapped_column(String(63), index=True)
    action: Mapped[str] = mapped_column(String(40), index=True)
    referral_id: Mapped[str | None] = mapped_column(String(36), index=True)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The one row naming the audit trail's last entry: writers take turns on it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class AccessToken(Base):
    """An OAuth2 access token given to a partner for its client credentials; stored hashed."""

    __tablename__ = "access_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ConsoleUser(Base):
    """A person who logs in to the operations console, with one role.

    operator: deliveries, envelopes, errors, re-drive — never personal data.
    im_officer: mappings and agreements, and referral content when needed.
    auditor: the audit trail.
    """

    __tablename__ = "console_users"

    username: Mapped[str] = mapped_column(String(100), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Failed console logins, by username and client address or by address alone
    (gateway.console.throttle). `key` is a keyed hash of them: a username nobody has, which
    may be a password typed in the wrong field, is never kept in the clear."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(20))  # "user_address" or "address"
    username: Mapped[str | None] = mapped_column(String(100))  # only a user that exists
    address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int]
    first_failure_at: Mapped[datetime]
    last_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class FhirSubscription(Base):
    """A FHIR partner's R4 Subscription (rest-hook): which Task changes it is told of, where.

    `channel` (reason, endpoint, payload, headers) is encrypted: the headers may carry the
    partner's credentials. `criteria` holds only Task search parameters the gateway checked
    (partner ids, status codes, referral ids), never a personal value. `events_since_start`
    numbers the notifications, as the R4 Backport notification status counts them.
    """

    __tablename__ = "fhir_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    criteria: Mapped[str] = mapped_column(String(500))
    channel: Mapped[dict[str, Any]] = mapped_column(EncryptedJSON("fhir_subscriptions.channel"))
    end_at: Mapped[datetime | None]
    events_since_start: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
