"""Directory files: every problem reported at its file:line:column, the shipped files pass."""

from pathlib import Path

import pytest

from gateway import ROOT
from gateway.deadlines.calendars import BUILTIN
from gateway.directory.files import check_directory_file, directory_files
from gateway.directory.model import Availability, Directory
from testland import CODES, TESTLAND, read_testland, write


def problems_of(tmp_path: Path, text: str, name: str = "testland.yaml") -> list[str]:
    operation, problems = check_directory_file(write(tmp_path, text, name), codes=CODES,
                                               calendar_ids=set(BUILTIN))
    assert operation is None
    return [f"{p.line}:{p.column}: {p.rule}: {p.message}" for p in problems]


def test_the_shipped_directory_files_pass_and_do_not_clash() -> None:
    operations = []
    for path in directory_files(ROOT / "directory"):
        operation, problems = check_directory_file(path, codes=CODES,
                                                   calendar_ids=set(BUILTIN) | {"et-gambella"})
        assert problems == [], problems
        operations.append(operation)
    merged = Directory.merge(operations)
    assert merged.conflicts == []
    # the demo's partners are in it, with the services the demo and the flows ask of them
    offered = {(o.partner, s.type) for o in merged.organizations.values() for s in o.services}
    assert {("progres-eth", "family_tracing_reunification"),
            ("primero-ssd", "family_tracing_reunification"),
            ("primero-ssd", "alternative_care"), ("primero-uga", "case_management"),
            ("ndelius-n03", "probation_supervision"),
            ("ndelius-n07", "probation_supervision")} <= offered


def test_a_good_file_reads_into_areas_organisations_and_services(tmp_path: Path) -> None:
    operation = read_testland(tmp_path)
    assert [a.id for a in operation.areas] == ["north", "hill", "camp-a", "lake", "south",
                                               "south-hill"]
    assert operation.areas[1].within == "north" and operation.areas[0].within is None
    one = operation.organizations[0]
    assert (one.partner, [s.id for s in one.services]) == (
        "partner-one", ["one-ftr", "one-pss", "one-shelter"])
    ftr = one.services[0]
    assert (ftr.eligibility.max_age, ftr.eligibility.profiles) == (
        17, frozenset({"unaccompanied_separated_child"}))
    assert ftr.availability.status is Availability.ACCEPTING
    assert ftr.availability.updated_at.utcoffset() is not None
    medical = operation.organizations[2].services[0]
    assert (medical.at, medical.hours.opens, medical.calendar) == (
        ("clinic-three-camp",), "08:00", "et")


def test_each_problem_is_reported_at_its_line_and_column(tmp_path: Path) -> None:
    broken = (TESTLAND
              .replace("type: family_tracing_reunification\n        name: Tracing",
                       "type: family_tracing\n        name: Tracing")
              .replace("{id: lake, name: Lake district, level: admin2, within: north",
                       "{id: lake, name: Lake district, level: admin2, within: nort")
              .replace("{max_age: 17, profiles: [unaccompanied_separated_child]}",
                       "{min_age: 12, max_age: 10, profiles: [child]}")
              .replace('name: Counselling\n        areas: [hill]\n        availability: '
                       '{status: waitlist, updated_at: "2026-11-01T09:00:00+00:00"}',
                       'name: Counselling\n        areas: [hil]\n        availability: '
                       '{status: waitlist, updated_at: "2026-11-01 09:00"}'))
    found = problems_of(tmp_path, broken)
    assert found == [
        "10:60: unknown-area: no area 'nort' above this one (did you mean 'north'?): list an "
        "area after the area it lies within",
        "21:15: unknown-code: 'family_tracing' is not a type (did you mean "
        "'family_tracing_reunification'?) (the codes are in contracts/codes/)",
        "24:45: bad-value: max_age is below min_age",
        "24:60: unknown-code: 'child' is not a code of profile",
        "29:17: unknown-area: no area 'hil' in this file (did you mean 'hill'?)",
        "30:54: bad-value: updated_at: a date and time with its offset, e.g. "
        "2026-11-20T09:00:00+03:00",
    ]


def test_ids_names_levels_and_calendars_are_checked(tmp_path: Path) -> None:
    broken = (TESTLAND
              .replace("id: testland", "id: elsewhere")
              .replace("calendar: et\nareas", "calendar: et-nowhere\nareas")
              .replace("{id: camp-a, name: Camp A, level: settlement, within: hill}",
                       "{id: camp-a, name: Camp A, level: admin1, within: hill}")
              .replace("id: two-ftr", "id: one-ftr")
              .replace("at: [clinic-three-camp]", "at: [clinic-elsewhere]"))
    found = problems_of(tmp_path, broken)
    assert "1:5: file-name: the directory file 'elsewhere' must be named elsewhere.yaml" in found
    assert any(p.startswith("5:11: unknown-calendar: no calendar 'et-nowhere'") for p in found)
    assert "9:39: bad-value: a admin1 cannot lie within a admin2" in found
    assert "41:13: duplicate-id: a second service 'one-ftr'" in found
    assert "69:14: unknown-location: no location 'clinic-elsewhere' of this organization " \
           "(did you mean 'clinic-three-camp'?)" in found


@pytest.mark.parametrize("text, expected", [
    ("id: x\n", "1:5: bad-value: the id of the directory file: lower-case letters, digits and "
                "dashes, 2 to 63 characters"),
    ("- a list\n", "1:1: bad-value: a directory file file holds one mapping (id, country, "
                   "areas, organizations)"),
    ("id: testland\ntitle: T\ncountry: Testland\norganizations: []\n",
     "3:10: bad-value: 'Testland' is not a three-letter ISO country code (e.g. ETH)"),
    ("id: testland\ntitle: T\ncountry: ZZA\norganizations: []\nowner: me\n",
     "5:1: unknown-key: 'owner' is not a key of a directory file"),
])
def test_a_malformed_file_is_refused_with_the_reason(tmp_path: Path, text: str,
                                                     expected: str) -> None:
    assert expected in problems_of(tmp_path, text)
