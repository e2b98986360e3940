"""How many examples a hypothesis property tries, by profile.

Profile "default" (a targeted run): each property's full count. Profile "ci", which
`make test` runs (CASEBRIDGE_TEST_HYPOTHESIS=ci): half of each count, never under 25.
Half still draws every sampled value of each property several times over (the largest
sampled set is a mapping's rules), and a failure hypothesis finds is saved in
.hypothesis/ and replayed first on the next run, so a property is not made weaker, only
slower to find a rare case: the default profile is for work on the property itself.
"""

import os

from hypothesis import settings

CI_SHARE = 0.5
MIN_EXAMPLES = 25
settings.register_profile("ci", max_examples=round(100 * CI_SHARE))


def load_profile() -> None:
    """Load the profile CASEBRIDGE_TEST_HYPOTHESIS names (the conftest does, before any
    test module is imported)."""
    settings.load_profile(os.environ.get("CASEBRIDGE_TEST_HYPOTHESIS", "default"))


def examples(full: int, profile: str | None = None) -> int:
    """The example count of a property whose full count is `full`, under `profile` (by
    default the one loaded)."""
    chosen = settings.get_profile(profile) if profile else settings.default
    share = chosen.max_examples / settings.get_profile("default").max_examples
    return full if share >= 1 else max(MIN_EXAMPLES, round(full * share))
