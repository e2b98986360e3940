"""Open Referral HSDS 3 JSON: export the directory, import a directory from it, check it.

Export: one JSON array of HSDS `organization` objects, each with its `services` (with
`service_areas`, `service_at_locations`, `contacts`, `languages`, `schedules`) and
`locations`, as the HSDS 3.0 compiled organization schema nests them. HSDS ids are UUIDs:
each is derived from the CaseBridge id (UUID 5), and the CaseBridge id travels too (an
organization identifier, or an attribute `directory_id`), so an import gives back the same
ids. What HSDS has no field for travels as attributes with taxonomy terms: the service
type (from contracts/codes/service-type.json), sex, profiles, nationalities and legal
status (link_type `eligibility`), availability (with the time it was said), the
calendar of opening days and the areas' ids.

HSDS has no place for the tree of areas: a service area carries its area's id and name
only. An import into an existing directory file (`into`) keeps that file's areas; an area
the file lacks is added under the country and named in the notes.

`hsds_problems` checks a document against the HSDS 3.0 field rules (required fields, UUID
ids, enumerations, numbers, e-mail and URI formats) of the objects exported. No package
on PyPI or npm ships the HSDS JSON schema, and this build cannot fetch it: these rules
were read from openreferral/specification (branch 3.0, schema/*.json) and restated here,
not copied. `casebridge directory export-hsds --schema DIR` also validates against the
schema files themselves when a deployment has them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gateway.deadlines.calendars import Calendar
from gateway.directory.model import (
    Area,
    Availability,
    AvailabilityStatement,
    Contact,
    Directory,
    Eligibility,
    Hours,
    Location,
    Operation,
    Organization,
    Service,
)
from gateway.errors import FieldError
from gateway.json_pointer import pointer

NAMESPACE = uuid.UUID("6f1d4a52-8a43-5c36-9b0e-2f43c2b9d3a1")  # CaseBridge directory ids
CODES = "https://casebridge.org/contracts/v1/codes/"
DIRECTORY = "https://casebridge.org/directory"  # our taxonomy: ids, availability, calendar
COUNTRIES = "ISO 3166-1 alpha-3"
ELIGIBILITY = {"sex": "sex", "profiles": "profile", "legal_status": "legal-status"}
STATUS = {Availability.ACCEPTING: "active", Availability.WAITLIST: "active",
          Availability.SUSPENDED: "temporarily closed"}
BYDAY = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def hsds_id(kind: str, our_id: str) -> str:
    """The HSDS UUID of one of our objects: the same every export."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{our_id}"))


# ---------------------------------------------------------------------------- export


def export_hsds(directory: Directory, *, labels: Mapping[str, Mapping[str, str]],
                calendars: Mapping[str, Calendar]) -> list[dict[str, Any]]:
    """Every organisation of the directory as HSDS 3 JSON (see the module docstring).

    `labels`: each code list's labels by code (service-type, sex, profile, legal-status).
    """
    exported = []
    for operation in directory.operations:
        for organization in operation.organizations:
            exported.append(_organization(organization, operation, directory, labels,
                                          calendars))
    return exported


def _organization(organization: Organization, operation: Operation, directory: Directory,
                  labels: Mapping[str, Mapping[str, str]],
                  calendars: Mapping[str, Calendar]) -> dict[str, Any]:
    org_id = hsds_id("organization", organization.id)
    identifiers = [{"id": hsds_id("identifier", organization.id), "organization_id": org_id,
                    "identifier_scheme": DIRECTORY, "identifier_type": "directory_id",
                    "identifier": organization.id}]
    if organization.partner:
        identifiers.append({"id": hsds_id("partner", organization.id),
                            "organization_id": org_id, "identifier_scheme": DIRECTORY,
                            "identifier_type": "casebridge_partner",
                            "identifier": organization.partner})
    document: dict[str, Any] = {
        "id": org_id, "name": organization.name, "description": organization.description,
        **_some(email=organization.email, website=organization.website),
        "organization_identifiers": identifiers,
        "contacts": _contacts(organization.contact, f"organization:{organization.id}",
                              organization_id=org_id),
        "locations": [_location(loc, org_id, directory, operation)
                      for loc in organization.locations],
        "services": [_service(s, org_id, operation, directory, labels, calendars)
                     for s in organization.services],
    }
    return document


