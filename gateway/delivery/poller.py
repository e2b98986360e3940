"""The poller: what partners raised or changed in their own systems comes into the gateway.

For each partner with a connection, the adapter's `discover` returns new outgoing
referrals/transfers and status changes since the stored cursor. New records are mapped
inbound and submitted as the partner (with an idempotency key derived from the native
id, so a repeated poll stores nothing twice); status changes are mapped to status events
and checked against the lifecycle.

Nothing is lost: a change the gateway cannot take — whatever the reason, a refusal or a
fault — becomes an inbound dead letter with its reason (the change itself kept encrypted
so that a re-drive takes it again) and the poll moves on to the next change. Only when
even that record cannot be written does the poll stop, without moving the cursor, so
the next poll reads the same changes again. `run_poller` survives every failure of a
partner, waits longer before polling a failing partner again, and keeps each partner's
poll health (last success, consecutive failures, last error code) for the console and
/metrics.
"""

import dataclasses
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from structlog.contextvars import bind_contextvars, clear_contextvars

from adapters.base import NativeChange, PartnerAdapter
from adapters.registry import AdapterPool
from gateway.casework import record_status_event, role_of, submit_referral
from gateway.contracts import Contracts
from gateway.delivery.translate import Translator
from gateway.directory.registry import DirectoryRegistry
from gateway.errors import (
    CaseBridgeError,
    ConsentProblem,
    DeliveryError,
    TransientDeliveryError,
)
from gateway.logs import new_correlation_id
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.protection.disclosures import refusal_facts
from gateway.store.db import unit_of_work
from gateway.store.models import (
    DeadLetter,
    Partner,
    PartnerCursor,
    PartnerRecord,
    Referral,
    utcnow,
)

log = structlog.get_logger()

MAX_BACKOFF = 300.0  # seconds: a partner down for hours is still tried every 5 minutes


@dataclass
class PollResult:
    submitted: list[str] = dataclasses.field(default_factory=list)
    status_events: int = 0
    refused: int = 0
    retaken: int = 0


@dataclass(frozen=True)
class Refusal:
    """Why a change was not taken: a problem slug and a detail without personal values;
    for a consent or agreement refusal, the facts its audit entry keeps."""

    slug: str
    detail: str
    facts: dict[str, Any] = dataclasses.field(default_factory=dict)


def inbound_message_id(partner_id: str, change: NativeChange) -> str:
    """The dead-letter key of one change: the same change polled twice gets the same key,
    two changes of one record (another time, another kind) get two (64 characters)."""
    moment = change.changed_at or hashlib.sha256(json.dumps(
        change.record, sort_keys=True, default=str).encode()).hexdigest()
    key = "\x1f".join((partner_id, change.kind, change.native_id, moment))
    return "inbound:" + hashlib.sha256(key.encode()).hexdigest()[:56]


def refusal_of(error: Exception) -> Refusal:
    """The dead-letter reason of an error: the problem and the fields it names; for an
    unplanned fault only its type (its message may quote a value)."""
    if not isinstance(error, CaseBridgeError):
        return Refusal("take-failed", f"the gateway failed to take the change "
                                      f"({type(error).__name__})")
    pointers = [e.get("pointer", "") + " " + e.get("rule", "")
                for e in error.extensions.get("errors", [])]
    detail = error.detail + (f" ({'; '.join(pointers)})" if pointers else "")
    facts = refusal_facts(error) if isinstance(error, ConsentProblem) else {}
    return Refusal(error.slug, detail[:2000], facts)


def error_code(error: Exception) -> str:
    """A short code for a failed poll (problem slug and partner status, or the type)."""
    if isinstance(error, DeliveryError):
        status = getattr(error, "partner_status", None)
        return f"{error.slug} {status}" if status else error.slug
    if isinstance(error, CaseBridgeError):
        return error.slug
    return type(error).__name__


