"""The overview: each partner at a glance — what waits in its queues and since when, what
was delivered, failed and dead-lettered in the last hour and day, its oldest undelivered
referral, its health (last success, error rate, circuit, suspension, polling), and its
overdue and escalated deadlines. It refreshes itself, and says so when the broker or the
database cannot be reached instead of failing.

Counts, ids, partners and instants only: nothing here reads a referral's content.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import and_, case, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.responses import Response

from gateway.console.access import (
    LoginRequired,
    Page,
    RoleForbidden,
    Viewer,
    cookies_of,
    current_viewer,
)
from gateway.console.render import page
from gateway.console.sessions import COOKIE
from gateway.delivery import circuit
from gateway.delivery.queues import BrokerUnreachable, QueueDepth, depths, partner_queues
from gateway.settings import Settings
from gateway.store.models import (
    DeadLetter,
    Delivery,
    OutboxMessage,
    Partner,
    PartnerCursor,
    Referral,
    TrackedDeadline,
    overdue_open,
    utcnow,
)

router = APIRouter(prefix="/console", include_in_schema=False)
REFRESH_SECONDS = 10
ANSWERED = ("delivered", "withheld")  # attempts that reached the partner, or needed not


@dataclass(frozen=True)
class Queue:
    """One of a partner's queues: what waits there and since when (approximately)."""

    name: str
    kind: str
    ready: int | None  # None: the broker could not be asked
    consumers: int | None
    declared: bool
    oldest: datetime | None


@dataclass
class Counts:
    delivered: int = 0
    failed: int = 0
    dead: int = 0


@dataclass
class PartnerGlance:
    id: str
    name: str
    system: str
    connected: bool
    suspended_at: datetime | None
    suspended_by: str | None
    failures_in_a_row: int
    circuit_open_until: datetime | None
    queues: list[Queue] = field(default_factory=list)
    hour: Counts = field(default_factory=Counts)
    day: Counts = field(default_factory=Counts)
    oldest_undelivered: tuple[str, datetime] | None = None
    last_delivered: datetime | None = None
    poll: PartnerCursor | None = None
    overdue: int = 0
    escalated: int = 0

    @property
    def waiting(self) -> int:
        return sum(q.ready or 0 for q in self.queues)

    @property
    def error_rate(self) -> float | None:
        """Failed attempts in the last hour, as a share of all attempts then."""
        tried = self.hour.delivered + self.hour.failed
        return None if not tried else self.hour.failed / tried

    def circuit_open(self, now: datetime) -> bool:
        return self.circuit_open_until is not None and self.circuit_open_until > now

    def standing(self, now: datetime) -> str:
        """running, suspended, circuit open, or failing (failures since the last success)."""
        if self.suspended_at is not None:
            return circuit.SUSPENDED
        if self.circuit_open(now):
            return circuit.CIRCUIT_OPEN
        if self.failures_in_a_row or (self.poll and self.poll.consecutive_failures):
            return "failing"
        return "running"


@dataclass(frozen=True)
class Glance:
    at: datetime
    partners: list[PartnerGlance]
    broker: BrokerUnreachable | None  # None: the broker answered


def glance(*, session: Session, settings: Settings, now: datetime) -> Glance:
    """Every partner at a glance now, the broker asked for the depth of each queue."""
    partners = {p.id: PartnerGlance(
        p.id, p.name, p.system, p.connection is not None, p.suspended_at, p.suspended_by,
        p.delivery_failures, p.circuit_open_until)
        for p in session.scalars(select(Partner).order_by(Partner.id))}
    found = depths(settings.amqp_url, list(partners), timeout=settings.readiness_timeout)
    broker = found if isinstance(found, BrokerUnreachable) else None
    known = {} if isinstance(found, BrokerUnreachable) else found
    for glance_ in partners.values():
        glance_.queues = [_queue(session, name, known.get(name))
                          for name in partner_queues(glance_.id)]
    _attempts(session, partners, now)
    _dead_letters(session, partners, now)
    _undelivered(session, partners)
    _overdue(session, partners)
    for poll in session.scalars(select(PartnerCursor)):
        if poll.partner_id in partners:
            partners[poll.partner_id].poll = poll
    return Glance(now, list(partners.values()), broker)


def _queue(session: Session, name: str, depth: QueueDepth | None) -> Queue:
    kind = name.split(".", 1)[0]
    if depth is None:
        return Queue(name, kind, None, None, True, None)
    oldest = None
    if depth.ready:
        # Queues are first in, first out: of the messages published to this queue, the
        # `ready`-th newest is at its head (a message back from the retry ladder queues
        # again at the end, so this is close, not exact).
        oldest = session.scalar(
            select(OutboxMessage.published_at).where(OutboxMessage.routing_key == name,
                                                     OutboxMessage.published_at.is_not(None))
            .order_by(OutboxMessage.published_at.desc()).offset(depth.ready - 1).limit(1)
        ) or session.scalar(
            select(func.min(OutboxMessage.published_at)).where(OutboxMessage.routing_key == name))
    return Queue(name, kind, depth.ready, depth.consumers, depth.declared, oldest)