def _service(service: Service, org_id: str, operation: Operation, directory: Directory,
             labels: Mapping[str, Mapping[str, str]],
             calendars: Mapping[str, Calendar]) -> dict[str, Any]:
    service_id = hsds_id("service", service.id)
    link = _Linker("service", service_id)
    rules = service.eligibility
    attributes = [
        link.our_id(service.id),
        link.term("service_type", CODES + "service-type.json", service.type,
                  labels["service-type"][service.type]),
        link.term("availability", DIRECTORY, service.availability.status.value,
                  service.availability.status.value.capitalize(),
                  value=service.availability.updated_at.isoformat()),
    ]
    for key, code_list in ELIGIBILITY.items():
        for code in sorted(getattr(rules, key)):
            attributes.append(link.term("eligibility", CODES + f"{code_list}.json", code,
                                        labels[code_list][code]))
    for country in sorted(rules.nationalities):
        attributes.append(link.term("eligibility", COUNTRIES, country, country))
    document: dict[str, Any] = {
        "id": service_id, "organization_id": org_id, "name": service.name,
        "status": STATUS[service.availability.status],
        **_some(description=service.description,
                eligibility_description=rules.description, minimum_age=rules.min_age,
                maximum_age=rules.max_age, alert=service.availability.note),
        "last_modified": service.availability.updated_at.isoformat(),
        "attributes": attributes,
        "service_areas": [_service_area(directory.areas[a], service, directory)
                          for a in service.areas if a in directory.areas],
        "service_at_locations": [{"id": hsds_id("service_at_location", f"{service.id}:{a}"),
                                  "service_id": service_id,
                                  "location_id": hsds_id("location", a)} for a in service.at],
        "languages": [{"id": hsds_id("language", f"{service.id}:{code}"),
                       "service_id": service_id, "code": code} for code in service.languages],
        "contacts": _contacts(service.contact, f"service:{service.id}", service_id=service_id),
        "schedules": _schedules(service, service_id, operation, calendars),
    }
    return document


def _service_area(area: Area, service: Service, directory: Directory) -> dict[str, Any]:
    area_id = hsds_id("service_area", f"{service.id}:{area.id}")
    lineage = directory.lineage(area.id)
    return {"id": area_id, "service_id": hsds_id("service", service.id), "name": area.name,
            "description": ", ".join(a.name for a in lineage),
            "attributes": [_Linker("service_area", area_id).our_id(area.id)]}


def _location(location: Location, org_id: str, directory: Directory,
              operation: Operation) -> dict[str, Any]:
    location_id = hsds_id("location", location.id)
    link = _Linker("location", location_id)
    document: dict[str, Any] = {
        "id": location_id, "location_type": "physical", "organization_id": org_id,
        "name": location.name,
        "attributes": [link.our_id(location.id),
                       link.term("area", DIRECTORY, "area", "Area", value=location.area)]}
    if location.address:
        names = [a.name for a in directory.lineage(location.area)]
        document["addresses"] = [{
            "id": hsds_id("address", location.id), "location_id": location_id,
            "address_1": location.address, "city": names[0] if names else "",
            "state_province": names[-2] if len(names) > 1 else "", "postal_code": "",
            "country": operation.country, "address_type": "physical"}]
    return document


def _contacts(contact: Contact | None, owner: str, **links: str) -> list[dict[str, Any]]:
    if contact is None:
        return []
    contact_id = hsds_id("contact", owner)
    document: dict[str, Any] = {"id": contact_id, **links,
                                **_some(name=contact.name, department=contact.team,
                                        email=contact.email)}
    if contact.phone:
        document["phones"] = [{"id": hsds_id("phone", owner), "contact_id": contact_id,
                               "number": contact.phone}]
    return [document]


