"""The directory's word on a referral at submission: does the receiver offer what is asked,
where the person is, and is it taking referrals?

Called by `submit_referral` for each service a referral or transfer asks for:
- the receiver offers no service of that type, or only in areas that do not meet the
  person's area, or has suspended it there: refused (422 `service-not-offered`), naming
  the service, with the alternatives the directory lists for it in that area;
- the service only has a waiting list, the person's area is known only more broadly
  than the areas it serves, the person's place is not an area of the directory, or the
  person falls outside its eligibility (age, sex): accepted, with a warning;
- the receiver has no entry in the directory at all: not checked, with a warning, so a
  partner can go live before its directory entry exists.
Agreements and consent still decide what may be shared; the directory decides nothing
about data. The person's place, age and sex are read from the sender's document for
this check only; nothing of them is kept or repeated in the answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from gateway.directory.model import Area, Availability, Directory, Organization, Service
from gateway.directory.search import AreaMatch, Need, area_match, eligible, search
from gateway.errors import FieldError, ServiceNotOffered
from gateway.protection.minors import (
    ADULT_AGE,
    referral_date,
    youngest_age_from_age,
    youngest_age_from_birth_date,
)

LOCATION_LEVELS = ("admin1", "admin2", "admin3", "settlement")
ALTERNATIVES_PER_SERVICE = 5


@dataclass(frozen=True)
class Person:
    """What the check needs to know of the person, and nothing more."""

    area: Area | None
    place_given: bool
    age: int | None
    minor: bool | None
    sex: str | None


def check_referral(directory: Directory, document: dict[str, Any], *, today: date
                   ) -> list[FieldError]:
    """The warnings for this referral or transfer, or ServiceNotOffered (see the module)."""
    receiver = document["receiver"]["partner"]
    organizations = directory.organizations_of(receiver)
    if not organizations:
        return [FieldError("/receiver/partner", "directory-unlisted",
                           f"'{receiver}' has no entry in the service directory: the "
                           "services asked were not checked")]
    asked = document.get("services") or []
    if not asked:
        return []
    person = _person(directory, document, today)
    warnings: list[FieldError] = []
    if person.place_given and person.area is None:
        warnings.append(FieldError("/subject/contact/location", "directory-area-unknown",
                                   "the person's place is not an area of the service "
                                   "directory: the area was not checked"))
    errors: list[FieldError] = []
    refused_types: list[str] = []
    for index, service in enumerate(asked):
        found, said = _judge(directory, organizations, service["type"], person,
                             f"/services/{index}/type", receiver)
        (errors if not found else warnings).extend(said)
        if not found:
            refused_types.append(service["type"])
    if errors:
        raise ServiceNotOffered(
            f"The service directory does not show '{receiver}' offering "
            f"{_listed(refused_types)} to this person now; nothing was stored.",
            errors, _alternatives(directory, refused_types, person, organizations))
    return warnings


def _judge(directory: Directory, organizations: list[Organization], service_type: str,
           person: Person, pointer: str, receiver: str) -> tuple[bool, list[FieldError]]:
    """(whether the receiver offers it, the errors or warnings saying how)."""
    offered = [s for o in organizations for s in o.services if s.type == service_type]
    if not offered:
        return False, [FieldError(pointer, "directory-service-not-offered",
                                  f"'{receiver}' does not offer '{service_type}'")]
    said: list[FieldError] = []
    candidates = offered
    if person.area is not None:
        meeting = [(s, m) for s in offered
                   if (m := area_match(directory, s, person.area)) is not None]
        covering = [s for s, m in meeting if m[0] is not AreaMatch.PART]
        if not meeting:
            served = sorted({directory.areas[a].name for s in offered for a in s.areas
                             if a in directory.areas})
            return False, [FieldError(pointer, "directory-area",
                                      f"'{receiver}' offers '{service_type}' only in "
                                      f"{', '.join(served)}: not where the person is")]
        if not covering:
            said.append(FieldError(pointer, "directory-area-part",
                                   f"'{receiver}' offers '{service_type}' in part of the "
                                   "person's area only: confirm it reaches the person"))
        candidates = covering or [s for s, _ in meeting]
    open_ = [s for s in candidates if s.availability.status is not Availability.SUSPENDED]
    if not open_:
        names = ", ".join(f"'{s.name}'" for s in candidates)
        return False, [FieldError(pointer, "directory-suspended",
                                  f"{names} of '{receiver}' is suspended (said "
                                  f"{_when(candidates)})")]
    if all(s.availability.status is Availability.WAITLIST for s in open_):
        said.append(FieldError(pointer, "directory-waitlist",
                               f"'{open_[0].name}' of '{receiver}' has a waiting list "
                               f"(said {_when(open_)}): expect a delay"))
    if not any(_admits(s, person) for s in open_):
        said.append(FieldError(pointer, "directory-eligibility",
                               f"the directory says '{open_[0].name}' of '{receiver}' is "
                               "for people of another age or sex: confirm with the receiver"))
    return True, said


def _admits(service: Service, person: Person) -> bool:
    rules = service.eligibility
    if person.age is None and person.minor is not None:
        if person.minor and rules.min_age is not None and rules.min_age >= ADULT_AGE:
            return False
        if not person.minor and rules.max_age is not None and rules.max_age < ADULT_AGE:
            return False
    return eligible(service, Need(age=person.age, sex=person.sex))


def _person(directory: Directory, document: dict[str, Any], today: date) -> Person:
    subject = document.get("subject") or {}
    location = (subject.get("contact") or {}).get("location") or {}
    names = [location[level] for level in LOCATION_LEVELS
             if isinstance(location.get(level), str) and location[level].strip()]
    on = referral_date(document, today=today)
    ages = [a for a in (youngest_age_from_birth_date(subject, on),
                        youngest_age_from_age(subject, on)) if a is not None]
    sex = subject.get("sex")
    return Person(area=directory.resolve(names) if names else None, place_given=bool(names),
                  age=min(ages) if ages else None, minor=subject.get("is_minor"),
                  sex=sex if sex in ("female", "male") else None)


def _alternatives(directory: Directory, service_types: list[str], person: Person,
                  receivers: list[Organization]) -> list[dict[str, Any]]:
    """Who else the directory lists for these services, for this person, in this area."""
    found = []
    for service_type in dict.fromkeys(service_types):
        matches = [m for m in search(
            directory, Need(service_type=service_type, area=person.area, age=person.age,
                            sex=person.sex), leave_out=[o.id for o in receivers])
            if m.service.availability.status is not Availability.SUSPENDED]
        for match in matches[:ALTERNATIVES_PER_SERVICE]:
            contact = match.service.contact or match.organization.contact
            found.append({
                "service_type": service_type,
                "service": match.service.id,
                "name": match.service.name,
                "organization": match.organization.id,
                "organization_name": match.organization.name,
                "partner": match.organization.partner,
                "availability": match.service.availability.status.value,
                "area_match": match.area_match.value if match.area_match else None,
                "contact": {k: v for k, v in asdict(contact).items() if v} if contact else None,
            })
    return found


def _when(services: list[Service]) -> str:
    return max(s.availability.updated_at for s in services).date().isoformat()


def _listed(service_types: list[str]) -> str:
    quoted = [f"'{t}'" for t in dict.fromkeys(service_types)]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
