"""Working-day calendars: weekends, public holidays, local closures, time zones, with the
instant to count from passed in (a frozen clock)."""

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.deadlines.calendars import (
    add_calendar_hours,
    add_working_days,
    builtin_calendar,
    check_calendar_file,
    load_calendars,
    working_days_between,
)
from gateway.deadlines.compute import due_day

ENGLAND = builtin_calendar("gb-eng")
LONDON = ZoneInfo("Europe/London")


def test_the_issue_example_case_transfer_received_22_march_2027_is_decided_by_21_april() -> None:
    # Good Friday (26 March) and Easter Monday (29 March) 2027 do not count.
    received = datetime(2027, 3, 22, 9, 30, tzinfo=LONDON)
    due = add_working_days(received, 20, ENGLAND)
    assert due_day(due, ENGLAND) == date(2027, 4, 21)
    assert due == datetime(2027, 4, 21, 23, 0, tzinfo=UTC)  # midnight, British Summer Time


def test_two_working_days_from_a_friday_skip_the_weekend() -> None:
    received = datetime(2027, 2, 5, 16, 0, tzinfo=UTC)  # Friday
    assert due_day(add_working_days(received, 2, ENGLAND), ENGLAND) == date(2027, 2, 9)


def test_received_on_a_saturday_the_count_starts_on_monday() -> None:
    received = datetime(2027, 2, 6, 10, 0, tzinfo=UTC)
    assert due_day(add_working_days(received, 1, ENGLAND), ENGLAND) == date(2027, 2, 8)


def test_the_august_bank_holiday_in_england_does_not_count() -> None:
    received = datetime(2027, 8, 26, 10, 0, tzinfo=UTC)  # Thursday before 30 August
    # Fri 27 (1), [Sat, Sun, Mon 30 bank holiday], Tue 31 (2), Wed 1 Sep (3)
    assert due_day(add_working_days(received, 3, ENGLAND), ENGLAND) == date(2027, 9, 1)
    assert working_days_between(received, datetime(2027, 9, 1, 12, tzinfo=UTC), ENGLAND) == 3


def test_colombian_holidays_count_in_bogota_but_not_in_england() -> None:
    colombia = builtin_calendar("co")
    # Monday 22 March 2027 is Saint Joseph's Day (observed); 25-26 March Maundy Thursday
    # and Good Friday.
    received = datetime(2027, 3, 19, 15, 0, tzinfo=ZoneInfo("America/Bogota"))  # Friday
    assert due_day(add_working_days(received, 3, colombia), colombia) == date(2027, 3, 29)
    assert due_day(add_working_days(received, 3, ENGLAND), ENGLAND) == date(2027, 3, 24)


def test_the_day_of_receipt_is_the_receivers_local_day() -> None:
    # 23:30 UTC on a Monday is still Monday in Bogota (UTC-5) and already Tuesday in
    # Addis Ababa (UTC+3): one working day later is Tuesday in one, Wednesday in the other.
    instant = datetime(2027, 2, 1, 23, 30, tzinfo=UTC)
    assert due_day(add_working_days(instant, 1, builtin_calendar("co")),
                   builtin_calendar("co")) == date(2027, 2, 2)
    assert due_day(add_working_days(instant, 1, builtin_calendar("et")),
                   builtin_calendar("et")) == date(2027, 2, 3)


def test_a_deadline_across_the_spring_clock_change_ends_at_local_midnight() -> None:
    # England moves to BST on Sunday 28 March 2027: received Thursday 25th (GMT),
    # 2 working days skip Good Friday, the weekend and Easter Monday.
    received = datetime(2027, 3, 25, 10, 0, tzinfo=UTC)
    due = add_working_days(received, 2, ENGLAND)
    assert due_day(due, ENGLAND) == date(2027, 3, 31)
    assert due == datetime(2027, 3, 31, 23, 0, tzinfo=UTC)
    # 48 calendar hours are 48 elapsed hours: 49 by the wall clock across the change.
    later = add_calendar_hours(datetime(2027, 3, 27, 10, 0, tzinfo=UTC), 48, ENGLAND)
    assert later == datetime(2027, 3, 29, 10, 0, tzinfo=UTC)
    assert later.astimezone(LONDON).hour == 11


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        add_working_days(datetime(2027, 3, 22, 9, 0), 1, ENGLAND)


def test_working_days_between_is_negative_backwards() -> None:
    monday = datetime(2027, 2, 1, 9, tzinfo=UTC)
    wednesday = datetime(2027, 2, 3, 9, tzinfo=UTC)
    assert working_days_between(monday, wednesday, ENGLAND) == 2
    assert working_days_between(wednesday, monday, ENGLAND) == -2


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_local_closure_and_a_worked_holiday_change_the_count(tmp_path: Path) -> None:
    write(tmp_path, "et-office.yaml", """\
id: et-office
based_on: et
closed:
  - {date: 2027-02-02, to: 2027-02-03, name: Office closure (fictional)}
open:
  - {date: 2027-03-02, name: Adwa Victory Day worked (fictional)}
weekend: [friday, saturday, sunday]
""")
    calendars, problems = load_calendars(tmp_path)
    assert problems == []
    office = calendars["et-office"]
    monday = datetime(2027, 2, 1, 8, tzinfo=UTC)
    assert due_day(add_working_days(monday, 1, office), office) == date(2027, 2, 4)
    assert due_day(add_working_days(monday, 2, office), office) == date(2027, 2, 8)  # no Fri
    assert office.is_working_day(date(2027, 3, 2))
    assert not builtin_calendar("et").is_working_day(date(2027, 3, 2))
    assert office.zone.key == "Africa/Addis_Ababa"


@pytest.mark.parametrize(("text", "expected"), [
    ("id: et-x\nbased_on: ethiopia\n", ":2:11: unknown-calendar: 'ethiopia' is not"),
    ("id: et-x\nbased_on: et\ntime_zone: Africa/Gambella\n", ":3:12: unknown-time-zone:"),
    ("id: et-x\nbased_on: et\nweekend: [friday, sundy]\n", ":3:19: bad-value: 'sundy' is not a "
     "day of the week (did you mean 'sunday'?)"),
    ("id: et-x\nbased_on: et\nclosed:\n  - date: 2027-02-30\n    name: x\n",
     ":4:11: bad-value: 'date' must be a date written YYYY-MM-DD"),
    ("id: et-x\nbased_on: et\nclosed:\n  - date: 2027-02-03\n", ":4:5: missing-key: an entry "
     "of 'closed' needs 'name'"),
    ("id: et-y\nbased_on: et\n", ":1:5: file-name: the file of calendar 'et-y' must be named"),
    ("id: et-x\nbased_on: et\nholidays: []\n", ":3:1: unknown-key: 'holidays' is not a key"),
    ("id: et-x\nbased_on: [et\n", ":3:1: yaml-syntax:"),
])
def test_a_bad_calendar_file_names_the_line_and_column(tmp_path: Path, text: str,
                                                       expected: str) -> None:
    calendar, problems = check_calendar_file(write(tmp_path, "et-x.yaml", text))
    assert calendar is None
    assert any(expected in str(p) for p in problems), [str(p) for p in problems]
