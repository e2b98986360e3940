"""The service directory over real HTTP, against SQLite and PostgreSQL: search, pathways,
availability kept by the organisation, and the check of each referral at submission."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from gateway.partners import register_partner
from gateway.settings import Settings
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import AuditEntry, Referral
from servers import LiveServer, assert_problem, key
from sharing import write_agreement
from testland import TESTLAND, write


@dataclass
class Land:
    """A gateway whose directory is Testland, its partners with their API keys."""

    server: LiveServer
    folder: Path
    text: str
    sender: str
    one: str
    two: str
    keys: dict[str, str]

    def client(self, partner: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=10,
                            headers={"Authorization": f"Bearer {self.keys[partner]}"})

    def rewrite(self, text: str) -> None:
        """Change the directory file, as an IM officer saves it (the gateway rereads it)."""
        draft = self.folder / "testland.draft"
        draft.write_text(text, encoding="utf-8")
        draft.replace(self.folder / "testland.yaml")
        self.text = text


@pytest.fixture(scope="module")
def land(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Land]:
    """Testland with partner ids of this module alone, served by a gateway of its own."""
    suffix = uuid.uuid4().hex[:8]
    sender, one, two = (f"{name}-{suffix}" for name in ("caseworker", "agency-one",
                                                         "agency-two"))
    folder = tmp_path_factory.mktemp("directory")
    text = (TESTLAND.replace("partner: partner-one", f"partner: {one}")
            .replace("partner: partner-two", f"partner: {two}")
            .replace("aliases: [Lake]}", "aliases: [Lake], postcodes: [CF10]}"))
    write(folder, text)
    keys = {}
    with unit_of_work(make_sessionmaker(make_engine(settings.database_url))) as session:
        for partner in (sender, one, two):
            keys[partner] = register_partner(session=session, partner_id=partner,
                                             name=partner, system="other")[1]
    write_agreement(settings.agreements_dir, f"dir-{suffix}", [sender, one, two])
    with LiveServer(settings.model_copy(update={"directory_dir": folder})) as server:
        yield Land(server, folder, text, sender, one, two, keys)


@pytest.fixture
def refer(land: Land, make_referral: Callable[..., dict[str, Any]]
          ) -> Callable[..., httpx.Response]:
    """Submit a referral from the module's sender about a fictional child in Camp A."""

    def send(receiver: str, *services: str, place: dict[str, str] | None = None
             ) -> httpx.Response:
        document = make_referral(land.sender, receiver)
        document["services"] = [{"type": s} for s in services]
        document["subject"]["contact"] = {"location": place or {"admin1": "North",
                                                                "settlement": "Camp A"}}
        with land.client(land.sender) as client:
            return client.post("/v1/referrals", json=document, headers=key())

    return send


# -- search and pathways --------------------------------------------------------------------

def test_search_ranks_the_same_area_first_and_filters_by_eligibility(land: Land) -> None:
    with land.client(land.sender) as client:
        answer = client.get("/v1/directory/services", params={
            "service_type": "family_tracing_reunification", "area": "hill", "age": 12})
        adult = client.get("/v1/directory/services", params={
            "service_type": "family_tracing_reunification", "area": "hill", "age": 30})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["area"] == {"id": "hill", "name": "Hill district", "level": "admin2",
                             "country": "ZZA", "within": ["north", "zza"]}
    assert [(s["id"], s["area_match"], s["organization"]["partner"]) for s in found["items"]] \
        == [("two-ftr", "same", land.two), ("one-ftr", "wider", land.one)]
    assert found["items"][1]["type_label"] == "Family tracing and reunification (FTR)"
    assert found["items"][1]["contact"]["team"] == "Intake team"
    assert adult.json()["items"] == []


def test_search_by_postcode_answers_the_service_and_its_contact_point(land: Land) -> None:
    with land.client(land.sender) as client:
        answer = client.get("/v1/directory/services", params={"postcode": "CF10 1AA",
                                                              "service_type": "safe_shelter"})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert found["area"]["id"] == "lake"
    assert [(s["id"], s["availability"]["status"]) for s in found["items"]] == [
        ("three-shelter", "waitlist"), ("one-shelter", "suspended")]
    clinic = next(s for s in found["items"] if s["id"] == "three-shelter")
    assert clinic["organization"]["partner"] is None
    assert clinic["contact"] == {"team": "Duty nurse", "name": None, "email": None,
                                 "phone": "+000 000"}
    assert clinic["opening"]["calendar"] == "et"
    assert clinic["opening"]["next_open_day"] is not None


@pytest.mark.parametrize("params, pointer, rule", [
    ({"service_type": "shelter"}, "/service_type", "enum"),
    ({"profile": "refugee"}, "/profile", "enum"),
    ({"area": "Atlantis"}, "/area", "known-area"),
    ({"area": "Hill district"}, "/area", "one-area"),
    ({"postcode": "SA1 1AA"}, "/postcode", "known-postcode"),
    ({"area": "north", "postcode": "CF10"}, "/postcode", "one-of"),
    ({"age": "-1"}, "/age", "greater_than_equal"),
])
def test_a_bad_search_parameter_is_a_problem_naming_it(land: Land, params: dict[str, str],
                                                       pointer: str, rule: str) -> None:
    with land.client(land.sender) as client:
        answer = client.get("/v1/directory/services", params=params)
    body = assert_problem(answer, 400, "invalid-parameter")
    assert [(e["pointer"], e["rule"]) for e in body["errors"]] == [(pointer, rule)]


def test_the_directory_is_for_partners_only(land: Land) -> None:
    answer = httpx.get(f"{land.server.url}/v1/pathways")
    assert_problem(answer, 401, "not-authenticated")