class Poller:
    """Polls partner systems; holds adapter connections only."""

    def __init__(self, *, sessions: sessionmaker[Session], contracts: Contracts,
                 agreements: AgreementRegistry, translator: Translator,
                 directory: DirectoryRegistry | None = None) -> None:
        self.sessions = sessions
        self.contracts = contracts
        self.agreements = agreements
        self.translator = translator
        # A referral a partner raised is checked against the service directory as one
        # posted to the API is; a refusal is an inbound dead letter, re-drivable.
        self.directory = directory
        self.adapters = AdapterPool()

    def poll(self, partner_id: str) -> PollResult:
        """One poll of one partner: re-driven changes, then every new change, then the cursor."""
        with self.sessions() as session:
            partner = session.get(Partner, partner_id)
            stored = session.get(PartnerCursor, partner_id)
            if partner is None or not partner.active:
                return PollResult()
            adapter = self.adapters.for_partner(partner.id, partner.system, partner.connection)
            system, cursor = partner.system, stored.cursor if stored else None
        if adapter is None:
            return PollResult()
        result = PollResult()
        self._retake_redriven(partner_id, system, adapter, result)
        discovery = adapter.discover(cursor=cursor)
        for change in discovery.changes:
            clear_contextvars()
            bind_contextvars(partner=partner_id, change=change.kind)
            try:
                self._take(partner_id, system, change, result)
            except Exception as error:  # one change, whatever went wrong, must not stop the rest
                if not isinstance(error, CaseBridgeError):
                    log.error("inbound_change_failed", error_type=type(error).__name__)
                result.refused += 1
                self._refuse(partner_id, change, refusal_of(error))
        clear_contextvars()
        with unit_of_work(self.sessions) as session:
            row = session.get(PartnerCursor, partner_id) or PartnerCursor(partner_id=partner_id)
            row.cursor = discovery.cursor if discovery.cursor is not None else cursor
            row.polled_at = row.last_success_at = utcnow()
            row.consecutive_failures = 0
            session.add(row)
        log.info("partner_polled", partner=partner_id, submitted=len(result.submitted),
                 status_events=result.status_events, refused=result.refused,
                 retaken=result.retaken)
        return result

    def partner_ids(self) -> list[str]:
        """Active partners the gateway reaches through an adapter."""
        with self.sessions() as session:
            return list(session.scalars(select(Partner.id).where(
                Partner.active.is_(True), Partner.connection.is_not(None))))

    def record_failure(self, partner_id: str, error: Exception) -> int:
        """Note a failed poll in the partner's poll health; the consecutive failures so far."""
        code = error_code(error)[:100]
        with unit_of_work(self.sessions) as session:
            row = session.get(PartnerCursor, partner_id) or PartnerCursor(
                partner_id=partner_id, consecutive_failures=0)
            row.consecutive_failures = (row.consecutive_failures or 0) + 1
            row.last_error, row.last_failure_at = code, utcnow()
            session.add(row)
            failures = row.consecutive_failures
        log.warning("partner_poll_failed", partner=partner_id, error=code, failures=failures)
        return failures

    # -- taking one change ----------------------------------------------------------------

    def _take(self, partner_id: str, system: str, change: NativeChange,
              result: PollResult) -> None:
        if change.problem is not None:
            raise CaseBridgeError(detail=change.problem, status=422,
                                  slug="unreadable-change", title="Unreadable change")
        if change.kind == "status":
            result.status_events += self._take_status(partner_id, system, change)
        else:
            result.submitted.append(self._take_record(partner_id, system, change))

    def _take_record(self, partner_id: str, system: str, change: NativeChange) -> str:
        canonical, mapping_hash = self.translator.inbound(system, change.kind, change.record)
        # The mapping cannot know which gateway partner is polling; the gateway does.
        canonical.setdefault("sender", {})["partner"] = partner_id
        with unit_of_work(self.sessions) as session:
            partner = session.get(Partner, partner_id)
            assert partner is not None
            submitted = submit_referral(
                session=session, contracts=self.contracts, agreements=self.agreements,
                sender=partner, document=canonical,
                idempotency_key=f"native:{change.native_id}",
                correlation_id=new_correlation_id(), directory=self.directory)
            referral = submitted.referral
            if not submitted.replayed:
                referral.mapping_hash = mapping_hash
                session.add(PartnerRecord(referral_id=referral.id, partner_id=partner_id,
                                          native_id=change.native_id, role="sender"))
            return referral.id

    def _take_status(self, partner_id: str, system: str, change: NativeChange) -> int:
        with self.sessions() as session:
            referral_id = _referral_of(session, partner_id, change)
            if referral_id is None:
                raise CaseBridgeError(detail="the status change is for a record the gateway "
                                             "does not know", status=404,
                                      slug="unknown-referral", title="Unknown referral")
            kind = session.get_one(Referral, referral_id).kind
        document: dict[str, Any] = self.translator.status_in(system, kind, change.record)
        with unit_of_work(self.sessions) as session:
            referral = session.get(Referral, referral_id, with_for_update=True)
            partner = session.get(Partner, partner_id)
            assert referral is not None and partner is not None
            bind_contextvars(referral_id=referral.id, correlation_id=referral.correlation_id)
            event = record_status_event(session=session, contracts=self.contracts,
                                        referral=referral, actor=role_of(partner, referral),
                                        actor_partner=partner, document=document, polled=True)
            return 1 if event is not None else 0

    # -- dead letters and re-drive ----------------------------------------------------------

    def _refuse(self, partner_id: str, change: NativeChange, refusal: Refusal) -> None:
        """Record a change the gateway could not take: reason in clear, the change encrypted."""
        message_id = inbound_message_id(partner_id, change)
        with unit_of_work(self.sessions) as session:
            if session.scalar(select(DeadLetter.id).where(DeadLetter.message_id == message_id)):
                return  # the very same change, polled again
            # Only a referral the store holds may be named (a foreign key): a partner's row
            # can carry any id, and one that is not ours must not stop the poll.
            referral_id = _referral_of(session, partner_id, change)
            letter = DeadLetter(
                message_id=message_id, referral_id=referral_id, partner_id=partner_id,
                direction="inbound", message_type=change.kind,
                envelope={"native_id": change.native_id, "kind": change.kind,
                          "partner": partner_id},
                reason=refusal.slug, detail=refusal.detail, attempts=1,
                change=dataclasses.asdict(change))
            session.add(letter)
            session.flush()
            audit.record(session, actor="system:poller", action="referral.refuse",
                         partner_id=partner_id, referral_id=referral_id,
                         detail={"problem": refusal.slug, **refusal.facts,
                                 "native_kind": change.kind, "dead_letter": letter.id})
        log.warning("inbound_change_refused", reason=refusal.slug, dead_letter_id=letter.id)

    def _retake_redriven(self, partner_id: str, system: str, adapter: PartnerAdapter,
                         result: PollResult) -> None:
        """Take again, once, each inbound dead letter an operator re-drove; a record the
        adapter could not read is read again first (the partner may have fixed it)."""
        with self.sessions() as session:
            ids = list(session.scalars(select(DeadLetter.id).where(
                DeadLetter.partner_id == partner_id, DeadLetter.direction == "inbound",
                DeadLetter.redriven_at.is_not(None), DeadLetter.change.is_not(None))
                .order_by(DeadLetter.id)))
        for letter_id in ids:
            with self.sessions() as session:
                stored = session.get_one(DeadLetter, letter_id).change
            if stored is None:
                continue
            change = NativeChange(**stored)
            clear_contextvars()
            bind_contextvars(partner=partner_id, change=change.kind, dead_letter_id=letter_id)
            try:
                if change.problem is not None and change.kind != "status":
                    change = dataclasses.replace(
                        change, record=adapter.read(native_id=change.native_id), problem=None)
                self._take(partner_id, system, change, result)
            except TransientDeliveryError:
                raise  # the partner is down: the letter stays queued for the next round
            except Exception as error:  # as in `poll`: it stays a dead letter, with the new why
                if not isinstance(error, CaseBridgeError):
                    log.error("inbound_change_failed", error_type=type(error).__name__)
                self._reopen(letter_id, refusal_of(error))
                continue
            with unit_of_work(self.sessions) as session:
                letter = session.get_one(DeadLetter, letter_id, with_for_update=True)
                letter.change = None  # taken: the gateway keeps it as a referral or event now
                letter.referral_id = letter.referral_id or _referral_of(session, partner_id,
                                                                        change)
            result.retaken += 1
            log.info("dead_letter_retaken", dead_letter_id=letter_id)
        clear_contextvars()

    def _reopen(self, letter_id: int, refusal: Refusal) -> None:
        """A re-driven change failed again: the letter is open again with the new reason."""
        with unit_of_work(self.sessions) as session:
            letter = session.get_one(DeadLetter, letter_id, with_for_update=True)
            letter.redriven_at = letter.redriven_by = None
            letter.reason, letter.detail = refusal.slug, refusal.detail
            letter.attempts += 1
            audit.record(session, actor="system:poller", action="referral.refuse",
                         partner_id=letter.partner_id, referral_id=letter.referral_id,
                         detail={"problem": refusal.slug, **refusal.facts,
                                 "native_kind": letter.message_type,
                                 "dead_letter": letter.id, "redrive": "failed"})
        log.warning("inbound_change_refused_again", reason=refusal.slug,
                    dead_letter_id=letter_id)


