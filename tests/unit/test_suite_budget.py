"""What keeps `make test` short: the hypothesis properties at half their example counts
(never under 25; a targeted run at their full counts), no plugin loaded for nothing."""

import pytest
from hypothesis import settings
from hypothesis_budget import examples

from gateway import ROOT


def test_the_ci_profile_halves_each_count_and_keeps_a_floor() -> None:
    assert [examples(n, "default") for n in (200, 150, 60, 30)] == [200, 150, 60, 30]
    assert [examples(n, "ci") for n in (200, 150, 60, 30)] == [100, 75, 30, 25]
    assert settings.get_profile("ci").max_examples == 50  # properties without a count


def test_make_test_runs_the_ci_profile() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "\nexport CASEBRIDGE_TEST_HYPOTHESIS=ci\n" in script


def test_schemathesis_pytest_plugin_is_not_loaded(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.get_plugin("schemathesis") is None
    assert pytestconfig.pluginmanager.get_plugin("hypothesispytest") is not None
