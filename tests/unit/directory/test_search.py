"""Matching services to a need: eligibility, areas across admin levels, postcodes, ranking,
pathways, and availability updates taking effect."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.directory.files import check_directory_file
from gateway.directory.model import (
    Availability,
    AvailabilityStatement,
    Directory,
    Eligibility,
    outward_code,
)
from gateway.directory.search import AreaMatch, Need, pathway, search
from testland import CODES, CONTRACTS, TESTLAND, directory, read_testland, write


@pytest.fixture
def land(tmp_path: Path) -> Directory:
    return directory(tmp_path)


def ids(matches: list) -> list[str]:
    return [m.service.id for m in matches]


# -- eligibility ----------------------------------------------------------------------------

@pytest.mark.parametrize("age, admitted", [(None, True), (0, True), (11, True), (12, True),
                                           (13, False), (130, False)])
def test_age_bounds_are_inclusive(age: int | None, admitted: bool) -> None:
    rules = Eligibility(min_age=None, max_age=12)
    assert (age is None or rules.admits_age(age)) is admitted
    assert Eligibility(min_age=12).admits_age(12) and not Eligibility(min_age=12).admits_age(11)


def test_a_child_finds_tracing_and_an_adult_does_not(land: Directory) -> None:
    child = search(land, Need(service_type="family_tracing_reunification", age=17))
    adult = search(land, Need(service_type="family_tracing_reunification", age=18))
    assert set(ids(child)) == {"one-ftr", "two-ftr"}
    assert ids(adult) == []


def test_sex_and_profile_restrictions_admit_only_those_listed(land: Directory) -> None:
    wanted = Need(service_type="clinical_management_of_rape")
    assert ids(search(land, Need(**{**vars(wanted), "sex": "female",
                                    "profile": "gbv_survivor"}))) == ["two-cmr"]
    assert ids(search(land, Need(**{**vars(wanted), "sex": "male"}))) == []
    assert ids(search(land, Need(**{**vars(wanted), "profile": "child_at_risk"}))) == []
    # a service that lists no profile serves every profile
    assert "two-pss-south" in ids(search(land, Need(profile="lgbtiq")))


# -- areas ----------------------------------------------------------------------------------

def test_a_service_of_a_wider_area_covers_the_places_within_it(land: Directory) -> None:
    camp = land.areas["camp-a"]
    found = search(land, Need(service_type="family_tracing_reunification", area=camp))
    # Hill tracing serves the district the camp lies in; Tracing the whole region
    assert [(m.service.id, m.area_match, m.area_distance) for m in found] == [
        ("two-ftr", AreaMatch.WIDER, 1), ("one-ftr", AreaMatch.WIDER, 2)]
    assert land.contains("north", "camp-a") and not land.contains("camp-a", "north")
    assert [a.id for a in land.lineage("camp-a")] == ["camp-a", "hill", "north", "zza"]


def test_a_service_of_part_of_the_area_comes_after_those_covering_it(land: Directory) -> None:
    found = search(land, Need(service_type="family_tracing_reunification",
                              area=land.areas["north"]))
    assert [(m.service.id, m.area_match) for m in found] == [
        ("one-ftr", AreaMatch.SAME), ("two-ftr", AreaMatch.PART)]


def test_services_of_other_areas_are_not_listed(land: Directory) -> None:
    found = search(land, Need(service_type="psychosocial_support", area=land.areas["south"]))
    assert ids(found) == ["two-pss-south"]


def test_a_country_wide_service_covers_every_area(land: Directory) -> None:
    found = search(land, Need(service_type="clinical_management_of_rape",
                              area=land.areas["lake"]))
    assert [(m.service.id, m.area_match) for m in found] == [("two-cmr", AreaMatch.WIDER)]


def test_place_names_resolve_to_the_most_precise_area_across_levels(land: Directory) -> None:
    assert land.resolve(["North", "Hill district", "Camp A"]).id == "camp-a"
    assert land.resolve(["ZZ01"]).id == "north"  # a p-code
    # a name the directory does not know is passed over
    assert land.resolve(["North", "Unknown county", "Camp A"]).id == "camp-a"
    # "Hill district" is the name of two areas: within North it is the one there
    assert land.resolve(["north", "hill district"]).id == "hill"
    assert land.resolve(["Hill district"]) is None
    assert land.resolve(["Atlantis"]) is None


def test_postcodes_find_the_district_before_the_postcode_area(tmp_path: Path) -> None:
    text = TESTLAND.replace("aliases: [Lake]}", "aliases: [Lake], postcodes: [CF10, CF11]}") \
        .replace("aliases: [South]}", "aliases: [South], postcodes: [CF]}")
    operation, problems = check_directory_file(write(tmp_path, text), codes=CODES)
    assert problems == []
    land = Directory.merge([operation])
    assert land.by_postcode("cf10 1aa").id == "lake"
    assert land.by_postcode("CF11").id == "lake"
    assert land.by_postcode("CF24 3AB").id == "south"  # only the postcode area lists it
    assert land.by_postcode("SA1 1AA") is None
    assert (outward_code("CF10 1AA"), outward_code("cf101aa"), outward_code("NP"),
            outward_code("not a postcode")) == ("CF10", "CF10", "NP", "")


# -- ranking and availability ---------------------------------------------------------------

def test_suspended_services_come_last_and_accepting_before_waitlist(land: Directory) -> None:
    shelters = search(land, Need(service_type="safe_shelter", area=land.areas["lake"]))
    # the lake shelter is the same area but suspended; the northern one has a waiting list
    assert [(m.service.id, m.service.availability.status) for m in shelters] == [
        ("three-shelter", Availability.WAITLIST), ("one-shelter", Availability.SUSPENDED)]
    hill = search(land, Need(area=land.areas["hill"], service_type="psychosocial_support"))
    assert ids(hill) == ["one-pss"]


def test_a_newer_availability_update_takes_effect_and_an_older_one_does_not(
        land: Directory) -> None:
    newer = AvailabilityStatement(Availability.ACCEPTING,
                                  datetime(2026, 12, 1, tzinfo=UTC), source="organisation")
    older = AvailabilityStatement(Availability.SUSPENDED,
                                  datetime(2026, 10, 1, tzinfo=UTC), source="organisation")
    updated = land.with_availability({"one-shelter": newer, "one-ftr": older})
    assert updated.services["one-shelter"].availability == newer
    assert updated.services["one-ftr"].availability.status is Availability.ACCEPTING
    assert updated.organizations["agency-one"].services[2].availability == newer
    shelters = search(updated, Need(service_type="safe_shelter", area=updated.areas["lake"]))
    assert ids(shelters) == ["one-shelter", "three-shelter"]
    assert land.services["one-shelter"].availability.status is Availability.SUSPENDED


def test_a_file_repeating_an_id_of_another_file_is_left_out(tmp_path: Path) -> None:
    first = replace(read_testland(tmp_path), file="directory/a.yaml")
    second = replace(first, id="other", file="directory/b.yaml")
    merged = Directory.merge([second, first])
    assert [o.file for o in merged.operations] == ["directory/a.yaml"]
    assert [(c.file, c.kind, c.id, c.other_file) for c in merged.conflicts] == [
        ("directory/b.yaml", "area", "north", "directory/a.yaml")]


# -- pathways -------------------------------------------------------------------------------

def test_the_pathway_of_an_area_has_organisation_rows_and_service_columns(
        land: Directory) -> None:
    drawn = pathway(land, area=land.areas["hill"], profile="gbv_survivor",
                    type_order=CONTRACTS.codes("service-type"))
    assert [r.organization.id for r in drawn.rows] == ["agency-one", "agency-two",
                                                      "clinic-three"]
    # columns in the code list's order; Tracing (for separated children) is left out, Hill
    # tracing (for any child) is in
    assert drawn.service_types == ["psychosocial_support", "medical_care",
                                   "clinical_management_of_rape", "safe_shelter",
                                   "family_tracing_reunification"]
    cells = {r.organization.id: {t: [m.service.id for m in ms] for t, ms in r.cells.items()}
             for r in drawn.rows}
    assert cells == {"agency-one": {"psychosocial_support": ["one-pss"]},
                     "agency-two": {"clinical_management_of_rape": ["two-cmr"],
                                    "family_tracing_reunification": ["two-ftr"]},
                     "clinic-three": {"safe_shelter": ["three-shelter"],
                                      "medical_care": ["three-medical"]}}
