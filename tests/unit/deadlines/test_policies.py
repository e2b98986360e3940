"""Deadline policies: the shipped ones check clean, a bad file names file:line:column and the
rule, and the deadlines a referral gets follow the policy that fits it best."""

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway import ROOT
from gateway.cli import app
from gateway.deadlines.calendars import add_working_days, builtin_calendar, load_calendars
from gateway.deadlines.compute import deadlines_for, due_day, resume
from gateway.deadlines.policies import check_policy_file, load_policies, policy_files

CALENDARS, _ = load_calendars(ROOT / "calendars")
POLICIES, _ = load_policies(policy_files(ROOT / "deadlines"), calendar_ids=set(CALENDARS))
ENGLAND = CALENDARS["gb-eng"]
runner = CliRunner()


def example(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (ROOT / "contracts" / "examples" / "referral" / f"{name}.json").read_text())
    return document


def test_the_repositorys_policies_and_calendars_check_clean() -> None:
    result = runner.invoke(app, ["deadlines", "check"])
    assert result.exit_code == 0, result.output
    assert "5 policies" in result.output and "no problems" in result.output


def test_a_case_transfer_delivered_on_22_march_2027_is_due_for_decision_on_21_april() -> None:
    transfer = example("valid-ndelius-case-transfer")
    received = datetime(2027, 3, 22, 10, 0, tzinfo=UTC)
    found = {d.name: d for d in deadlines_for(transfer, "delivered", received, POLICIES,
                                              CALENDARS)}
    assert set(found) == {"acknowledge", "address_assessment", "transfer_decision"}
    decision = found["transfer_decision"]
    assert decision.policy_id == "probation-case-transfer-england"
    assert due_day(decision.due_at, ENGLAND) == date(2027, 4, 21)
    assert decision.escalate_at is not None
    assert due_day(decision.escalate_at, ENGLAND) == date(2027, 4, 28)  # 5 working days on
    assert due_day(found["address_assessment"].due_at, ENGLAND) == date(2027, 4, 7)
    assert due_day(found["acknowledge"].due_at, ENGLAND) == date(2027, 3, 24)
    # Nothing starts from a state the policy does not name.
    assert deadlines_for(transfer, "acknowledged", received, POLICIES, CALENDARS) == []


def test_a_temporary_move_is_due_back_by_its_return_date_and_without_one_has_no_deadline(
) -> None:
    move = example("valid-temporary-move")
    move["transfer"]["return_date"] = "2027-08-27"  # Friday before the August bank holiday
    accepted = datetime(2027, 6, 1, 9, 0, tzinfo=UTC)
    [back] = deadlines_for(move, "accepted", accepted, POLICIES, CALENDARS)
    assert (back.name, due_day(back.due_at, ENGLAND)) == ("return", date(2027, 8, 27))
    assert back.escalate_at is not None
    # Escalation two working days on: Tuesday 31st and Wednesday 1st, not the bank holiday.
    assert due_day(back.escalate_at, ENGLAND) == date(2027, 9, 1)
    del move["transfer"]["return_date"]
    assert deadlines_for(move, "accepted", accepted, POLICIES, CALENDARS) == []


def test_a_referral_to_progres_ethiopia_is_acknowledged_within_two_gambella_working_days(
) -> None:
    referral = example("valid-primero-to-progres-referral")
    referral["receiver"]["partner"] = "progres-eth"
    gambella = CALENDARS["et-gambella"]
    # Monday 8 March 2027; Eid al-Fitr (9th, national) and the office closure (10th).
    delivered = datetime(2027, 3, 8, 7, 0, tzinfo=UTC)
    acknowledge, decide = deadlines_for(referral, "delivered", delivered, POLICIES, CALENDARS)
    assert due_day(acknowledge.due_at, gambella) == date(2027, 3, 12)
    assert acknowledge.due_at == datetime(2027, 3, 12, 21, 0, tzinfo=UTC)  # midnight, UTC+3
    assert (decide.name, due_day(decide.due_at, gambella)) == ("decide", date(2027, 3, 17))


def test_the_most_specific_policy_wins_for_the_same_deadline(tmp_path: Path) -> None:
    (tmp_path / "general.yaml").write_text(
        "id: general\napplies_to: {kind: referral}\ncalendar: gb-eng\n"
        "deadlines:\n  - {name: acknowledge, state: delivered, within: {working_days: 5}}\n")
    (tmp_path / "narrow.yaml").write_text(
        "id: narrow\napplies_to: {kind: referral, receivers: [progres-eth]}\ncalendar: gb-eng\n"
        "deadlines:\n  - {name: acknowledge, state: delivered, within: {calendar_hours: 24}}\n")
    policies, problems = load_policies(policy_files(tmp_path))
    assert problems == []
    referral = {"kind": "referral", "receiver": {"partner": "progres-eth"}}
    at = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
    [chosen] = deadlines_for(referral, "delivered", at, policies, CALENDARS)
    assert (chosen.policy_id, chosen.due_at) == ("narrow", datetime(2027, 2, 2, 9, tzinfo=UTC))
    referral["receiver"]["partner"] = "primero-uga"
    [chosen] = deadlines_for(referral, "delivered", at, policies, CALENDARS)
    assert chosen.policy_id == "general"


