"""When workers leave a partner alone: delivery suspended by an operator, or the partner's
circuit open after too many transient failures in a row.

Either way the partner's messages wait in its queues: workers stop consuming them
(`consumer.run_worker` looks every few seconds) and hand back, unattempted, any that reach
them before that (`worker.Wait`). Nothing is lost and no attempt is spent. An open circuit
closes by itself: after `circuit_seconds` one delivery tries again; a success closes it, a
failure opens it for another period. The state lives in the store (`partners`), so every
worker on every machine sees the same, and the console shows it.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import case, literal, select, update
from sqlalchemy.orm import Session

from gateway.store.models import Partner, utcnow

SUSPENDED = "suspended"
CIRCUIT_OPEN = "circuit open"


@dataclass(frozen=True)
class Breaker:
    """How many transient failures in a row open a circuit, and for how long."""

    failures: int
    seconds: float


def paused_partners(session: Session, now: datetime | None = None) -> dict[str, str]:
    """Every partner workers must leave alone now, with why (suspended or circuit open)."""
    now = now or utcnow()
    rows = session.execute(select(Partner.id, Partner.suspended_at, Partner.circuit_open_until)
                           .where((Partner.suspended_at.is_not(None))
                                  | (Partner.circuit_open_until > now)))
    return {partner: SUSPENDED if suspended is not None else CIRCUIT_OPEN
            for partner, suspended, _ in rows}


@dataclass(frozen=True)
class Standing:
    """One partner's standing for delivery now."""

    paused: str | None  # why workers must leave it alone (suspended, circuit open), or None
    failing: bool  # transient failures since its last success


class StandingRow(Protocol):
    """The columns of a partner's row that make its standing."""

    suspended_at: datetime | None
    circuit_open_until: datetime | None
    delivery_failures: int


def standing(session: Session, partner_id: str, now: datetime | None = None) -> Standing:
    """Whether workers must leave this partner alone now, and whether it has been failing."""
    return standing_of(session.execute(select(
        Partner.suspended_at, Partner.circuit_open_until, Partner.delivery_failures)
        .where(Partner.id == partner_id)).one_or_none(), now)


def standing_of(row: StandingRow | None, now: datetime | None = None) -> Standing:
    """A partner's standing from its row (None: no such partner, nothing to leave alone)."""
    if row is None:
        return Standing(None, False)
    failing = bool(row.delivery_failures) or row.circuit_open_until is not None
    if row.suspended_at is not None:
        return Standing(SUSPENDED, failing)
    if row.circuit_open_until is not None and row.circuit_open_until > (now or utcnow()):
        return Standing(CIRCUIT_OPEN, failing)
    return Standing(None, failing)


def record_success(session: Session, partner_id: str) -> None:
    """The partner answered: its circuit closes (no write when it was closed already)."""
    session.execute(update(Partner).where(
        Partner.id == partner_id,
        (Partner.delivery_failures > 0) | Partner.circuit_open_until.is_not(None),
    ).values(delivery_failures=0, circuit_open_until=None))


def record_failure(session: Session, partner_id: str, breaker: Breaker,
                   now: datetime | None = None) -> None:
    """A transient failure: one more in a row; at the threshold the circuit (re)opens
    (never when the breaker's threshold is 0: no circuit)."""
    if breaker.failures <= 0:
        session.execute(update(Partner).where(Partner.id == partner_id).values(
            delivery_failures=Partner.delivery_failures + 1))
        return
    until = (now or utcnow()) + timedelta(seconds=breaker.seconds)
    session.execute(update(Partner).where(Partner.id == partner_id).values(
        delivery_failures=Partner.delivery_failures + 1,
        circuit_open_until=case(
            (Partner.delivery_failures + 1 >= breaker.failures,
             literal(until, type_=Partner.circuit_open_until.type)),
            else_=Partner.circuit_open_until)))
