"""Working-day calendars: which days a receiving office works, in which time zone.

A calendar is a country's (or jurisdiction's) weekend and public holidays from the
`holidays` package, plus the closures and openings an office adds in a YAML file of the
`calendars/` folder (an office closure, Eid on the date the authority announced). Deadlines
are counted in the receiver's calendar and time zone and kept as UTC instants. Every
function here is pure: the instant to count from is passed in, never read from a clock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from ruamel.yaml.comments import CommentedMap

from gateway.yamlpos import (
    Node,
    Problem,
    Problems,
    display_path,
    read_top_mapping,
    suggest,
)

CALENDAR_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# A search for the next working day gives up after this many days: a calendar whose every
# day is closed is a mistake in a file, not a reason to loop for ever.
LONGEST_CLOSURE_DAYS = 366


@dataclass(frozen=True)
class Builtin:
    """A calendar CaseBridge knows without a file: a `holidays` country and its time zone."""

    country: str  # ISO 3166-1 alpha-2, as the holidays package names it
    subdivision: str | None
    time_zone: str
    title: str


BUILTIN: dict[str, Builtin] = {
    # nDelius: England and Wales probation regions count England's bank holidays.
    "gb-eng": Builtin("GB", "ENG", "Europe/London", "England (bank holidays)"),
    "gb-wls": Builtin("GB", "WLS", "Europe/London", "Wales (bank holidays)"),
    "co": Builtin("CO", None, "America/Bogota", "Colombia"),
    "ec": Builtin("EC", None, "America/Guayaquil", "Ecuador"),
    "et": Builtin("ET", None, "Africa/Addis_Ababa", "Ethiopia"),
    "ke": Builtin("KE", None, "Africa/Nairobi", "Kenya"),
    "ug": Builtin("UG", None, "Africa/Kampala", "Uganda"),
    "ss": Builtin("SS", None, "Africa/Juba", "South Sudan"),
}


@dataclass(frozen=True)
class Calendar:
    """The working days of one receiving office: weekend, public holidays, local changes."""

    id: str
    title: str
    country: str
    subdivision: str | None
    zone: ZoneInfo
    weekend: frozenset[int]  # date.weekday() numbers: Monday 0 … Sunday 6
    closed: frozenset[date] = frozenset()  # local closures added to the public holidays
    open: frozenset[date] = frozenset()  # public holidays this office works
    file: str | None = None
    content_hash: str = ""  # of the file it was read from ("" for a built-in calendar)
    _public: Any = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        # The holidays object fills in a year the first time a day of it is asked for.
        object.__setattr__(self, "_public", holidays.country_holidays(
            self.country, subdiv=self.subdivision))

    def is_working_day(self, day: date) -> bool:
        """Whether the office works on `day` (a date in its own time zone)."""
        if day in self.open:
            return True
        return not (day.weekday() in self.weekend or day in self.closed or day in self._public)

    def holiday_name(self, day: date) -> str | None:
        """The public holiday on `day`, if any (for people reading a timeline)."""
        name = self._public.get(day)
        return str(name) if name is not None else None

    def local_date(self, instant: datetime) -> date:
        """The date at the office when `instant` happens."""
        return _aware(instant).astimezone(self.zone).date()

    def end_of_day(self, day: date) -> datetime:
        """The UTC instant at which `day` ends at the office (its next midnight, local)."""
        return datetime.combine(day + timedelta(days=1), time(), self.zone).astimezone(UTC)


def builtin_calendar(calendar_id: str) -> Calendar:
    """A calendar CaseBridge knows without a file (e.g. `gb-eng`, `co`, `et`)."""
    known = BUILTIN[calendar_id]
    weekend = holidays.country_holidays(known.country, subdiv=known.subdivision).weekend
    return Calendar(id=calendar_id, title=known.title, country=known.country,
                    subdivision=known.subdivision, zone=ZoneInfo(known.time_zone),
                    weekend=frozenset(weekend))


# ---------------------------------------------------------------------------- counting


def add_working_days(start: datetime, days: int, calendar: Calendar) -> datetime:
    """The end of the `days`-th working day after the day `start` falls on, as UTC.

    The day of receipt does not count (whatever its hour, and whether or not it is a working
    day): received on Monday, 2 working days are due by the end of Wednesday.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    day = calendar.local_date(start)
    for _ in range(days):
        day = next_working_day(day, calendar)
    return calendar.end_of_day(day)


def add_calendar_hours(start: datetime, hours: float, calendar: Calendar) -> datetime:
    """`hours` of elapsed time after `start`, as UTC: nights, weekends and holidays count.

    A clock change does not: 48 hours across the spring change end at 49 hours by the wall
    clock. `calendar` is taken so that every unit is counted the same way.
    """
    del calendar
    return _aware(start).astimezone(UTC) + timedelta(hours=hours)


def next_working_day(day: date, calendar: Calendar) -> date:
    """The first working day after `day`."""
    for step in range(1, LONGEST_CLOSURE_DAYS + 1):
        candidate = day + timedelta(days=step)
        if calendar.is_working_day(candidate):
            return candidate
    raise ValueError(f"calendar {calendar.id} has no working day in the year after {day}")


