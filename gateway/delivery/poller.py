"""The poller: what partners raised or changed in their own systems comes into the gateway.

For each partner with a connection, the adapter's `discover` returns new outgoing
referrals/transfers and status changes since the stored cursor. New records are mapped
inbound and submitted as the partner (with an idempotency key derived from the native
id, so a repeated poll stores nothing twice); status changes are mapped to status events
and checked against the lifecycle. A change the gateway cannot take is recorded as an
inbound dead letter with its reason — never its content — and the poll moves on.
"""

import threading
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from structlog.contextvars import bind_contextvars, clear_contextvars

from adapters.base import NativeChange
from adapters.registry import AdapterPool
from gateway.contracts import Contracts
from gateway.delivery.translate import Translator
from gateway.errors import CaseBridgeError
from gateway.logs import new_correlation_id
from gateway.protection import audit
from gateway.protection.agreements import AgreementRegistry
from gateway.referrals import record_status_event, role_of, submit_referral
from gateway.store.db import unit_of_work
from gateway.store.models import DeadLetter, Partner, PartnerCursor, PartnerRecord, Referral

log = structlog.get_logger()


@dataclass
class PollResult:
    submitted: list[str] = field(default_factory=list)
    status_events: int = 0
    refused: int = 0


class Poller:
    """Polls partner systems; holds adapter connections only."""

    def __init__(self, *, sessions: sessionmaker[Session], contracts: Contracts,
                 agreements: AgreementRegistry, translator: Translator) -> None:
        self.sessions = sessions
        self.contracts = contracts
        self.agreements = agreements
        self.translator = translator
        self.adapters = AdapterPool()

    def poll(self, partner_id: str) -> PollResult:
        """One poll of one partner: take every change, then store the new cursor."""
        with self.sessions() as session:
            partner = session.get(Partner, partner_id)
            stored = session.get(PartnerCursor, partner_id)
            if partner is None or not partner.active:
                return PollResult()
            adapter = self.adapters.for_partner(partner.id, partner.system, partner.connection)
            system, cursor = partner.system, stored.cursor if stored else None
        if adapter is None:
            return PollResult()
        discovery = adapter.discover(cursor=cursor)
        result = PollResult()
        for change in discovery.changes:
            clear_contextvars()
            bind_contextvars(partner=partner_id, native_id=change.native_id, change=change.kind)
            try:
                if change.problem is not None:
                    raise CaseBridgeError(detail=change.problem, status=422,
                                          slug="unreadable-change", title="Unreadable change")
                if change.kind == "status":
                    result.status_events += self._take_status(partner_id, system, change)
                else:
                    result.submitted.append(self._take_record(partner_id, system, change))
            except CaseBridgeError as error:
                result.refused += 1
                self._refuse(partner_id, change, error)
        with unit_of_work(self.sessions) as session:
            row = session.get(PartnerCursor, partner_id) or PartnerCursor(partner_id=partner_id)
            row.cursor = discovery.cursor if discovery.cursor is not None else cursor
            session.add(row)
        log.info("partner_polled", partner=partner_id, submitted=len(result.submitted),
                 status_events=result.status_events, refused=result.refused)
        return result

    def partner_ids(self) -> list[str]:
        """Active partners the gateway reaches through an adapter."""
        with self.sessions() as session:
            return list(session.scalars(select(Partner.id).where(
                Partner.active.is_(True), Partner.connection.is_not(None))))

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
                correlation_id=new_correlation_id())
            referral = submitted.referral
            if not submitted.replayed:
                referral.mapping_hash = mapping_hash
                session.add(PartnerRecord(referral_id=referral.id, partner_id=partner_id,
                                          native_id=change.native_id, role="sender"))
            return referral.id

    def _take_status(self, partner_id: str, system: str, change: NativeChange) -> int:
        with self.sessions() as session:
            referral_id = change.referral_id or session.scalar(
                select(PartnerRecord.referral_id).where(
                    PartnerRecord.partner_id == partner_id,
                    PartnerRecord.native_id == change.native_id))
            referral = session.get(Referral, referral_id) if referral_id else None
            if referral is None:
                raise CaseBridgeError(detail="the status change is for a record the gateway "
                                             "does not know", status=404,
                                      slug="unknown-referral", title="Unknown referral")
            kind = referral.kind
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

    def _refuse(self, partner_id: str, change: NativeChange, error: CaseBridgeError) -> None:
        """Record an inbound change the gateway could not take: ids and reason only."""
        pointers = [e.get("pointer", "") + " " + e.get("rule", "")
                    for e in error.extensions.get("errors", [])]
        detail = error.detail + (f" ({'; '.join(pointers)})" if pointers else "")
        message_id = f"inbound:{partner_id}:{change.native_id}:{change.changed_at or ''}"[:64]
        with unit_of_work(self.sessions) as session:
            if session.scalar(select(DeadLetter.id).where(DeadLetter.message_id == message_id)):
                return
            session.add(DeadLetter(
                message_id=message_id, referral_id=change.referral_id, partner_id=partner_id,
                direction="inbound", message_type=change.kind,
                envelope={"native_id": change.native_id, "kind": change.kind,
                          "partner": partner_id},
                reason=error.slug, detail=detail[:2000], attempts=1))
            audit.record(session, actor="system:poller", action="referral.refuse",
                         partner_id=partner_id, referral_id=change.referral_id,
                         detail={"problem": error.slug, "native_kind": change.kind})
        log.warning("inbound_change_refused", reason=error.slug)


def run_poller(*, poller: Poller, interval: float, stop: threading.Event) -> None:
    """Poll every partner every `interval` seconds until stopped; a failing partner waits."""
    while not stop.is_set():
        for partner_id in poller.partner_ids():
            try:
                poller.poll(partner_id)
            except CaseBridgeError as error:  # partner down: try again next round
                log.warning("partner_poll_failed", partner=partner_id, reason=error.slug)
        stop.wait(interval)