def test_the_pathway_of_an_area_for_a_profile(land: Land) -> None:
    with land.client(land.sender) as client:
        answer = client.get("/v1/pathways", params={"area": "camp-a",
                                                    "profile": "gbv_survivor"})
    assert answer.status_code == 200, answer.text
    drawn = answer.json()
    assert [c["code"] for c in drawn["service_types"]] == [
        "psychosocial_support", "medical_care", "clinical_management_of_rape", "safe_shelter",
        "family_tracing_reunification"]
    rows = {r["organization"]["id"]: {t: [c["service"] for c in cells]
                                      for t, cells in r["services"].items()}
            for r in drawn["rows"]}
    assert rows == {"agency-one": {"psychosocial_support": ["one-pss"]},
                    "agency-two": {"clinical_management_of_rape": ["two-cmr"],
                                   "family_tracing_reunification": ["two-ftr"]},
                    "clinic-three": {"medical_care": ["three-medical"],
                                     "safe_shelter": ["three-shelter"]}}


# -- the check at submission ----------------------------------------------------------------

def test_a_service_the_receiver_does_not_offer_is_refused_with_alternatives_and_nothing_stored(
        land: Land, refer: Callable[..., httpx.Response], settings: Settings) -> None:
    answer = refer(land.two, "safe_shelter")
    body = assert_problem(answer, 422, "service-not-offered")
    assert [(e["pointer"], e["rule"]) for e in body["errors"]] == [
        ("/services/0/type", "directory-service-not-offered")]
    assert "'safe_shelter'" in body["errors"][0]["detail"]
    assert [(a["service"], a["organization"], a["partner"]) for a in body["alternatives"]] == [
        ("three-shelter", "clinic-three", None)]
    assert "Zawadi" not in answer.text and "Camp A" not in answer.text
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        assert session.scalar(select(Referral).where(Referral.receiver_id == land.two)) is None
        refusals = session.scalars(select(AuditEntry).where(
            AuditEntry.partner_id == land.sender, AuditEntry.action == "referral.refuse")).all()
    assert any(r.detail["problem"] == "service-not-offered" for r in refusals)


def test_a_referral_outside_the_receivers_areas_is_refused(
        land: Land, refer: Callable[..., httpx.Response]) -> None:
    answer = refer(land.two, "family_tracing_reunification",
                   place={"admin1": "North", "admin2": "Lake"})
    body = assert_problem(answer, 422, "service-not-offered")
    assert body["errors"][0]["rule"] == "directory-area"
    assert [a["service"] for a in body["alternatives"]] == ["one-ftr"]


def test_availability_kept_by_the_organisation_takes_effect_at_submission(
        land: Land, refer: Callable[..., httpx.Response]) -> None:
    # Counselling in the hill district has a waiting list: accepted, with a warning
    accepted = refer(land.one, "psychosocial_support")
    assert accepted.status_code == 201, accepted.text
    assert [(w["pointer"], w["rule"]) for w in accepted.json()["warnings"]] == [
        ("/services/0/type", "directory-waitlist")]

    # Agency One suspends it: the next referral is refused
    with land.client(land.one) as one:
        changed = one.put("/v1/directory/services/one-pss/availability",
                          json={"status": "suspended", "note": "Counsellor on leave."})
    assert changed.status_code == 200, changed.text
    assert changed.json()["availability"] | {"updated_at": None} == {
        "status": "suspended", "note": "Counsellor on leave.", "source": "organisation",
        "updated_at": None}
    refused = refer(land.one, "psychosocial_support")
    assert assert_problem(refused, 422, "service-not-offered")["errors"][0]["rule"] == \
        "directory-suspended"

    # Only the organisation offering it may say so
    with land.client(land.two) as two:
        assert_problem(two.put("/v1/directory/services/one-pss/availability",
                               json={"status": "accepting"}), 403, "forbidden")
        assert_problem(two.put("/v1/directory/services/no-such/availability",
                               json={"status": "accepting"}), 404, "not-found")
        bad = assert_problem(two.put("/v1/directory/services/one-pss/availability",
                                     json={"status": "open"}), 400, "invalid-parameter")
        assert [(e["pointer"], e["in"]) for e in bad["errors"]] == [("/status", "body")]

    # The IM officer saves a newer word in the file: it holds again
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat(timespec="seconds")
    land.rewrite(land.text.replace(
        'name: Counselling\n        areas: [hill]\n        availability: {status: waitlist, '
        'updated_at: "2026-11-01T09:00:00+00:00"}',
        f'name: Counselling\n        areas: [hill]\n        availability: {{status: '
        f'accepting, updated_at: "{later}"}}'))
    again = refer(land.one, "psychosocial_support")
    assert again.status_code == 201, again.text
    assert again.json()["warnings"] == []


def test_a_receiver_without_a_directory_entry_is_accepted_with_a_warning(
        land: Land, refer: Callable[..., httpx.Response], settings: Settings) -> None:
    unlisted = f"unlisted-{uuid.uuid4().hex[:8]}"
    with unit_of_work(make_sessionmaker(make_engine(settings.database_url))) as session:
        register_partner(session=session, partner_id=unlisted, name="x", system="other")
    write_agreement(settings.agreements_dir, f"dir-{unlisted}", [land.sender, unlisted])
    answer = refer(unlisted, "safe_shelter")
    assert answer.status_code == 201, answer.text
    assert [(w["pointer"], w["rule"]) for w in answer.json()["warnings"]] == [
        ("/receiver/partner", "directory-unlisted")]
