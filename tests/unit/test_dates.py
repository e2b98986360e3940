"""Age in whole years, as of a given date."""

from datetime import date

import pytest

from gateway.dates import age_in_years


@pytest.mark.parametrize(("born", "as_of", "years"), [
    (date(2008, 12, 7), date(2026, 12, 7), 18),   # the birthday itself counts
    (date(2008, 12, 8), date(2026, 12, 7), 17),   # the day before it does not
    (date(2008, 2, 29), date(2026, 2, 28), 17),   # a leap-day birthday, in a common year…
    (date(2008, 2, 29), date(2026, 3, 1), 18),    # …falls on 1 March
    (date(2008, 2, 29), date(2028, 2, 29), 20),
    (date(2026, 12, 7), date(2026, 12, 7), 0),
])
def test_age_counts_whole_years_on_the_date_given(born: date, as_of: date, years: int) -> None:
    assert age_in_years(born, as_of=as_of) == years
