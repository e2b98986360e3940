"""Prometheus metrics read from the store when scraped: each partner's poll health, the
dead letters waiting and the overdue deadlines, whichever process polled, recorded or
raised them, and agreement health. Partner and agreement ids, codes and counts only. (The
scheduler process serves its own figures, the scan's duration and the last tick, on its
port: `casebridge scheduler`.)"""

from collections.abc import Iterator

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.api.deps import AgreementsDep, SessionDep
from gateway.protection import agreement_health
from gateway.protection.agreements import AgreementRegistry
from gateway.store.models import (
    DeadLetter,
    DeadlineEvent,
    PartnerCursor,
    Referral,
    TrackedDeadline,
    utcnow,
)

router = APIRouter(tags=["operations"])


class _StoreSnapshot(Collector):
    """The figures of one scrape, read in the request's session."""

    def __init__(self, session: Session, agreements: AgreementRegistry) -> None:
        self.session = session
        self.agreements = agreements

    def collect(self) -> Iterator[Metric]:
        last = GaugeMetricFamily(
            "casebridge_poll_last_success_timestamp_seconds",
            "Unix time of the last poll of the partner system that went through",
            labels=["partner"])
        failures = GaugeMetricFamily(
            "casebridge_poll_consecutive_failures",
            "Polls of the partner system that failed in a row since the last success",
            labels=["partner"])
        error = GaugeMetricFamily(
            "casebridge_poll_last_error_info",
            "The code of the last failed poll of the partner system (1 = this code)",
            labels=["partner", "error"])
        for row in self.session.scalars(select(PartnerCursor)):
            if row.last_success_at is not None:
                last.add_metric([row.partner_id], row.last_success_at.timestamp())
            failures.add_metric([row.partner_id], row.consecutive_failures or 0)
            if row.last_error:
                error.add_metric([row.partner_id, row.last_error], 1)
        letters = GaugeMetricFamily(
            "casebridge_dead_letters_open", "Dead letters not re-driven",
            labels=["partner", "direction", "reason"])
        for partner, direction, reason, count in self.session.execute(
                select(DeadLetter.partner_id, DeadLetter.direction, DeadLetter.reason,
                       func.count()).where(DeadLetter.redriven_at.is_(None))
                .group_by(DeadLetter.partner_id, DeadLetter.direction, DeadLetter.reason)):
            letters.add_metric([partner or "", direction, reason], count)
        yield from (last, failures, error, letters)
        yield from _deadlines(self.session)
        yield from _agreement_health(self.session, self.agreements)


def _deadlines(session: Session) -> Iterator[Metric]:
    """Overdue deadlines open now, and the flags raised and escalated so far, by the
    receiving partner (the one whose answer is late)."""
    open_ = GaugeMetricFamily(
        "casebridge_deadlines_overdue_open",
        "Deadlines flagged overdue and not yet met or ended, by receiving partner",
        labels=["partner"])
    for partner, count in session.execute(
            select(Referral.receiver_id, func.count()).join(
                TrackedDeadline, TrackedDeadline.referral_id == Referral.id)
            .where(TrackedDeadline.raised_at.is_not(None), TrackedDeadline.met_at.is_(None),
                   TrackedDeadline.cleared_at.is_(None))
            .group_by(Referral.receiver_id)):
        open_.add_metric([partner], count)
    flags = {event: CounterMetricFamily(
        f"casebridge_deadlines_{event}", f"Overdue flags {event} so far (deadline events), "
        "by receiving partner", labels=["partner"]) for event in ("raised", "escalated")}
    for partner, event, count in session.execute(
            select(Referral.receiver_id, DeadlineEvent.event, func.count()).join(
                DeadlineEvent, DeadlineEvent.referral_id == Referral.id)
            .where(DeadlineEvent.event.in_(flags))
            .group_by(Referral.receiver_id, DeadlineEvent.event)):
        flags[event].add_metric([partner], count)
    yield from (open_, *flags.values())


def _agreement_health(session: Session, agreements: AgreementRegistry) -> Iterator[Metric]:
    """Agreement health (gateway/protection/agreement_health.py) as gauges."""
    found = agreement_health.health(session, agreements=agreements.in_force(), now=utcnow())
    expiry = GaugeMetricFamily(
        "casebridge_agreement_days_to_expiry",
        "Days until the agreement's last day (negative once it has ended); renew before 0",
        labels=["agreement"])
    for term in found.terms:
        if term.days_left is not None:
            expiry.add_metric([term.agreement.id], term.days_left)
    refused = GaugeMetricFamily(
        "casebridge_agreement_not_valid_refusals",
        f"Referrals refused in the last {agreement_health.WINDOW_DAYS} days because the "
        "agreement that would cover them has ended or not begun",
        labels=["sender", "receiver"])
    for sending in found.sending:
        if sending.refused:
            refused.add_metric([sending.sender, sending.receiver or ""], sending.refused)
    removed = GaugeMetricFamily(
        "casebridge_agreement_categories_not_allowed",
        f"Referrals in the last {agreement_health.WINDOW_DAYS} days carrying a data "
        "category their agreement does not allow (removed before storing)",
        labels=["agreement", "category"])
    for (agreement, category), count in sorted(found.removed.items()):
        removed.add_metric([agreement, category], count)
    yield from (expiry, refused, removed)


@router.get("/metrics", include_in_schema=False)
def metrics(session: SessionDep, agreements: AgreementsDep) -> Response:
    """The metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StoreSnapshot(session, agreements))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
