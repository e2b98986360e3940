"""The report's arithmetic and parameters, without a store: median, nearest-rank 90th
percentile, the groups a referral counts in, the CSV shape, and refusals."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from gateway.errors import InvalidParameter
from gateway.reports.turnaround import (
    GroupFigures,
    Turnaround,
    TurnaroundReport,
    _keys,
    _Tally,
    as_csv,
    check_format,
    hours_taken,
    median,
    p90,
    parse_query,
)

TODAY = date(2027, 4, 22)
T0 = datetime(2027, 3, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize(("values", "middle", "ninetieth"), [
    ([], None, None),
    ([5.0], 5.0, 5.0),
    ([1.0, 3.0], 2.0, 3.0),
    ([3.0, 1.0, 2.0], 2.0, 3.0),
    # ten values: the 9th is the smallest that nine in ten do not exceed
    ([float(v) for v in range(10, 0, -1)], 5.5, 9.0),
    # eleven: ⌈9.9⌉ = the 10th
    ([float(v) for v in range(1, 12)], 6.0, 10.0),
    ([float(v) for v in range(1, 21)], 10.5, 18.0),
])
def test_median_and_nearest_rank_p90(values, middle, ninetieth) -> None:
    assert median(values) == middle
    assert p90(values) == ninetieth


def row(**fields):
    defaults = {"kind": "referral", "sender_id": "a", "receiver_id": "b", "receiver_unit": None,
                "service_types": [], "to_acknowledge": None, "to_accept": None,
                "to_complete": None, "met": None, "missed": None, "open_overdue": None}
    return SimpleNamespace(**{**defaults, **fields})


def test_a_referral_counts_once_per_service_and_unrecorded_ones_say_so() -> None:
    columns = ("sender", "service_type")
    assert _keys(row(service_types=["legal_aid", "mental_health"]), columns) == [
        ("a", "legal_aid"), ("a", "mental_health")]
    assert _keys(row(service_types=[]), columns) == [("a", "(none)")]
    assert _keys(row(service_types=None), columns) == [("a", "(not recorded)")]
    assert _keys(row(receiver_unit=None), ("receiver", "receiver_unit")) == [("b", "(no unit)")]


def test_an_answer_dated_before_the_delivery_counts_as_no_time_not_negative() -> None:
    referral = row(to_acknowledge=-3600.0, to_accept=10800.0, met=1, open_overdue=1)
    assert hours_taken(referral) == (0.0, 3.0, None)
    tally = _Tally()
    tally.add(referral, hours_taken(referral))
    tally.add(row(kind="transfer", missed=1), (None, None, None))
    figures = tally.figures({})
    assert (figures.referrals, figures.transfers) == (1, 1)
    assert (figures.acknowledge.median_hours, figures.accept.median_hours) == (0.0, 3.0)
    assert figures.complete.reached == 0 and figures.complete.p90_hours is None
    assert (figures.deadlines_met, figures.deadlines_missed, figures.within_deadline_percent,
            figures.open_overdue) == (1, 1, 50.0, 1)


@pytest.mark.parametrize(("kwargs", "name", "rule"), [
    ({"first": "01/03/2027"}, "from", "date"),
    ({"first": "2027-02-30"}, "from", "date"),
    ({"last": "2027-03-01T00:00"}, "to", "date"),
    ({"last": "9999-12-31"}, "to", "date"),  # its next day does not exist
    ({"first": "0001-01-01"}, "from", "date"),
    ({"first": "2027-04-02", "last": "2027-04-01"}, "to", "after-from"),
    ({"group": "partner"}, "group", "enum"),
    ({"group": ","}, "group", "enum"),
])
def test_bad_parameters_name_themselves(kwargs, name, rule) -> None:
    with pytest.raises(InvalidParameter) as refused:
        parse_query(**{"first": None, "last": None, "group": None, **kwargs}, today=TODAY)
    assert (refused.value.name, refused.value.rule) == (name, rule)
    assert refused.value.extensions["errors"][0]["pointer"] == f"/{name}"


def test_groups_are_read_comma_separated_in_a_fixed_order() -> None:
    query = parse_query(first="2027-03-01", last="2027-03-01", group=" area,partner_pair ",
                        today=TODAY)
    assert query.group == ("partner_pair", "area")
    assert (query.period.start, query.period.end) == (
        datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 3, 2, tzinfo=UTC))
    assert check_format(None) == "json" and check_format("csv") == "csv"
    with pytest.raises(InvalidParameter):
        check_format("CSV ")


def test_csv_has_a_header_and_one_line_per_group_with_blanks_for_no_figure() -> None:
    step = Turnaround(reached=2, median_hours=1.5, p90_hours=2.0)
    none = Turnaround(reached=0, median_hours=None, p90_hours=None)
    figures = GroupFigures(group={"receiver": "b", "receiver_unit": "Unit 1"}, referrals=2,
                           transfers=0, acknowledge=step, accept=step, complete=none,
                           deadlines_met=1, deadlines_missed=0, within_deadline_percent=100.0,
                           open_overdue=0)
    report = TurnaroundReport(first=date(2027, 3, 1), last=date(2027, 3, 31), group=["area"],
                              generated_at=T0, groups=[figures],
                              total=figures.model_copy(update={"group": {}}))
    assert as_csv(report).split("\r\n") == [
        "receiver,receiver_unit,referrals,transfers,acknowledge_reached,"
        "acknowledge_median_hours,acknowledge_p90_hours,accept_reached,accept_median_hours,"
        "accept_p90_hours,complete_reached,complete_median_hours,complete_p90_hours,"
        "deadlines_met,deadlines_missed,within_deadline_percent,open_overdue",
        "b,Unit 1,2,0,2,1.5,2.0,2,1.5,2.0,0,,,1,0,100.0,0",
        ""]
