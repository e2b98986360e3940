"""The alert every adapter reads, and the mark it writes to find its flags again."""

from pathlib import Path
from typing import Any

import pytest

from adapters.alerts import Mark, read_alert
from deadline_alerts import make_alert
from gateway.contracts import Contracts
from gateway.errors import PermanentDeliveryError

CONTRACTS = Contracts(Path(__file__).parents[3] / "contracts")


@pytest.mark.parametrize("flag", ["overdue", "escalated", "cleared"])
def test_the_tests_alerts_keep_the_alert_contract(flag: str) -> None:
    assert CONTRACTS.validate("alert", make_alert(flag, referral_id="cbr-1")) == []


def test_the_alerts_of_one_deadline_share_a_deadline_key_and_differ_by_alert() -> None:
    shown = [read_alert(make_alert(flag, referral_id="cbr-1"))
             for flag in ("overdue", "escalated", "cleared")]
    assert len({s.mark.deadline for s in shown}) == 1
    assert len({s.mark.alert for s in shown}) == 3
    assert [s.raised for s in shown] == [True, True, False]
    others = [make_alert("overdue", referral_id="cbr-2"),
              make_alert("overdue", referral_id="cbr-1", deadline="complete"),
              make_alert("overdue", referral_id="cbr-1", state="accepted")]
    assert all(read_alert(a).mark.deadline != shown[0].mark.deadline for a in others)
    again = make_alert("overdue", referral_id="cbr-9", alert_id="alert-7")
    assert read_alert(again).mark.alert == read_alert({**again, "message": "Other"}).mark.alert


def test_a_mark_is_found_in_the_text_around_it_and_nowhere_else() -> None:
    mark = read_alert(make_alert("overdue", referral_id="cbr-1")).mark
    assert str(mark).startswith(mark.of_deadline) and len(str(mark)) == 54
    assert Mark.found_in(f"Referral overdue ({mark})") == mark
    assert Mark.found_in("Home visit due (urn:casebridge:alert:nothex)") is None
    assert Mark.found_in(None) is None


@pytest.mark.parametrize("change", [
    {"flag": "late"}, {"alert_id": ""}, {"message": None}, {"due_at": "soon"},
    {"state": 3}])
def test_a_malformed_alert_is_a_permanent_error(change: dict[str, Any]) -> None:
    with pytest.raises(PermanentDeliveryError) as refused:
        read_alert({**make_alert("overdue", referral_id="cbr-1"), **change})
    assert refused.value.partner_code == "invalid_alert"


def test_instants_are_read_in_utc() -> None:
    shown = read_alert({**make_alert("overdue", referral_id="cbr-1"),
                        "at": "2027-01-08T00:30:00+03:00"})
    assert shown.at.isoformat() == "2027-01-07T21:30:00+00:00"
