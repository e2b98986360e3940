"""The named transforms: what each gives, and that a failure never repeats the value."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from gateway.mapping.transforms import SPECS, ArgError, TransformFailed, build


def run(name: str, arg: Any, value: Any, scope: Any = None) -> Any:
    spec = SPECS[name]
    return build(name, spec.parse(arg))(value, scope or {}, scope or {})


@pytest.mark.parametrize(("arg", "value", "expected"), [
    (None, "2025-03-04T06:30:00.000Z", "2025-03-04"),
    (None, "2025-03-04", "2025-03-04"),
    ({"from": "DD/MM/YYYY"}, "17/03/2025", "2025-03-17"),
    ({"to": "DD/MM/YYYY"}, "2025-03-17", "17/03/2025"),
    ({"from": "YYYYMMDD", "to": "iso"}, "20250317", "2025-03-17T00:00:00"),
    ({"from": "iso", "to": "iso"}, "2025-03-04T09:30:00+00:00", "2025-03-04T09:30:00Z"),
    ({"from": "DD.MM.YYYY HH:mm", "to": "YYYY-MM-DDTHH:mm:ssZ"}, "04.03.2025 09:30",
     "2025-03-04T09:30:00Z"),
])
def test_date_reads_one_format_and_writes_another(arg: Any, value: str, expected: str) -> None:
    assert run("date", arg, value) == expected


@pytest.mark.parametrize("value", ["0999-12-31", "1000-01-01", "2025-03-10T01:00:00+03:00",
                                   "9999-12-31T23:59:59Z", "0001-01-01"])
def test_the_quick_yyyy_mm_dd_writes_what_strftime_writes(value: str) -> None:
    assert run("date", None, value) == datetime.fromisoformat(value).strftime("%Y-%m-%d")


def test_a_value_that_is_not_a_date_fails_without_repeating_it() -> None:
    with pytest.raises(TransformFailed) as caught:
        run("date", {"from": "DD/MM/YYYY"}, "Amani 2013")
    assert "Amani" not in str(caught.value) and "DD/MM/YYYY" in str(caught.value)


@pytest.mark.parametrize(("part", "expected"), [
    ("first", "Amani"), ("last", "Testcase"), ("middle", "Nyabol"),
    ("rest", "Nyabol Testcase"), ("but_last", "Amani Nyabol"),
    ("all", ["Amani", "Nyabol", "Testcase"]),
])
def test_split_takes_a_part_of_a_name(part: str, expected: Any) -> None:
    assert run("split", {"part": part}, "  Amani  Nyabol Testcase ") == expected


def test_split_of_a_single_name_has_no_last_or_middle() -> None:
    assert run("split", {"part": "last"}, "Amani") is None
    assert run("split", {"part": "middle"}, "Amani") is None
    assert run("split", {"part": "but_last"}, "Amani") == "Amani"
    assert run("split", {"separator": ",", "part": "last"}, "Testcase, Amani") == "Amani"


def test_join_skips_missing_parts() -> None:
    assert run("join", None, ["Amani", None, " ", "Testcase"]) == "Amani Testcase"
    assert run("join", ", ", ["Gambella", "Agnewak"]) == "Gambella, Agnewak"
    assert run("join", None, [None, ""]) is None


def test_age_in_whole_years_today_or_at_another_field() -> None:
    born = date.today().replace(year=date.today().year - 10).isoformat()
    assert run("age", None, born) == 10
    record = {"created_at": "2025-03-03T06:30:00Z"}
    assert run("age", {"at": "created_at"}, "2013-06-01", record) == 11
    assert run("age", {"at": "created_at"}, "2013-03-03", record) == 12
    assert run("age", {"from": "DD/MM/YYYY", "at": "created_at"}, "04/03/2007", record) == 17


def test_less_than_case_trim_and_type_changes() -> None:
    assert run("less_than", 18, 17) is True and run("less_than", 18, 18) is False
    assert run("case", "upper", "nus") == "NUS"
    assert run("case", "title", "amani testcase") == "Amani Testcase"
    assert run("trim", None, ["  a ", "b "]) == ["a", "b"]
    assert run("to_number", None, "12") == 12 and run("to_number", None, "1.5") == 1.5
    assert run("to_text", None, True) == "true" and run("to_text", None, 7) == "7"
    assert run("first", None, [None, "", "x", "y"]) == "x"
    assert run("as_list", None, "x") == ["x"] and run("as_list", None, ["x"]) == ["x"]


def test_pluck_reads_one_field_of_each_item_and_skips_items_without_it() -> None:
    actors = [{"reference": {"reference": "Organization/a"}}, {"role": {"text": "x"}},
              {"reference": {"reference": "Organization/b"}}, "not an object"]
    assert run("pluck", "reference.reference", actors) == ["Organization/a", "Organization/b"]
    assert run("pluck", "coding[0].code", [{"coding": [{"code": "c"}]}]) == ["c"]
    assert run("pluck", "code", [{"system": "s"}]) is None
    with pytest.raises(TransformFailed, match="not a list"):
        run("pluck", "code", {"code": "c"})


def test_to_number_failure_does_not_repeat_the_value() -> None:
    with pytest.raises(TransformFailed) as caught:
        run("to_number", None, "twelve-secret")
    assert "twelve-secret" not in str(caught.value)


@pytest.mark.parametrize(("name", "arg"), [
    ("trim", "both"), ("case", "shout"), ("date", "DD/MM/YYYY"), ("date", {"from": "Q"}),
    ("split", {"part": "second"}), ("less_than", True), ("join", 3), ("age", {"at": "a..b"}),
    ("pluck", None), ("pluck", "a..b"),
])
def test_bad_arguments_are_refused_when_the_file_is_loaded(name: str, arg: Any) -> None:
    with pytest.raises(ArgError):
        SPECS[name].parse(arg)


@pytest.mark.parametrize("zone", ["Etc/GMT-14", "Etc/GMT+12"])  # UTC+14 and UTC-12
def test_age_today_counts_by_the_utc_date_not_the_servers_local_one(
        zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    today = datetime.now(UTC).date()
    on_the_day = today.replace(year=today.year - 10).isoformat()
    tomorrow = today + timedelta(days=1)
    day_after = tomorrow.replace(year=tomorrow.year - 10).isoformat()
    # At any hour one of these zones is on another date than UTC: a local clock shows.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert (run("age", None, on_the_day), run("age", None, day_after)) == (10, 9)
    finally:
        monkeypatch.undo()
        time.tzset()
