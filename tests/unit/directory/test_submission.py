"""The directory's check of a referral at submission: refused with alternatives, accepted
with warnings, or not checked."""

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.directory.model import Directory
from gateway.directory.submission import check_referral
from gateway.errors import ServiceNotOffered
from testland import directory

TODAY = date(2026, 12, 7)


@pytest.fixture
def land(tmp_path: Path) -> Directory:
    return directory(tmp_path)


def referral(receiver: str, *services: str, place: dict[str, str] | None = None,
             **subject: Any) -> dict[str, Any]:
    person: dict[str, Any] = {"sex": "female", "birth_date": "2014-03-09", **subject}
    if place is not None:
        person["contact"] = {"location": place}
    return {"kind": "referral", "receiver": {"partner": receiver}, "subject": person,
            "services": [{"type": s} for s in services]}


def rules(found: list) -> list[tuple[str, str]]:
    return [(w.pointer, w.rule) for w in found]


def test_a_service_offered_in_the_persons_area_passes_without_a_warning(
        land: Directory) -> None:
    document = referral("partner-one", "family_tracing_reunification",
                        place={"admin1": "North", "settlement": "Camp A"})
    assert check_referral(land, document, today=TODAY) == []


def test_a_service_the_receiver_does_not_offer_is_refused_with_the_alternatives(
        land: Directory) -> None:
    document = referral("partner-two", "family_tracing_reunification", "safe_shelter",
                        place={"admin1": "North", "admin2": "Lake"})
    with pytest.raises(ServiceNotOffered) as refused:
        check_referral(land, document, today=TODAY)
    problem = refused.value
    assert (problem.status, problem.slug) == (422, "service-not-offered")
    # tracing: Hill tracing serves the hill district, not the lake; shelter: none at all
    assert [(e.pointer, e.rule, e.detail) for e in problem.errors] == [
        ("/services/0/type", "directory-area", "'partner-two' offers "
         "'family_tracing_reunification' only in Hill district: not where the person is"),
        ("/services/1/type", "directory-service-not-offered",
         "'partner-two' does not offer 'safe_shelter'")]
    alternatives = problem.extensions["alternatives"]
    # the suspended lake shelter is no alternative; the receiver's own services are none
    assert [(a["service_type"], a["service"], a["partner"], a["availability"],
             a["area_match"]) for a in alternatives] == [
        ("family_tracing_reunification", "one-ftr", "partner-one", "accepting", "wider"),
        ("safe_shelter", "three-shelter", None, "waitlist", "wider")]
    assert alternatives[0]["contact"] == {"team": "Intake team",
                                          "email": "intake@one.example.org"}
    assert "'family_tracing_reunification' and 'safe_shelter'" in problem.detail


def test_a_suspended_service_is_refused(land: Directory) -> None:
    document = referral("partner-one", "safe_shelter", place={"admin2": "Lake"})
    with pytest.raises(ServiceNotOffered) as refused:
        check_referral(land, document, today=TODAY)
    error = refused.value.errors[0]
    assert (error.rule, error.detail) == (
        "directory-suspended", "'Shelter by the lake' of 'partner-one' is suspended (said "
        "2026-11-02)")
    assert [a["service"] for a in refused.value.extensions["alternatives"]] == [
        "three-shelter"]


def test_a_waiting_list_is_accepted_with_a_warning(land: Directory) -> None:
    document = referral("partner-one", "psychosocial_support", place={"settlement": "Camp A"})
    assert rules(check_referral(land, document, today=TODAY)) == [
        ("/services/0/type", "directory-waitlist")]


def test_an_area_known_only_more_broadly_than_the_service_is_a_warning(
        land: Directory) -> None:
    document = referral("partner-two", "family_tracing_reunification",
                        place={"admin1": "North"})
    assert rules(check_referral(land, document, today=TODAY)) == [
        ("/services/0/type", "directory-area-part")]


def test_a_place_the_directory_does_not_know_is_not_checked_but_said(
        land: Directory) -> None:
    document = referral("partner-two", "family_tracing_reunification",
                        place={"admin1": "Atlantis"})
    assert rules(check_referral(land, document, today=TODAY)) == [
        ("/subject/contact/location", "directory-area-unknown")]


def test_without_a_place_only_the_service_and_its_availability_are_checked(
        land: Directory) -> None:
    assert check_referral(land, referral("partner-one", "family_tracing_reunification"),
                          today=TODAY) == []
    with pytest.raises(ServiceNotOffered):
        check_referral(land, referral("partner-one", "medical_care"), today=TODAY)


def test_eligibility_the_person_falls_outside_is_a_warning(land: Directory) -> None:
    # the person is 12 on the referral date; the tracing service is for anyone up to 17
    assert check_referral(land, referral("partner-two", "clinical_management_of_rape"),
                          today=TODAY) == []
    male = referral("partner-two", "clinical_management_of_rape", sex="male")
    adult = referral("partner-one", "family_tracing_reunification", birth_date="1990-01-01")
    assert rules(check_referral(land, male, today=TODAY)) == [
        ("/services/0/type", "directory-eligibility")]
    assert rules(check_referral(land, adult, today=TODAY)) == [
        ("/services/0/type", "directory-eligibility")]
    # only is_minor known: an adult is outside a service for children
    grown = referral("partner-one", "family_tracing_reunification")
    grown["subject"] = {"is_minor": False}
    assert rules(check_referral(land, grown, today=TODAY)) == [
        ("/services/0/type", "directory-eligibility")]


def test_a_receiver_absent_from_the_directory_is_not_checked_and_said(
        land: Directory) -> None:
    document = referral("partner-unlisted", "safe_shelter")
    assert [(w.pointer, w.rule, w.detail) for w in check_referral(
        land, document, today=TODAY)] == [
        ("/receiver/partner", "directory-unlisted", "'partner-unlisted' has no entry in the "
         "service directory: the services asked were not checked")]


def test_a_transfer_asking_no_service_is_not_checked(land: Directory) -> None:
    transfer = {"kind": "transfer", "receiver": {"partner": "partner-one"}, "subject": {}}
    assert check_referral(land, transfer, today=TODAY) == []


def test_nothing_of_the_person_is_repeated_in_the_answer(land: Directory) -> None:
    document = referral("partner-two", "safe_shelter", place={"admin2": "Lake",
                                                              "settlement": "Plot 12B"})
    with pytest.raises(ServiceNotOffered) as refused:
        check_referral(land, document, today=TODAY)
    said = repr(refused.value.errors) + repr(refused.value.extensions) + refused.value.detail
    assert "2014" not in said and "Plot 12B" not in said and "female" not in said
    assert "Lake" not in said  # not even the directory's name of the person's area