def test_a_paused_clock_moves_the_deadline_on_by_the_working_days_it_stood_still() -> None:
    rule = next(r for p in POLICIES for r in p.rules if r.name == "transfer_decision")
    assert [rule.outcome_of(s) for s in ("acknowledged", "accepted", "challenged",
                                         "completed", "withdrawn")] == [
        "running", "running", "paused", "met", "ended"]
    received = datetime(2027, 3, 22, 10, 0, tzinfo=UTC)
    due = add_working_days(received, 20, ENGLAND)  # 21 April
    # Challenged on Thursday 1 April, the sender enforces on Tuesday 6 April: Friday 2nd,
    # Monday 5th and Tuesday 6th passed (3 working days), so the decision moves 3 on.
    moved = resume(due, datetime(2027, 4, 1, 14, tzinfo=UTC), datetime(2027, 4, 6, 11, tzinfo=UTC),
                   "working_days", ENGLAND)
    assert due_day(moved, ENGLAND) == date(2027, 4, 26)
    hours = resume(datetime(2027, 2, 3, 9, tzinfo=UTC), datetime(2027, 2, 1, 9, tzinfo=UTC),
                   datetime(2027, 2, 1, 15, tzinfo=UTC), "calendar_hours", ENGLAND)
    assert hours == datetime(2027, 2, 3, 15, tzinfo=UTC)
    assert resume(due, received, received, "working_days", builtin_calendar("gb-eng")) == due


GOOD = """\
id: bad
applies_to:
  kind: transfer
calendar: gb-eng
deadlines:
  - name: decision
    state: delivered
    within: {working_days: 20}
"""


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    state: delivered", "    state: deliverd",
     ":7:12: unknown-state: 'deliverd' is not a state (did you mean 'delivered'?)"),
    ("{working_days: 20}", "{working_days: 0}",
     ":8:28: bad-value: working_days is a whole number from 1 to 365"),
    ("{working_days: 20}", "{work_days: 20}", ":8:14: unknown-key: 'work_days' is not a key"),
    ("    within: {working_days: 20}", "    within: {working_days: 20}\n    by: services.due_date",
     ":6:5: within-or-by: a deadline needs exactly one of 'within'"),
    ("    within: {working_days: 20}", "    by: transfer.end_date",
     ":8:9: bad-value: 'transfer.end_date' is not a date a referral carries (did you mean "
     "'transfer.return_date'?)"),
    ("calendar: gb-eng", "calendar: gb-england", ":4:11: unknown-calendar: no calendar "
     "'gb-england' (did you mean 'gb-eng'?)"),
    ("  kind: transfer", "  kind: transfer\n  case_modules: [probaton]",
     ":4:18: unknown-code: 'probaton' is not one of the case_modules (did you mean "
     "'probation'?)"),
    ("  kind: transfer", "  kind: case", ":3:9: bad-value: kind is referral or transfer"),
    ("    state: delivered", "    state: completed",
     ":7:12: bad-value: 'completed' is final: no deadline can start from it"),
    ("    within: {working_days: 20}", "    within: {working_days: 20}\n"
     "    met_by: [accepted]\n    pauses_in: [accepted]",
     ":10:16: bad-value: 'accepted' is in both met_by and pauses_in"),
    ("id: bad", "id: other", ":1:5: file-name: the file of policy 'other' must be named"),
    ("deadlines:", "deadlines: [\n", ":7:3: yaml-syntax:"),
])
def test_a_bad_policy_file_names_the_line_column_and_rule(tmp_path: Path, old: str, new: str,
                                                          expected: str) -> None:
    path = tmp_path / "bad.yaml"
    assert old in GOOD
    path.write_text(GOOD.replace(old, new), encoding="utf-8")
    policy, problems = check_policy_file(path, calendar_ids=set(CALENDARS))
    assert policy is None
    assert any(expected in str(p) for p in problems), [
        str(p) for p in problems]


def test_the_good_file_checks_clean(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(GOOD)
    policy, problems = check_policy_file(tmp_path / "bad.yaml", calendar_ids=set(CALENDARS))
    assert problems == [] and policy is not None and policy.rules[0].name == "decision"


def test_deadlines_check_exits_1_and_prints_file_line_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("state: delivered", "state: deliverd"))
    result = runner.invoke(app, ["deadlines", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:7:12: unknown-state: 'deliverd' is not a state" in result.output


def test_deadlines_due_tries_a_calendar_out() -> None:
    result = runner.invoke(app, ["deadlines", "due", "gb-eng", "2027-03-22T09:00:00+00:00", "20"])
    assert result.exit_code == 0, result.output
    assert "end of Wednesday 2027-04-21 (Europe/London), 2027-04-21T23:00:00+00:00" in result.output
    naive = runner.invoke(app, ["deadlines", "due", "gb-eng", "2027-03-22T09:00:00", "20"])
    assert naive.exit_code == 2 and "naive" in naive.output


def test_without_met_by_leaving_the_state_meets_it_but_a_withdrawal_only_ends_it(
        tmp_path: Path) -> None:
    (tmp_path / "any.yaml").write_text(
        "id: any\napplies_to: {kind: referral}\ncalendar: gb-eng\n"
        "deadlines:\n  - {name: acknowledge, state: delivered, within: {working_days: 2}}\n")
    policy, problems = check_policy_file(tmp_path / "any.yaml")
    assert problems == [] and policy is not None
    [rule] = policy.rules
    assert [rule.outcome_of(s) for s in ("delivered", "acknowledged", "rejected", "withdrawn",
                                         "failed")] == [
        "running", "met", "met", "ended", "ended"]


def test_an_empty_met_by_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("    within: {working_days: 20}",
                                 "    within: {working_days: 20}\n    met_by: []"))
    policy, problems = check_policy_file(path)
    assert policy is None
    assert [str(p).split(":", 1)[1] for p in problems] == [
        "9:13: bad-value: 'met_by' lists no state: leave it out to meet the deadline by "
        "leaving the state"]
