"""Who is a child: `subject.is_minor`, worked out in one place, before the consent gate.

No child may be missed because a sender recorded an age instead of a date of birth, or
nothing at all. A person is a child (is_minor true) when any of these says so:
- the sender says `is_minor: true`;
- the date of birth gives an age under 18 on the referral date (a birth date known only
  to the year counts from the last day of that year);
- the age (`age` {years, as_of}), aged forward from its as-of date, may still be under 18
  on the referral date (counted from the youngest the person can be);
- nothing says either way (no is_minor, birth date or age) and the case is a
  child-protection case.
An `is_minor: false` contradicted by a birth date or age under 18 never lowers
protection: the person is treated as a child, and the contradiction is returned (by
pointer) so that it is logged and audited. Evidence of an adult never turns a sender's
`is_minor: true` into false.

The referral date is `requested_at` as a date where the sender made it (its own UTC
offset); without one, the day before the gateway's UTC date, the earliest "today" may be
anywhere, so that a birthday never comes early.
"""

from datetime import date, datetime, timedelta
from typing import Any

from gateway.dates import age_in_years

ADULT_AGE = 18
CHILD_MODULES = frozenset({"child_protection"})


def referral_date(document: dict[str, Any], *, today: date) -> date:
    """The date the referral was made, where it was made; see the module docstring."""
    requested = document.get("requested_at")
    if isinstance(requested, str):
        try:
            moment = datetime.fromisoformat(requested)
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment.date()
    return today - timedelta(days=1)


def establish_minor(document: dict[str, Any], *, today: date
                    ) -> tuple[dict[str, Any], list[str]]:
    """The document with `subject.is_minor` set where anything tells, and the pointers of
    the fields that contradicted an explicit `is_minor: false` (empty when none did)."""
    subject = document.get("subject")
    if not isinstance(subject, dict):
        return document, []
    on = referral_date(document, today=today)
    evidence = [youngest_age_from_birth_date(subject, on), youngest_age_from_age(subject, on)]
    child_by = [p for p, age in zip(("/subject/birth_date", "/subject/age"), evidence,
                                    strict=True) if age is not None and age < ADULT_AGE]
    said = subject.get("is_minor")
    contradicted: list[str] = []
    if said is True:
        minor: bool | None = True
    elif child_by:
        minor = True
        if said is False:
            contradicted = ["/subject/is_minor", *child_by]
    elif said is False or any(age is not None for age in evidence):
        minor = False
    else:
        module = (document.get("case") or {}).get("module") if isinstance(
            document.get("case"), dict) else None
        minor = True if module in CHILD_MODULES else None
    if minor is None or said is minor:
        return document, contradicted
    return {**document, "subject": {**subject, "is_minor": minor}}, contradicted


def youngest_age_from_birth_date(subject: dict[str, Any], on: date) -> int | None:
    """Whole years on `on` by the date of birth, counting a year-only date from 31 December;
    None without a readable date of birth (a malformed one is the contract's business)."""
    born = _date(subject.get("birth_date"))
    if born is None:
        return None
    if subject.get("birth_date_precision") == "year":
        born = date(born.year, 12, 31)
    return age_in_years(born, as_of=on)


def youngest_age_from_age(subject: dict[str, Any], on: date) -> int | None:
    """The youngest the person can be on `on`, being `age.years` on `age.as_of`."""
    age = subject.get("age")
    if not isinstance(age, dict):
        return None
    years, as_of = age.get("years"), _date(age.get("as_of"))
    if not isinstance(years, int) or isinstance(years, bool) or as_of is None:
        return None
    # The latest birth date consistent with the age: a birthday on the as-of date itself.
    try:
        born = as_of.replace(year=as_of.year - years)
    except ValueError:  # 29 February in a year that has none, or before year 1
        if as_of.year - years < 1:
            return None
        born = date(as_of.year - years, 2, 28)
    return age_in_years(born, as_of=on)


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None
