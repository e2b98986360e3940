"""The fictional people of the test suite, and a scanner that finds them in text.

Every personal value a test or a sandbox invents is listed here (or remembered when a
test generates it), so tests can assert that none of it reaches a log line, a broker
message or the raw bytes of the store.
"""

import re
from collections.abc import Iterable
from datetime import date

from sandboxes.ndelius.seed import _PEOPLE as PROBATION_PEOPLE
from sandboxes.ndelius.seed import crn_for
from sandboxes.primero.seed import _FAMILY as PRIMERO_FAMILY
from sandboxes.primero.seed import _GIVEN as PRIMERO_GIVEN
from sandboxes.progres.seed import PEOPLE as PROGRES_PEOPLE

# The person of `make_referral` (tests/conftest.py) and of the end-to-end flows.
NAMES = {"Zawadi", "Fictionalson", "Kiden", "Testwell", "Ayen", "Sandboxdottir"}
BIRTH_DATES = {"2014-03-09", "2012-04-03", "2013-08-19"}
NAMES |= set(PRIMERO_GIVEN) | set(PRIMERO_FAMILY)
for _forename, _surname, _born, *_ in PROBATION_PEOPLE:
    NAMES |= {_forename, _surname}
    BIRTH_DATES.add(_born.isoformat())
for _key, _given, _family, _born, *_ in PROGRES_PEOPLE:
    NAMES |= {_given, _family}
    BIRTH_DATES.add(_born.isoformat() if isinstance(_born, date) else str(_born))
IDENTIFIERS = {crn_for(provider, n) for provider in ("N07", "N03")
               for n in range(1, len(PROBATION_PEOPLE) + 1)}

_generated: set[str] = set()


def remember(*values: str) -> None:
    """Add identifiers a test generated (case numbers, say) to what scans look for."""
    _generated.update(values)


def personal_values() -> set[str]:
    return NAMES | BIRTH_DATES | IDENTIFIERS | _generated


_WORDS = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|[A-Za-z]+|[0-9]{4}-[0-9]{2}-[0-9]{2}")


def find_personal(text: str, values: Iterable[str] | None = None) -> set[str]:
    """Which fictional personal values occur in `text` as whole words (or whole dates,
    also inside a timestamp). Fast enough for a whole run's logs: a set lookup per word."""
    wanted = set(values) if values is not None else personal_values()
    words = set(_WORDS.findall(text))
    words |= {part for word in words for part in re.findall(r"[A-Za-z]+|\d{4}-\d{2}-\d{2}",
                                                              word)}
    return words & wanted
