"""The turnaround report over a month with known answers (tests/history.py), on SQLite and
PostgreSQL: the figures, each grouping, the API's JSON and CSV, its refusals, and the CLI."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from history import History, seed_history
from sqlalchemy.orm import Session, sessionmaker

from gateway.reports.turnaround import TurnaroundReport, parse_query, turnaround
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import Referral
from servers import LiveServer
from sharing import stored_referral

MARCH = datetime(2027, 3, 1, tzinfo=UTC)
NOW = datetime(2027, 4, 22, 9, 0, tzinfo=UTC)
OPS_KEY = "ops-key-for-report-tests"


@pytest.fixture(scope="module")
def sessions(isolated_database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(isolated_database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def history(sessions: sessionmaker[Session]) -> History:
    with unit_of_work(sessions) as session:
        return seed_history(session, MARCH)


def report(sessions: sessionmaker[Session], group: str) -> TurnaroundReport:
    query = parse_query(first="2027-03-01", last="2027-03-31", group=group, today=NOW.date())
    with sessions() as session:
        return turnaround(session=session, query=query, now=NOW)


def figures(row: Any) -> dict[str, Any]:
    """A row's figures, flat: counts, then (reached, median, p90) per step, then deadlines."""
    return {"referrals": row.referrals, "transfers": row.transfers,
            "acknowledge": (row.acknowledge.reached, row.acknowledge.median_hours,
                            row.acknowledge.p90_hours),
            "accept": (row.accept.reached, row.accept.median_hours, row.accept.p90_hours),
            "complete": (row.complete.reached, row.complete.median_hours,
                         row.complete.p90_hours),
            "deadlines": (row.deadlines_met, row.deadlines_missed,
                          row.within_deadline_percent, row.open_overdue)}


def by_group(result: TurnaroundReport) -> dict[tuple[str, ...], dict[str, Any]]:
    return {tuple(row.group.values()): figures(row) for row in result.groups}


def test_the_total_counts_each_referral_of_the_month_once(sessions, history) -> None:
    total = report(sessions, "partner_pair").total
    # first answers 2, 6, 12, 24, 30, 48: median (12 + 24) / 2, p90 the 6th of 6 (⌈5.4⌉)
    # accepted 4, 10, 12, 48, 72: median 12, p90 the 5th of 5; completed 48, 100, 240
    # deadlines: 4 met in time, 3 late (4/7 = 57.1 %), r5 overdue now
    assert figures(total) == {
        "referrals": 6, "transfers": 2, "acknowledge": (6, 18.0, 48.0),
        "accept": (5, 12.0, 72.0), "complete": (3, 100.0, 240.0),
        "deadlines": (4, 3, 57.1, 1)}
    assert total.group == {}


def test_by_partner_pair(sessions, history) -> None:
    result = report(sessions, "partner_pair")
    a, b, c = history.a, history.b, history.c
    assert by_group(result) == {
        (a, b): {"referrals": 6, "transfers": 0, "acknowledge": (4, 9.0, 30.0),
                 "accept": (3, 10.0, 12.0), "complete": (2, 74.0, 100.0),
                 "deadlines": (3, 2, 60.0, 1)},
        (a, c): {"referrals": 0, "transfers": 2, "acknowledge": (2, 36.0, 48.0),
                 "accept": (2, 60.0, 72.0), "complete": (1, 240.0, 240.0),
                 "deadlines": (1, 1, 50.0, 0)},
    }
    assert [tuple(row.group) for row in result.groups] == [("sender", "receiver")] * 2
    assert result.groups[0].group == {"sender": a, "receiver": b}  # the largest first


