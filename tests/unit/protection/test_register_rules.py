"""The register's period and refusal reasons, and where an agreement stands: without a store."""

from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import MalformedRequest
from gateway.protection import disclosures


def test_a_period_that_cannot_be_read_is_refused_naming_the_parameter() -> None:
    now = datetime(2026, 5, 1, tzinfo=UTC)
    assert disclosures.period("2026-01-01", None, now=now) == (
        datetime(2026, 1, 1, tzinfo=UTC), now)
    assert disclosures.period(None, None, now=now)[0] == now - timedelta(days=365)
    with pytest.raises(MalformedRequest) as bad:
        disclosures.period("last tuesday", None, now=now)
    assert bad.value.extensions["errors"][0]["pointer"] == "/since"
    with pytest.raises(MalformedRequest) as backwards:
        disclosures.period("2026-02-01", "2026-01-01", now=now)
    assert backwards.value.extensions["errors"][0]["pointer"] == "/until"


@pytest.mark.parametrize(("problem", "rules", "reason"), [
    ("consent-required", ["consent-receiver", "consent-purpose"], "no_consent"),
    ("consent-required", ["required"], "no_consent"),
    ("consent-required", ["consent-category"], "outside_consent"),
    ("consent-required", ["needed-category"], "not_enough_allowed"),
    ("no-agreement", ["agreement-parties"], "no_agreement"),
    ("no-agreement", ["agreement-service-type"], "no_agreement"),
    ("no-agreement", ["agreement-validity"], "agreement_not_valid"),
    ("child-safeguard-required", ["bia-required"], "child_safeguards"),
    ("mapping-error", [], None),
    ("validation-error", ["enum"], None),
])
def test_each_refusal_has_one_reason_in_the_register(problem, rules, reason) -> None:
    assert disclosures.refusal_reason(problem, rules) == reason


def test_an_agreement_stands_ending_from_sixty_days_before_its_last_day() -> None:
    from datetime import date

    from gateway.protection.agreement_health import term
    from gateway.protection.agreements import Agreement

    def agreement(**dates: date | None) -> Agreement:
        return Agreement(id="isp", title="", parties=frozenset({"a-1", "b-2"}),
                         purposes=frozenset({"referral"}), service_types=None,
                         categories={"referral": frozenset({"identity"})}, retention_days=1,
                         requires_bia_for_children=False, requires_child_assent=False,
                         outside_consent="remove", file="isp.yaml", content_hash="x",
                         valid_from=dates.get("valid_from"), valid_to=dates.get("valid_to"))

    today = date(2026, 6, 1)
    cases = {date(2026, 7, 31): ("ending", 60), date(2026, 8, 1): ("in_force", 61),
             date(2026, 6, 1): ("ending", 0), date(2026, 5, 31): ("ended", -1)}
    for last_day, expected in cases.items():
        found = term(agreement(valid_to=last_day), today)
        assert (found.standing, found.days_left) == expected, last_day
    assert term(agreement(), today).standing == "in_force"
    assert term(agreement(valid_from=date(2026, 6, 2)), today).standing == "not_yet"