def _schedules(service: Service, service_id: str, operation: Operation,
               calendars: Mapping[str, Calendar]) -> list[dict[str, Any]]:
    calendar_id = service.calendar or operation.calendar
    if calendar_id is None and service.hours is None:
        return []
    schedule_id = hsds_id("schedule", service.id)
    calendar = calendars.get(calendar_id) if calendar_id else None
    document: dict[str, Any] = {"id": schedule_id, "service_id": service_id,
                                "freq": "WEEKLY", "wkst": "MO"}
    if calendar is not None:
        document["byday"] = ",".join(BYDAY[d] for d in range(7) if d not in calendar.weekend)
        document["description"] = (f"Open on the working days of {calendar.title}: closed on "
                                   "its public holidays and local closures.")
    if service.hours is not None:
        document["opens_at"], document["closes_at"] = service.hours.opens, service.hours.closes
    if service.calendar is not None:
        document["attributes"] = [_Linker("schedule", schedule_id).term(
            "calendar", DIRECTORY, "calendar", "Calendar", value=service.calendar)]
    return [document]


@dataclass(frozen=True)
class _Linker:
    """Attributes of one HSDS object: taxonomy terms linked to it, with their value."""

    entity: str
    link_id: str

    def term(self, link_type: str, taxonomy: str, code: str, name: str, *,
             value: str | None = None) -> dict[str, Any]:
        term_id = hsds_id("taxonomy_term", f"{taxonomy}#{code}")
        attribute: dict[str, Any] = {
            "id": hsds_id("attribute", f"{self.link_id}:{taxonomy}#{code}:{value}"),
            "link_id": self.link_id, "link_entity": self.entity, "link_type": link_type,
            "taxonomy_term_id": term_id,
            "taxonomy_term": {"id": term_id, "code": code, "name": name, "description": name,
                              "taxonomy": taxonomy}}
        if value is not None:
            attribute["value"] = value
        return attribute

    def our_id(self, our_id: str) -> dict[str, Any]:
        return self.term("directory_id", DIRECTORY, "directory_id", "CaseBridge directory id",
                         value=our_id)


