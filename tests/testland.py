"""A small fictional directory (Testland) written as IM officers write directory files."""

from pathlib import Path

from gateway.contracts import Contracts
from gateway.directory.files import check_directory_file
from gateway.directory.model import Directory, Operation
from gateway.directory.registry import code_lists

CONTRACTS = Contracts(Path(__file__).resolve().parents[1] / "contracts")
CODES = code_lists(CONTRACTS)

TESTLAND = """\
id: testland
title: Testland (fictional)
country: ZZA
country_name: Testland
calendar: et
areas:
  - {id: north, name: North region, level: admin1, codes: [ZZ01], aliases: [North]}
  - {id: hill, name: Hill district, level: admin2, within: north, aliases: [Hill]}
  - {id: camp-a, name: Camp A, level: settlement, within: hill}
  - {id: lake, name: Lake district, level: admin2, within: north, aliases: [Lake]}
  - {id: south, name: South region, level: admin1, aliases: [South]}
  - {id: south-hill, name: Hill district, level: admin2, within: south}
organizations:
  - id: agency-one
    name: Agency One
    description: Child protection.
    partner: partner-one
    contact: {team: Intake team, email: intake@one.example.org}
    services:
      - id: one-ftr
        type: family_tracing_reunification
        name: Tracing
        areas: [north]
        eligibility: {max_age: 17, profiles: [unaccompanied_separated_child]}
        availability: {status: accepting, updated_at: "2026-11-01T09:00:00+00:00"}
      - id: one-pss
        type: psychosocial_support
        name: Counselling
        areas: [hill]
        availability: {status: waitlist, updated_at: "2026-11-01T09:00:00+00:00"}
      - id: one-shelter
        type: safe_shelter
        name: Shelter by the lake
        areas: [lake]
        availability: {status: suspended, updated_at: "2026-11-02T09:00:00+00:00"}
  - id: agency-two
    name: Agency Two
    description: Tracing and health.
    partner: partner-two
    services:
      - id: two-ftr
        type: family_tracing_reunification
        name: Hill tracing
        areas: [hill]
        eligibility: {min_age: 0, max_age: 17}
        availability: {status: accepting, updated_at: "2026-11-01T09:00:00+00:00"}
      - id: two-cmr
        type: clinical_management_of_rape
        name: Clinical care for survivors
        areas: [zza]
        eligibility: {sex: [female], profiles: [gbv_survivor]}
        availability: {status: accepting, updated_at: "2026-11-01T09:00:00+00:00"}
      - id: two-pss-south
        type: psychosocial_support
        name: Southern counselling
        areas: [south]
        availability: {status: accepting, updated_at: "2026-11-01T09:00:00+00:00"}
  - id: clinic-three
    name: Clinic Three
    description: Reached by phone.
    contact: {team: Duty nurse, phone: "+000 000"}
    locations:
      - {id: clinic-three-camp, name: Camp clinic, area: camp-a, address: "Row 4, Camp A"}
    services:
      - id: three-medical
        type: medical_care
        name: Adult clinic
        areas: [camp-a]
        at: [clinic-three-camp]
        eligibility: {min_age: 18}
        calendar: et
        hours: {opens: "08:00", closes: "16:00"}
        availability: {status: accepting, updated_at: "2026-11-01T09:00:00+00:00"}
      - id: three-shelter
        type: safe_shelter
        name: Northern shelter
        areas: [north]
        availability: {status: waitlist, updated_at: "2026-11-01T09:00:00+00:00"}
"""


def write(folder: Path, text: str = TESTLAND, name: str = "testland.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def read_testland(folder: Path) -> Operation:
    """Testland, read through the same check as every directory file."""
    operation, problems = check_directory_file(write(folder), codes=CODES)
    assert problems == [] and operation is not None
    return operation


def directory(folder: Path) -> Directory:
    return Directory.merge([read_testland(folder)])