def test_by_service_type_a_referral_counts_once_per_service_it_asked_for(
        sessions, history) -> None:
    assert by_group(report(sessions, "service_type")) == {
        ("psychosocial_support",): {"referrals": 4, "transfers": 0,
                                    "acknowledge": (3, 6.0, 30.0), "accept": (2, 7.0, 10.0),
                                    "complete": (1, 48.0, 48.0), "deadlines": (2, 2, 50.0, 1)},
        ("legal_aid",): {"referrals": 2, "transfers": 0, "acknowledge": (2, 9.0, 12.0),
                         "accept": (2, 11.0, 12.0), "complete": (1, 100.0, 100.0),
                         "deadlines": (2, 0, 100.0, 0)},
        ("(none)",): {"referrals": 0, "transfers": 2, "acknowledge": (2, 36.0, 48.0),
                      "accept": (2, 60.0, 72.0), "complete": (1, 240.0, 240.0),
                      "deadlines": (1, 1, 50.0, 0)},
        ("(not recorded)",): {"referrals": 1, "transfers": 0, "acknowledge": (0, None, None),
                              "accept": (0, None, None), "complete": (0, None, None),
                              "deadlines": (0, 0, None, 0)},
    }


def test_by_area_the_receiver_and_its_unit(sessions, history) -> None:
    b, c = history.b, history.c
    result = by_group(report(sessions, "area"))
    assert set(result) == {(b, "Unit 1"), (b, "Unit 2"), (b, "(no unit)"), (c, "PDU 1")}
    assert result[(b, "Unit 1")] == {
        "referrals": 2, "transfers": 0, "acknowledge": (2, 4.0, 6.0),
        "accept": (2, 7.0, 10.0), "complete": (1, 48.0, 48.0), "deadlines": (2, 1, 66.7, 0)}
    assert result[(b, "Unit 2")]["deadlines"] == (1, 0, 100.0, 1)
    assert result[(b, "(no unit)")]["acknowledge"] == (1, 30.0, 30.0)


def test_groups_combine_and_share_their_columns(sessions, history) -> None:
    result = report(sessions, "service_type,area,partner_pair")
    assert result.group == ["partner_pair", "service_type", "area"]
    assert list(result.groups[0].group) == ["sender", "receiver", "receiver_unit",
                                            "service_type"]
    keys = by_group(result)
    a, b = history.a, history.b
    assert keys[(a, b, "Unit 1", "psychosocial_support")]["acknowledge"] == (2, 4.0, 6.0)
    assert keys[(a, b, "Unit 1", "legal_aid")]["referrals"] == 1
    assert sum(row.referrals + row.transfers for row in result.groups) == 9  # r2 twice


def test_a_submitted_referral_keeps_its_receiving_unit_and_services_for_the_report(
        settings, make_referral) -> None:
    def document(sender: str, receiver: str) -> dict[str, Any]:
        document = make_referral(sender, receiver, services=[
            {"type": "mental_health"}, {"type": "legal_aid"},
            {"type": "mental_health", "urgency": "urgent"}])
        document["receiver"]["unit"] = "N03A"
        return document

    referral_id, _, _ = stored_referral(settings, document, prefix="rep")
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        stored = session.get(Referral, referral_id)
        assert (stored.receiver_unit, stored.service_types) == (
            "N03A", ["legal_aid", "mental_health"])
    engine.dispose()


def test_an_empty_period_has_no_groups_and_a_zero_total(sessions, history) -> None:
    query = parse_query(first="2026-01-01", last="2026-01-31", group="area", today=NOW.date())
    with sessions() as session:
        empty = turnaround(session=session, query=query, now=NOW)
    assert empty.groups == []
    assert figures(empty.total)["referrals"] == 0
    assert empty.total.acknowledge.median_hours is None


# -- the API and the CLI ------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(settings: Settings, isolated_database_url: str, history: History
        ) -> Iterator[httpx.Client]:
    ops = settings.model_copy(update={"database_url": isolated_database_url,
                                      "operator_key": OPS_KEY})
    with LiveServer(ops) as server, httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {OPS_KEY}"}) as client:
        yield client


