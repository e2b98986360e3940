"""The turnaround report: how long receivers take to acknowledge, accept and complete, and
how often deadlines are met, per partner pair, service type or receiving area.

The referrals counted are those submitted in the period. Their times come from their status
events and their deadline figures from the deadlines table, both reduced to one row per
referral in the database; medians and 90th percentiles are taken here over those rows.
Aggregates only: counts, hours, percentages, and the partner, unit and service codes the
rows are grouped by. See docs/reports.md for what each figure means.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Float, and_, case, cast, extract, func, null, select
from sqlalchemy.orm import Session

from gateway.errors import InvalidParameter
from gateway.lifecycle import State
from gateway.store.models import Referral, StatusEvent, TrackedDeadline

GROUPS = ("partner_pair", "service_type", "area")
# The columns each grouping adds to a row, in the order rows show them.
COLUMNS = {"partner_pair": ("sender", "receiver"), "area": ("receiver", "receiver_unit"),
           "service_type": ("service_type",)}
COLUMN_ORDER = ("sender", "receiver", "receiver_unit", "service_type")
FORMATS = ("json", "csv")
DEFAULT_DAYS = 90
NO_UNIT = "(no unit)"
NO_SERVICE = "(none)"
NOT_RECORDED = "(not recorded)"

# The receiver's first answer, whatever it was: it has seen the referral.
ANSWERS = (State.ACKNOWLEDGED, State.ACCEPTED, State.REJECTED, State.IN_PROGRESS,
           State.CHALLENGED, State.COMPLETED)
MEASURES = ("acknowledge", "accept", "complete")


@dataclass(frozen=True)
class Period:
    """Referrals submitted from the start of `first` to the end of `last` (UTC days)."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), UTC)


@dataclass(frozen=True)
class TurnaroundQuery:
    period: Period
    group: tuple[str, ...]


def group_columns(group: Iterable[str]) -> tuple[str, ...]:
    """The columns naming a row's group, e.g. (sender, receiver, service_type)."""
    wanted = {column for g in group for column in COLUMNS[g]}
    return tuple(c for c in COLUMN_ORDER if c in wanted)


