"""Dates as the gateway reckons them: by a date given, or by today in UTC, never by the
server's local calendar (a server's time zone must not change whether someone is a child)."""

from datetime import UTC, date, datetime


def today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def age_in_years(born: date, *, as_of: date) -> int:
    """Whole years of someone born on `born`, on `as_of`.

    A 29 February birthday falls on 1 March in a common year.
    """
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))