def _attempts(session: Session, partners: dict[str, PartnerGlance], now: datetime) -> None:
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    rows = session.execute(
        select(Delivery.partner_id, Delivery.outcome, func.count(),
               func.sum(case((Delivery.finished_at >= hour_ago, 1), else_=0)))
        .where(Delivery.partner_id.in_(list(partners)), Delivery.finished_at >= day_ago)
        .group_by(Delivery.partner_id, Delivery.outcome))
    for partner_id, outcome, day, hour in rows:
        glance_ = partners[partner_id]
        if outcome in ANSWERED:
            glance_.day.delivered += day
            glance_.hour.delivered += hour or 0
        else:
            glance_.day.failed += day
            glance_.hour.failed += hour or 0
    for partner_id in partners:
        partners[partner_id].last_delivered = session.scalar(
            select(Delivery.finished_at).where(Delivery.partner_id == partner_id,
                                               Delivery.outcome == "delivered")
            .order_by(Delivery.finished_at.desc()).limit(1))


def _dead_letters(session: Session, partners: dict[str, PartnerGlance], now: datetime) -> None:
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    for partner_id, day, hour in session.execute(
            select(DeadLetter.partner_id, func.count(),
                   func.sum(case((DeadLetter.dead_at >= hour_ago, 1), else_=0)))
            .where(DeadLetter.partner_id.in_(list(partners)), DeadLetter.dead_at >= day_ago)
            .group_by(DeadLetter.partner_id)):
        partners[partner_id].day.dead = day
        partners[partner_id].hour.dead = hour or 0


def _undelivered(session: Session, partners: dict[str, PartnerGlance]) -> None:
    """Each receiver's oldest referral still waiting to be delivered (and allowed to be)."""
    for partner_id, glance_ in partners.items():
        row = session.execute(
            select(Referral.id, Referral.created_at)
            .where(Referral.status == "submitted", Referral.receiver_id == partner_id,
                   Referral.consent_withdrawn_at.is_(None), Referral.restricted_at.is_(None),
                   Referral.erased_at.is_(None))
            .order_by(Referral.created_at, Referral.id).limit(1)).one_or_none()
        glance_.oldest_undelivered = (row.id, row.created_at) if row else None


def _overdue(session: Session, partners: dict[str, PartnerGlance]) -> None:
    """Deadlines overdue now by receiving partner (whose answer is late), and how many of
    them escalated."""
    for partner_id, overdue, escalated in session.execute(
            select(Referral.receiver_id, func.count(),
                   func.sum(case((TrackedDeadline.escalated_at.is_not(None), 1), else_=0)))
            .join(TrackedDeadline, and_(TrackedDeadline.referral_id == Referral.id,
                                        overdue_open()))
            .group_by(Referral.receiver_id)):
        if partner_id in partners:
            partners[partner_id].overdue = overdue
            partners[partner_id].escalated = escalated or 0


def overview_viewer(request: Request) -> Viewer | str:
    """The logged-in viewer; when the database cannot be reached to check the user, the
    name a valid (signed) session cookie carries, so the page can say so."""
    found = cookies_of(request).read(request.cookies.get(COOKIE))
    if found is None:
        raise LoginRequired()
    try:
        with request.app.state.sessions() as session:
            viewer = current_viewer(request, session)
    except OperationalError:
        return found.username
    if viewer is None:
        raise LoginRequired()
    if not viewer.may(Page.OVERVIEW):
        raise RoleForbidden(viewer, Page.OVERVIEW)
    return viewer


OverviewViewer = Annotated[Viewer | str, Depends(overview_viewer)]


def _render(request: Request, who: Viewer | str, template: str) -> Response:
    settings: Settings = request.app.state.settings
    now = utcnow()
    found, database_error = None, None
    if isinstance(who, str):
        database_error = "the console could not check your session"
    else:
        try:
            with request.app.state.sessions() as session:
                found = glance(session=session, settings=settings, now=now)
        except OperationalError as error:
            database_error = type(error.orig or error).__name__
    return page(request, template, viewer=who if isinstance(who, Viewer) else None,
                active=Page.OVERVIEW, status=200 if found else 503, glance=found, now=now,
                database_error=database_error, refresh=REFRESH_SECONDS)


@router.get("/overview")
def overview(request: Request, who: OverviewViewer) -> Response:
    """Each partner at a glance; the page refreshes its figures every few seconds."""
    return _render(request, who, "overview.html")


@router.get("/overview/live")
def overview_live(request: Request, who: OverviewViewer) -> Response:
    """The figures alone, for the page to refresh itself with."""
    return _render(request, who, "overview_live.html")