def parse_query(*, first: str | None, last: str | None, group: str | None,
                today: date) -> TurnaroundQuery:
    """The report's parameters from their text, or InvalidParameter naming the one at fault.

    `first` and `last` are days (YYYY-MM-DD, both included; by default the 90 days up to
    today), `group` one or more of partner_pair, service_type, area, comma-separated (by
    default partner_pair).
    """
    end = _day("to", last) if last else today
    start = _day("from", first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if end < start:
        raise InvalidParameter("to", "after-from", f"must be on or after from ({start})")
    names = [g.strip() for g in (group if group is not None else "partner_pair").split(",")]
    unknown = [g for g in names if g not in GROUPS]
    if unknown or not any(names):
        raise InvalidParameter("group", "enum", f"{', '.join(unknown) or 'nothing'} is not "
                               f"one of {', '.join(GROUPS)} (comma-separated)")
    return TurnaroundQuery(Period(start, end), tuple(g for g in GROUPS if g in names))


def check_format(value: str | None) -> Literal["json", "csv"]:
    """json (the default) or csv, or InvalidParameter."""
    if value in (None, "", "json"):
        return "json"
    if value == "csv":
        return "csv"
    raise InvalidParameter("format", "enum", "must be json or csv")


EARLIEST, LATEST = date(1970, 1, 1), date(9999, 12, 30)  # a day after LATEST still exists


def _day(name: str, value: str) -> date:
    try:
        if len(value) == 10 and EARLIEST <= (day := date.fromisoformat(value)) <= LATEST:
            return day
    except ValueError:
        pass
    raise InvalidParameter(name, "date", "a day written YYYY-MM-DD, from 1970-01-01")


class Turnaround(BaseModel):
    """How long one step took, over the referrals that reached it."""

    reached: int = Field(description="How many referrals reached the step")
    median_hours: float | None = Field(description="Half took at most this long")
    p90_hours: float | None = Field(description="Nine in ten took at most this long")


class GroupFigures(BaseModel):
    group: dict[str, str] = Field(description="What the row stands for: sender, receiver, "
                                  "receiver_unit, service_type, as grouped")
    referrals: int
    transfers: int
    acknowledge: Turnaround = Field(description="From delivery to the receiver's first "
                                    "answer (acknowledged, accepted, rejected …)")
    accept: Turnaround = Field(description="From delivery to accepted")
    complete: Turnaround = Field(description="From delivery to completed")
    deadlines_met: int = Field(description="Deadlines met in time")
    deadlines_missed: int = Field(description="Deadlines met after they fell due")
    within_deadline_percent: float | None = Field(
        description="deadlines_met / (deadlines_met + deadlines_missed), in %")
    open_overdue: int = Field(description="Deadlines overdue now: flag raised, not yet met")


class TurnaroundReport(BaseModel):
    model_config = {"populate_by_name": True}

    first: date = Field(alias="from", description="First day of submission (UTC)")
    last: date = Field(alias="to", description="Last day of submission (UTC), included")
    group: list[str]
    generated_at: datetime
    groups: list[GroupFigures]
    total: GroupFigures = Field(description="Every referral of the period, counted once")


@dataclass
class _Tally:
    referrals: int = 0
    transfers: int = 0
    hours: tuple[list[float], ...] = field(default_factory=lambda: tuple([] for _ in MEASURES))
    met: int = 0
    missed: int = 0
    open_overdue: int = 0

    def add(self, row: Any, hours: Sequence[float | None]) -> None:
        """Count one referral (`row`, from `_per_referral`) and its hours to each step."""
        if row.kind == "transfer":
            self.transfers += 1
        else:
            self.referrals += 1
        for taken, reached in zip(self.hours, hours, strict=True):
            if reached is not None:
                taken.append(reached)
        self.met += row.met or 0
        self.missed += row.missed or 0
        self.open_overdue += row.open_overdue or 0

    def figures(self, group: dict[str, str]) -> GroupFigures:
        finished = self.met + self.missed
        return GroupFigures(
            group=group, referrals=self.referrals, transfers=self.transfers,
            **{m: Turnaround(reached=len(taken), median_hours=_round(median(taken)),
                             p90_hours=_round(p90(taken)))
               for m, taken in zip(MEASURES, self.hours, strict=True)},
            deadlines_met=self.met, deadlines_missed=self.missed,
            within_deadline_percent=round(100 * self.met / finished, 1) if finished else None,
            open_overdue=self.open_overdue)


def hours_taken(row: Any) -> tuple[float | None, ...]:
    """Hours from delivery to each step; an answer dated before the delivery (the partner's
    clock) counts as no time, never as negative."""
    return tuple(None if seconds is None else max(0.0, seconds) / 3600
                 for seconds in (row.to_acknowledge, row.to_accept, row.to_complete))


def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count)."""
    return statistics.median(values) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The 90th percentile by nearest rank: the smallest value that at least nine in ten
    values do not exceed (always one of the values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (9 * len(ordered) + 9) // 10  # ⌈0.9 n⌉, in integers
    return ordered[rank - 1]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def turnaround(*, session: Session, query: TurnaroundQuery, now: datetime) -> TurnaroundReport:
    """The report for `query`: one row per group, largest first, and the total."""
    columns = group_columns(query.group)
    tallies: dict[tuple[str, ...], _Tally] = defaultdict(_Tally)
    total = _Tally()
    dialect = session.get_bind().dialect.name
    for row in session.execute(_per_referral(query.period, dialect,
                                             services="service_type" in query.group)):
        hours = hours_taken(row)
        total.add(row, hours)
        for key in _keys(row, columns):
            tallies[key].add(row, hours)
    groups = [tally.figures(dict(zip(columns, key, strict=True)))
              for key, tally in tallies.items()]
    groups.sort(key=lambda g: (-(g.referrals + g.transfers), tuple(g.group.values())))
    return TurnaroundReport(first=query.period.first, last=query.period.last,
                            group=list(query.group), generated_at=now, groups=groups,
                            total=total.figures({}))


def _per_referral(period: Period, dialect: str, *, services: bool) -> Any:
    """One row per referral submitted in `period`: its grouping columns, the seconds from
    its first delivery to its first answer, acceptance and completion, and its deadline
    counts. Two aggregates over the period's referrals, joined on the referral; the service
    types (JSON) only when grouped by."""
    in_period = and_(Referral.created_at >= period.start, Referral.created_at < period.end)
    ev = StatusEvent

    def first(*states: State) -> Any:
        return func.min(case((ev.to_state.in_([str(s) for s in states]), ev.occurred_at)))

    times = (select(ev.referral_id.label("referral_id"),
                    first(State.DELIVERED).label("delivered"),
                    first(*ANSWERS).label("answered"),
                    first(State.ACCEPTED).label("accepted"),
                    first(State.COMPLETED).label("completed"))
             .join(Referral, Referral.id == ev.referral_id).where(in_period)
             .group_by(ev.referral_id).subquery())
    dl = TrackedDeadline
    finished = dl.met_at.is_not(None)
    counts = (select(dl.referral_id.label("referral_id"),
                     func.sum(case((and_(finished, dl.met_at <= dl.due_at), 1), else_=0))
                     .label("met"),
                     func.sum(case((and_(finished, dl.met_at > dl.due_at), 1), else_=0))
                     .label("missed"),
                     func.sum(case((and_(dl.raised_at.is_not(None), dl.met_at.is_(None),
                                         dl.cleared_at.is_(None)), 1), else_=0))
                     .label("open_overdue"))
              .join(Referral, Referral.id == dl.referral_id).where(in_period)
              .group_by(dl.referral_id).subquery())
    return (select(Referral.kind, Referral.sender_id, Referral.receiver_id,
                   Referral.receiver_unit,
                   (Referral.service_types if services else null()).label("service_types"),
                   *(_seconds(dialect, step, times.c.delivered).label(name) for step, name in (
                       (times.c.answered, "to_acknowledge"), (times.c.accepted, "to_accept"),
                       (times.c.completed, "to_complete"))),
                   counts.c.met, counts.c.missed, counts.c.open_overdue)
            .outerjoin(times, times.c.referral_id == Referral.id)
            .outerjoin(counts, counts.c.referral_id == Referral.id)
            .where(in_period))


def _seconds(dialect: str, later: Any, earlier: Any) -> Any:
    """Seconds from `earlier` to `later` (NULL if either is), computed by the database:
    SQLite keeps instants as text, which julianday() reads."""
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(extract("epoch", later - earlier), Float)


def _keys(row: Any, columns: Sequence[str]) -> Iterable[tuple[str, ...]]:
    """The groups a referral counts in: one, or one per service type it asked for."""
    # None: stored before the report existed; []: none asked (a transfer, say).
    services = [NOT_RECORDED] if row.service_types is None else (
        row.service_types or [NO_SERVICE])
    values = {"sender": [row.sender_id], "receiver": [row.receiver_id],
              "receiver_unit": [row.receiver_unit or NO_UNIT], "service_type": services}
    keys: list[tuple[str, ...]] = [()]
    for column in columns:
        keys = [key + (value,) for key in keys for value in values[column]]
    return keys


def as_csv(report: TurnaroundReport) -> str:
    """The report as CSV: a header, then one line per group (no total line)."""
    columns = group_columns(report.group)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*columns, *CSV_FIGURES])
    for row in report.groups:
        writer.writerow([*(row.group[c] for c in columns), *_figures(row)])
    return out.getvalue()


CSV_FIGURES = ("referrals", "transfers",
               *(f"{m}_{part}" for m in MEASURES for part in ("reached", "median_hours",
                                                               "p90_hours")),
               "deadlines_met", "deadlines_missed", "within_deadline_percent", "open_overdue")


def _figures(row: GroupFigures) -> list[Any]:
    cells: list[Any] = [row.referrals, row.transfers]
    for measure in (row.acknowledge, row.accept, row.complete):
        cells += [measure.reached, _blank(measure.median_hours), _blank(measure.p90_hours)]
    return [*cells, row.deadlines_met, row.deadlines_missed,
            _blank(row.within_deadline_percent), row.open_overdue]


def _blank(value: float | None) -> float | str:
    return "" if value is None else value
