"""The register's period: ISO dates or times, UTC by default, refused naming the parameter."""

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