def _some(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# ---------------------------------------------------------------------------- import


@dataclass
class Imported:
    """What an import made: the operation, and what a person should look at."""

    operation: Operation
    notes: list[str] = field(default_factory=list)


def import_hsds(data: list[dict[str, Any]], *, into: Operation, service_types: Iterable[str],
                now: datetime) -> Imported:
    """The operation `into` with the organisations of HSDS `data` (an array of
    organizations that passes `hsds_problems`) added, replacing those of the same id; see
    the module docstring.

    `now` stands for when a service's availability was said, when the data does not say.
    """
    state = _Import(into, frozenset(service_types), now)
    organizations = [state.organization(item) for item in data]
    replaced = {o.id for o in organizations}
    kept = [o for o in into.organizations if o.id not in replaced]
    return Imported(replace(into, areas=tuple(state.areas.values()),
                            organizations=tuple(kept + organizations), file="",
                            content_hash=""), state.notes)


class _Import:
    def __init__(self, into: Operation, service_types: frozenset[str], now: datetime) -> None:
        self.into = into
        self.areas = {a.id: a for a in into.areas}
        self.service_types = service_types
        self.now = now
        self.notes: list[str] = []
        self.taken: set[str] = set()

    def organization(self, item: dict[str, Any]) -> Organization:
        identifiers = {i.get("identifier_type"): i.get("identifier")
                       for i in item.get("organization_identifiers") or []
                       if isinstance(i, dict)}
        org_id = self._id(identifiers.get("directory_id"), item.get("name", "organization"))
        locations = [self.location(loc) for loc in item.get("locations") or []]
        by_uuid = {loc.get("id"): mine.id for loc, mine in
                   zip(item.get("locations") or [], locations, strict=True)}
        services = [s for s in (self.service(s, org_id, by_uuid)
                                for s in item.get("services") or []) if s is not None]
        return Organization(id=org_id, name=item.get("name", org_id),
                            description=item.get("description") or item.get("name", org_id),
                            partner=identifiers.get("casebridge_partner"),
                            website=item.get("website"), email=item.get("email"),
                            contact=_contact(item.get("contacts")), locations=tuple(locations),
                            services=tuple(services))

    def location(self, item: dict[str, Any]) -> Location:
        values = _attribute_values(item)
        location_id = self._id(values.get("directory_id"), item.get("name", "location"))
        area = self.area(values.get("area"), None)
        address = next((a.get("address_1") for a in item.get("addresses") or []
                        if isinstance(a, dict) and a.get("address_1")), None)
        return Location(id=location_id, name=item.get("name", location_id), area=area.id,
                        address=address)

    def service(self, item: dict[str, Any], org_id: str, locations: Mapping[Any, str]
                ) -> Service | None:
        name = item.get("name", "service")
        if item.get("status") == "defunct":
            self.notes.append(f"service '{name}' is defunct in the data: left out")
            return None
        terms = _terms(item)
        service_id = self._id(_attribute_values(item).get("directory_id"), name)
        service_type = next(iter(terms.get(CODES + "service-type.json", [])), None)
        if service_type not in self.service_types:
            self.notes.append(f"service '{service_id}' has no CaseBridge service type: "
                              "written as 'other', set its type by hand")
            service_type = "other"
        areas = [self.area(_attribute_values(a).get("directory_id"), a.get("name")).id
                 for a in item.get("service_areas") or [] if isinstance(a, dict)]
        if not areas:
            self.notes.append(f"service '{service_id}' names no service area: written as "
                              f"offered in the whole of {self.into.country_name}")
            areas = [self.into.country.lower()]
        schedule = next((s for s in item.get("schedules") or [] if isinstance(s, dict)), {})
        return Service(
            id=service_id, organization=org_id, type=service_type, name=name,
            areas=tuple(dict.fromkeys(areas)), availability=self._availability(item, terms),
            description=item.get("description"),
            at=tuple(locations[s.get("location_id")] for s in item.get("service_at_locations")
                     or [] if s.get("location_id") in locations),
            eligibility=Eligibility(
                min_age=_whole(item.get("minimum_age")), max_age=_whole(item.get("maximum_age")),
                description=item.get("eligibility_description"),
                nationalities=frozenset(terms.get(COUNTRIES, [])),
                **{key: frozenset(terms.get(CODES + f"{code_list}.json", []))
                   for key, code_list in ELIGIBILITY.items()}),
            languages=tuple(lang["code"] for lang in item.get("languages") or []
                            if isinstance(lang, dict) and lang.get("code")),
            contact=_contact(item.get("contacts")),
            calendar=_attribute_values(schedule).get("calendar"),
            hours=Hours(schedule["opens_at"], schedule["closes_at"])
            if schedule.get("opens_at") and schedule.get("closes_at") else None)

    def _availability(self, item: dict[str, Any], terms: Mapping[str, list[str]]
                      ) -> AvailabilityStatement:
        said = [a for a in item.get("attributes") or [] if isinstance(a, dict)
                and (a.get("taxonomy_term") or {}).get("taxonomy") == DIRECTORY
                and a.get("link_type") == "availability"]
        note = item.get("alert")
        if said:
            code = said[0]["taxonomy_term"]["code"]
            return AvailabilityStatement(Availability(code),
                                         datetime.fromisoformat(said[0]["value"]), note)
        status = (Availability.ACCEPTING if item.get("status") == "active"
                  else Availability.SUSPENDED)
        modified = item.get("last_modified")
        return AvailabilityStatement(status, datetime.fromisoformat(modified)
                                     if isinstance(modified, str) else self.now, note)

    def area(self, area_id: str | None, name: str | None) -> Area:
        root = self.into.root
        if area_id == root.id:
            return root
        if area_id in self.areas:
            return self.areas[area_id]
        by_name = [a for a in self.areas.values() if name and a.name == name]
        if len(by_name) == 1:
            return by_name[0]
        new_id = self._id(area_id, name or "area")
        area = Area(id=new_id, name=name or new_id, country=self.into.country)
        self.areas[new_id] = area
        self.notes.append(f"area '{new_id}' was not in the file: added under "
                          f"{self.into.country_name}; give it its level and place")
        return area

    def _id(self, given: Any, name: str) -> str:
        if isinstance(given, str) and given and given not in self.taken:
            self.taken.add(given)
            return given
        base = re.sub(r"[^a-z0-9]+", "-", str(name).casefold()).strip("-")[:55] or "item"
        candidate, n = base, 1
        while candidate in self.taken or len(candidate) < 2:
            n += 1
            candidate = f"{base}-{n}"
        self.taken.add(candidate)
        return candidate


def _terms(item: dict[str, Any]) -> dict[str, list[str]]:
    """The taxonomy codes linked to an object, by taxonomy."""
    found: dict[str, list[str]] = {}
    for attribute in item.get("attributes") or []:
        term = attribute.get("taxonomy_term") if isinstance(attribute, dict) else None
        if isinstance(term, dict) and term.get("code") and term.get("taxonomy") != DIRECTORY:
            found.setdefault(term.get("taxonomy", ""), []).append(term["code"])
    return found


def _attribute_values(item: dict[str, Any]) -> dict[str, str]:
    """Our own attributes of an object (directory_id, area, calendar), by term code."""
    return {a["taxonomy_term"]["code"]: a["value"] for a in item.get("attributes") or []
            if isinstance(a, dict) and isinstance(a.get("taxonomy_term"), dict)
            and a["taxonomy_term"].get("taxonomy") == DIRECTORY and "value" in a}


def _contact(contacts: Any) -> Contact | None:
    first = next((c for c in contacts or [] if isinstance(c, dict)), None)
    if first is None:
        return None
    phone = next((p.get("number") for p in first.get("phones") or [] if isinstance(p, dict)),
                 None)
    return Contact(team=first.get("department"), name=first.get("name"),
                   email=first.get("email"), phone=phone)


def _whole(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------- the YAML


def operation_document(operation: Operation) -> dict[str, Any]:
    """An operation as the YAML of a directory file holds it."""
    return _some(
        id=operation.id, title=operation.title, country=operation.country,
        country_name=operation.country_name, calendar=operation.calendar,
        areas=[_some(id=a.id, name=a.name, level=a.level, within=a.within,
                     codes=list(a.codes) or None, aliases=list(a.aliases) or None,
                     postcodes=list(a.postcodes) or None) for a in operation.areas] or None,
        organizations=[_organization_document(o) for o in operation.organizations])


def _organization_document(organization: Organization) -> dict[str, Any]:
    return _some(
        id=organization.id, name=organization.name, description=organization.description,
        partner=organization.partner, website=organization.website, email=organization.email,
        contact=_contact_document(organization.contact),
        locations=[_some(id=loc.id, name=loc.name, area=loc.area, address=loc.address)
                   for loc in organization.locations] or None,
        services=[_service_document(s) for s in organization.services])


def _service_document(service: Service) -> dict[str, Any]:
    rules = service.eligibility
    eligibility = _some(min_age=rules.min_age, max_age=rules.max_age,
                        sex=sorted(rules.sex) or None, profiles=sorted(rules.profiles) or None,
                        nationalities=sorted(rules.nationalities) or None,
                        legal_status=sorted(rules.legal_status) or None,
                        description=rules.description)
    said = service.availability
    return _some(
        id=service.id, type=service.type, name=service.name, description=service.description,
        areas=list(service.areas), at=list(service.at) or None, eligibility=eligibility or None,
        languages=list(service.languages) or None,
        contact=_contact_document(service.contact), calendar=service.calendar,
        hours={"opens": service.hours.opens, "closes": service.hours.closes}
        if service.hours else None,
        availability=_some(status=said.status.value, updated_at=said.updated_at.isoformat(),
                           note=said.note))


def _contact_document(contact: Contact | None) -> dict[str, Any] | None:
    if contact is None:
        return None
    return _some(team=contact.team, name=contact.name, email=contact.email,
                 phone=contact.phone) or None


# ---------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class Rules:
    """The HSDS 3.0 rules of one object type that its export must keep."""

    required: tuple[str, ...] = ("id",)
    uuids: tuple[str, ...] = ("id",)
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    numbers: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    date_times: tuple[str, ...] = ()
    single: Mapping[str, str] = field(default_factory=dict)  # field → object type
    lists: Mapping[str, str] = field(default_factory=dict)  # field → object type of items


ATTRIBUTES = {"attributes": "attribute"}
RULES: dict[str, Rules] = {
    "organization": Rules(
        required=("id", "name", "description"), uuids=("id", "parent_organization_id"),
        numbers=("year_incorporated",), emails=("email",), uris=("website", "uri"),
        lists={"services": "service", "locations": "location", "contacts": "contact",
               "phones": "phone", "organization_identifiers": "organization_identifier",
               **ATTRIBUTES}),
    "service": Rules(
        required=("id", "name", "status"), uuids=("id", "organization_id", "program_id"),
        enums={"status": ("active", "inactive", "defunct", "temporarily closed")},
        numbers=("minimum_age", "maximum_age"), emails=("email", "assurer_email"),
        uris=("url",), date_times=("last_modified",),
        lists={"service_areas": "service_area", "service_at_locations": "service_at_location",
               "languages": "language", "contacts": "contact", "phones": "phone",
               "schedules": "schedule", **ATTRIBUTES}),
    "location": Rules(
        required=("id", "location_type"), uuids=("id", "organization_id"),
        enums={"location_type": ("physical", "postal", "virtual")},
        numbers=("latitude", "longitude"), uris=("url",),
        lists={"addresses": "address", "languages": "language", "contacts": "contact",
               "phones": "phone", "schedules": "schedule", **ATTRIBUTES}),
    "service_at_location": Rules(
        uuids=("id", "service_id", "location_id"), single={"location": "location"},
        lists={"contacts": "contact", "phones": "phone", "schedules": "schedule",
               **ATTRIBUTES}),
    "service_area": Rules(uuids=("id", "service_id"), lists=ATTRIBUTES),
    "contact": Rules(
        uuids=("id", "organization_id", "service_id", "service_at_location_id", "location_id"),
        emails=("email",), lists={"phones": "phone", **ATTRIBUTES}),
    "phone": Rules(
        required=("id", "number"), numbers=("extension",),
        uuids=("id", "location_id", "service_id", "organization_id", "contact_id",
               "service_at_location_id"),
        lists={"languages": "language", **ATTRIBUTES}),
    "schedule": Rules(
        uuids=("id", "service_id", "location_id", "service_at_location_id"),
        enums={"wkst": BYDAY, "freq": ("WEEKLY", "MONTHLY")},
        numbers=("timezone", "count", "interval"), uris=("schedule_link",), lists=ATTRIBUTES),
    "language": Rules(uuids=("id", "service_id", "location_id", "phone_id"), lists=ATTRIBUTES),
    "address": Rules(
        required=("id", "address_1", "city", "state_province", "postal_code", "country",
                  "address_type"), uuids=("id", "location_id"),
        enums={"address_type": ("physical", "postal", "virtual")}, lists=ATTRIBUTES),
    "organization_identifier": Rules(
        required=("id", "identifier_type", "identifier"), uuids=("id", "organization_id"),
        lists=ATTRIBUTES),
    "attribute": Rules(uuids=("id", "link_id", "taxonomy_term_id"),
                       single={"taxonomy_term": "taxonomy_term"}),
    "taxonomy_term": Rules(required=("id", "name", "description"),
                           uuids=("id", "parent_id", "taxonomy_id"), uris=("term_uri",)),
}
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def hsds_problems(document: Any) -> list[FieldError]:
    """Every HSDS 3.0 rule the document (an array of organizations) breaks, by pointer."""
    if not isinstance(document, list):
        return [FieldError("", "type", "an HSDS export is an array of organizations")]
    problems: list[FieldError] = []
    for index, item in enumerate(document):
        _check("organization", item, [index], problems)
    return problems


def _check(kind: str, item: Any, path: list[str | int], problems: list[FieldError]) -> None:
    where = pointer(path)
    if not isinstance(item, dict):
        problems.append(FieldError(where, "type", f"a {kind} is an object"))
        return
    rules = RULES[kind]
    for name in rules.required:
        if name not in item:
            problems.append(FieldError(pointer([*path, name]), "required", "is required"))
    for name, value in item.items():
        at = pointer([*path, name])
        if name in rules.uuids and not (isinstance(value, str) and _UUID.fullmatch(value)):
            problems.append(FieldError(at, "format", "must be a UUID"))
        elif name in rules.enums and value not in rules.enums[name]:
            problems.append(FieldError(at, "enum", f"must be one of {rules.enums[name]}"))
        elif name in rules.numbers and (isinstance(value, bool)
                                        or not isinstance(value, int | float)):
            problems.append(FieldError(at, "type", "must be a number"))
        elif name in rules.emails and not (isinstance(value, str) and _EMAIL.fullmatch(value)):
            problems.append(FieldError(at, "format", "must be an e-mail address"))
        elif name in rules.uris and not (isinstance(value, str) and _URI.fullmatch(value)):
            problems.append(FieldError(at, "format", "must be a URI"))
        elif name in rules.date_times and not _date_time(value):
            problems.append(FieldError(at, "format", "must be an RFC 3339 date-time"))
        elif name in rules.single:
            _check(rules.single[name], value, [*path, name], problems)
        elif name in rules.lists:
            if not isinstance(value, list):
                problems.append(FieldError(at, "type", "must be an array"))
                continue
            for i, element in enumerate(value):
                _check(rules.lists[name], element, [*path, name, i], problems)


def _date_time(value: Any) -> bool:
    """An RFC 3339 date-time: a date, a time and an offset."""
    try:
        return isinstance(value, str) and "T" in value and \
            datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def schema_problems(document: Sequence[Any], schema_dir: Path) -> list[FieldError]:
    """The rules the document breaks in the HSDS schema files of `schema_dir` (the
    specification's schema/ folder: organization.json, service.json and the files they
    refer to); each organization and each of its services is validated."""
    resources = [(f"https://hsds.invalid/schema/{file.name}",
                  Resource.from_contents(json.loads(file.read_text(encoding="utf-8")),
                                         default_specification=DRAFT202012))
                 for file in sorted(schema_dir.glob("*.json"))]
    registry: Registry[Any] = Registry().with_resources(resources)

    def validator(name: str) -> Draft202012Validator:
        schema = registry.contents(f"https://hsds.invalid/schema/{name}")
        return Draft202012Validator({"$ref": f"https://hsds.invalid/schema/{name}"},
                                    registry=registry,
                                    format_checker=Draft202012Validator.FORMAT_CHECKER) \
            if isinstance(schema, dict) else Draft202012Validator({})

    organizations, services = validator("organization.json"), validator("service.json")
    problems = []
    for index, item in enumerate(document):
        checks: list[tuple[Draft202012Validator, Any, list[str | int]]] = [
            (organizations, item, [index])]
        checks += [(services, s, [index, "services", i])
                   for i, s in enumerate(item.get("services") or [])]
        for checker, instance, where in checks:
            for error in checker.iter_errors(instance):
                problems.append(FieldError(pointer([*where, *error.absolute_path]),
                                           str(error.validator), error.message[:200]))
    return problems