def test_the_api_answers_json_by_default(api, history) -> None:
    answer = api.get("/v1/reports/turnaround", params={
        "from": "2027-03-01", "to": "2027-03-31", "group": "partner_pair"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["from"], body["to"], body["group"]) == ("2027-03-01", "2027-03-31",
                                                         ["partner_pair"])
    assert body["total"]["acknowledge"] == {"reached": 6, "median_hours": 18.0,
                                            "p90_hours": 48.0}
    assert body["total"]["within_deadline_percent"] == 57.1
    assert [g["group"] for g in body["groups"]] == [
        {"sender": history.a, "receiver": history.b},
        {"sender": history.a, "receiver": history.c}]


def test_the_api_answers_csv_with_format_csv(api, history) -> None:
    answer = api.get("/v1/reports/turnaround", params={
        "from": "2027-03-01", "to": "2027-03-31", "group": "area", "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="turnaround-2027-03-01-2027-03-31.csv"' in answer.headers[
        "content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == [
        "receiver", "receiver_unit", "referrals", "transfers",
        "acknowledge_reached", "acknowledge_median_hours", "acknowledge_p90_hours",
        "accept_reached", "accept_median_hours", "accept_p90_hours",
        "complete_reached", "complete_median_hours", "complete_p90_hours",
        "deadlines_met", "deadlines_missed", "within_deadline_percent", "open_overdue"]
    assert len(rows) == 4
    unit1 = next(r for r in rows if r["receiver_unit"] == "Unit 1")
    assert (unit1["receiver"], unit1["acknowledge_median_hours"], unit1["acknowledge_p90_hours"],
            unit1["within_deadline_percent"]) == (history.b, "4.0", "6.0", "66.7")
    no_unit = next(r for r in rows if r["receiver_unit"] == "(no unit)")
    assert no_unit["accept_median_hours"] == "" and no_unit["accept_reached"] == "0"


@pytest.mark.parametrize(("params", "pointer", "rule"), [
    ({"from": "2027-3-1"}, "/from", "date"),
    ({"to": "yesterday"}, "/to", "date"),
    ({"from": "2027-03-31", "to": "2027-03-01"}, "/to", "after-from"),
    ({"group": "partner_pair,country"}, "/group", "enum"),
    ({"group": ""}, "/group", "enum"),
    ({"format": "xlsx"}, "/format", "enum"),
])
def test_bad_parameters_are_refused_naming_the_parameter(api, params, pointer, rule) -> None:
    answer = api.get("/v1/reports/turnaround", params=params)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"].endswith("/invalid-parameter")
    assert [(e["pointer"], e["in"], e["rule"]) for e in problem["errors"]] == [
        (pointer, "query", rule)]


def test_only_operations_may_read_the_report(api) -> None:
    url = str(api.base_url.join("/v1/reports/turnaround"))
    for headers in ({}, {"Authorization": "Bearer not-the-operator-key"}):
        refused = httpx.get(url, headers=headers)
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"


def test_the_cli_prints_the_same_report_as_json_and_csv(cli, isolated_database_url,
                                                         history) -> None:
    env = {"database_url": isolated_database_url}
    done = cli("report", "turnaround", "--from", "2027-03-01", "--to", "2027-03-31",
               "--group", "service_type", **env)
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["total"]["complete"] == {"reached": 3, "median_hours": 100.0,
                                         "p90_hours": 240.0}
    assert {g["group"]["service_type"] for g in body["groups"]} == {
        "psychosocial_support", "legal_aid", "(none)", "(not recorded)"}
    as_csv = cli("report", "turnaround", "--from", "2027-03-01", "--to", "2027-03-31",
                 "--group", "partner_pair", "--format", "csv", **env)
    assert as_csv.exit_code == 0, as_csv.output
    lines = as_csv.output.splitlines()
    assert lines[0].startswith("sender,receiver,referrals,transfers,")
    assert len(lines) == 3
    refused = cli("report", "turnaround", "--to", "2027-02-30", **env)
    assert refused.exit_code == 2
    assert "--to" in refused.output


def test_defaults_are_the_90_days_to_today_by_partner_pair() -> None:
    query = parse_query(first=None, last=None, group=None, today=date(2027, 4, 22))
    assert (query.period.first, query.period.last) == (date(2027, 1, 23), date(2027, 4, 22))
    assert query.group == ("partner_pair",)