def _referral_of(session: Session, partner_id: str, change: NativeChange) -> str | None:
    """The id of the stored referral a change is about, or None when the store holds none."""
    referral_id = change.referral_id or session.scalar(
        select(PartnerRecord.referral_id).where(PartnerRecord.partner_id == partner_id,
                                                PartnerRecord.native_id == change.native_id))
    if referral_id is None or session.get(Referral, referral_id) is None:
        return None
    return referral_id


def backoff(failures: int, interval: float) -> float:
    """Seconds to leave a partner alone after `failures` polls in a row failed."""
    return float(min(interval * 2 ** failures, max(MAX_BACKOFF, interval)))


def run_poller(*, poller: Poller, interval: float, stop: threading.Event) -> None:
    """Poll every partner every `interval` seconds until stopped; a failing partner waits
    longer each time, and no failure of any kind ends the loop."""
    resting: dict[str, float] = {}  # partner id → monotonic time of its next poll
    while not stop.is_set():
        try:
            partner_ids = poller.partner_ids()
        except Exception as error:  # the store is down: try the whole round again later
            log.error("poll_round_failed", error_type=type(error).__name__)
            partner_ids = []
        for partner_id in partner_ids:
            if stop.is_set() or time.monotonic() < resting.get(partner_id, 0.0):
                continue
            try:
                poller.poll(partner_id)
            except Exception as error:  # partner down, bad connection, a bug: the others go on
                resting[partner_id] = time.monotonic() + _failed(poller, partner_id, error,
                                                                 interval)
            else:
                resting.pop(partner_id, None)
        clear_contextvars()
        stop.wait(interval)


def _failed(poller: Poller, partner_id: str, error: Exception, interval: float) -> float:
    """Record a failed poll; how long to rest the partner (the type only is logged)."""
    try:
        failures = poller.record_failure(partner_id, error)
    except Exception as record_error:  # the store is down too: rest the partner anyway
        log.error("partner_poll_failed", partner=partner_id, error=error_code(error),
                  record_error_type=type(record_error).__name__)
        failures = 1
    return backoff(failures, interval)