def working_days_between(start: datetime, end: datetime, calendar: Calendar) -> int:
    """Working days after the day of `start` up to and including the day of `end`.

    So received Monday and answered Wednesday is 2; negative when `end` is before `start`.
    """
    first, last = calendar.local_date(start), calendar.local_date(end)
    if last < first:
        return -working_days_between(end, start, calendar)
    return sum(1 for n in range(1, (last - first).days + 1)
               if calendar.is_working_day(first + timedelta(days=n)))


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("a naive datetime: pass an instant with its time zone")
    return instant


# ---------------------------------------------------------------------------- files

CALENDAR_KEYS = ("id", "title", "based_on", "time_zone", "weekend", "closed", "open")
DAY_KEYS = ("date", "to", "name")


def check_calendar_file(path: Path) -> tuple[Calendar | None, list[Problem]]:
    """The calendar in the file at `path`, or None and every problem found in it."""
    file = display_path(path)
    problems = Problems(file)
    raw, node = read_top_mapping(path, problems, "a calendar", "id, based_on, …")
    if node is None:
        return None, list(problems)
    node.check_keys(CALENDAR_KEYS, required=("id", "based_on"))
    calendar_id = node.text("id")
    if calendar_id is not None:
        if not CALENDAR_ID.fullmatch(calendar_id):
            problems.add(node.value_pos("id"), "bad-value",
                         "id: lower-case letters, digits and dashes, 2 to 63 characters")
        elif path.name != f"{calendar_id}.yaml":
            problems.add(node.value_pos("id"), "file-name",
                         f"the file of calendar '{calendar_id}' must be named {calendar_id}.yaml")
        elif calendar_id in BUILTIN:
            problems.add(node.value_pos("id"), "duplicate-id",
                         f"'{calendar_id}' is a built-in calendar: give yours its own id "
                         f"and base it on {calendar_id}")
    base = node.text("based_on")
    if base is not None and base not in BUILTIN:
        problems.add(node.value_pos("based_on"), "unknown-calendar",
                     f"'{base}' is not a built-in calendar{suggest(base, BUILTIN)}; "
                     f"choose one of {', '.join(BUILTIN)}")
        base = None
    zone = _zone(node, base)
    weekend = _weekend(node)
    closed, opened = _days(node, "closed"), _days(node, "open")
    if problems or calendar_id is None or base is None or zone is None:
        return None, list(problems)
    known = BUILTIN[base]
    default_weekend = holidays.country_holidays(known.country, subdiv=known.subdivision).weekend
    return Calendar(id=calendar_id, title=node.text("title") or known.title,
                    country=known.country, subdivision=known.subdivision, zone=zone,
                    weekend=frozenset(default_weekend if weekend is None else weekend),
                    closed=closed, open=opened, file=file,
                    content_hash="sha256:" + hashlib.sha256(raw).hexdigest()), []


def _zone(node: Node, base: str | None) -> ZoneInfo | None:
    name = node.text("time_zone") if "time_zone" in node else None
    if name is None:
        return ZoneInfo(BUILTIN[base].time_zone) if base is not None else None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        node.problems.add(node.value_pos("time_zone"), "unknown-time-zone",
                          f"'{name}' is not a time zone name (e.g. Africa/Addis_Ababa)")
        return None


def _weekend(node: Node) -> set[int] | None:
    if "weekend" not in node:
        return None
    days: set[int] = set()
    for pos, item in node.items("weekend"):
        if isinstance(item, str) and item.lower() in WEEKDAYS:
            days.add(WEEKDAYS.index(item.lower()))
        else:
            node.problems.add(pos, "bad-value", f"'{item}' is not a day of the week"
                              f"{suggest(str(item).lower(), WEEKDAYS)}")
    return days


def _days(node: Node, key: str) -> frozenset[date]:
    """The dates listed under `key`: each `{date, to?, name}`, `to` closing a range."""
    if key not in node:
        return frozenset()
    found: set[date] = set()
    for pos, item in node.items(key):
        if not isinstance(item, CommentedMap):
            node.problems.add(pos, "bad-value", f"each entry of '{key}' is a mapping: "
                              "date, name (and to, for several days)")
            continue
        entry = Node(item, node.problems, f"an entry of '{key}'")
        entry.check_keys(DAY_KEYS, required=("date", "name"))
        entry.text("name")
        first, last = _date(entry, "date"), _date(entry, "to")
        if first is None:
            continue
        if last is not None and last < first:
            node.problems.add(entry.value_pos("to"), "bad-value", "'to' is before 'date'")
            continue
        found.update(first + timedelta(days=n) for n in range(((last or first) - first).days + 1))
    return frozenset(found)


def _date(node: Node, key: str) -> date | None:
    if key not in node:
        return None
    value = node.get(key)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        node.problems.add(node.value_pos(key), "bad-value",
                          f"'{key}' must be a date written YYYY-MM-DD")
        return None


def load_calendars(folder: Path | None) -> tuple[dict[str, Calendar], list[Problem]]:
    """The built-in calendars and the good ones of `folder`, and the problems of the rest."""
    calendars = {calendar_id: builtin_calendar(calendar_id) for calendar_id in BUILTIN}
    problems: list[Problem] = []
    for path in calendar_files(folder):
        calendar, found = check_calendar_file(path)
        problems += found
        if calendar is not None:
            calendars[calendar.id] = calendar
    return calendars, problems


def calendar_files(folder: Path | None) -> list[Path]:
    """The calendar files directly in `folder` (none when there is no folder)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.yaml") if p.is_file())
