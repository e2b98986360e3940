"""The service directory as the gateway holds it: areas, organisations, their services.

Modelled on Open Referral HSDS 3 (Organization, Service, Location, ServiceAtLocation,
Eligibility), with what referral pathways need besides: service types from the taxonomy's
code list, profiles, areas by administrative level, a contact point, opening days by a
working-day calendar, and availability. Everything here is immutable; `Directory` is the
merged view of every directory file in force, with the organisations' own availability
updates applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum


class Availability(StrEnum):
    """Whether a service takes new referrals now."""

    ACCEPTING = "accepting"
    WAITLIST = "waitlist"
    SUSPENDED = "suspended"


LEVELS = ("admin1", "admin2", "admin3", "settlement")


def fold(text: str) -> str:
    """A name or code as it is compared: case, spaces and punctuation do not count."""
    return re.sub(r"[^0-9a-z]+", "", text.casefold())


@dataclass(frozen=True)
class Area:
    """A place services are offered in: a country, or an area within one."""

    id: str
    name: str
    country: str  # ISO 3166-1 alpha-3, upper case (as partners and nationalities)
    level: str | None = None  # country, admin1, admin2, admin3, settlement
    within: str | None = None  # the area one level up; None for a country
    codes: tuple[str, ...] = ()  # p-codes and other codes the area is known by
    aliases: tuple[str, ...] = ()  # other names (spellings, towns it includes)
    postcodes: tuple[str, ...] = ()  # postcode areas (CF) or districts (CF10)

    @property
    def names(self) -> frozenset[str]:
        """Every folded name and code the area answers to."""
        return frozenset(fold(n) for n in (self.id, self.name, *self.codes, *self.aliases))


@dataclass(frozen=True)
class Contact:
    """The contact point: a team or single point of contact (SPOC), not a person's case."""

    team: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Eligibility:
    """Who a service is for; an empty list or a missing bound means anyone."""

    min_age: int | None = None
    max_age: int | None = None
    sex: frozenset[str] = frozenset()
    profiles: frozenset[str] = frozenset()
    nationalities: frozenset[str] = frozenset()
    legal_status: frozenset[str] = frozenset()
    description: str | None = None

    def admits_age(self, age: int) -> bool:
        return ((self.min_age is None or self.min_age <= age)
                and (self.max_age is None or age <= self.max_age))

    def admits_sex(self, sex: str) -> bool:
        return not self.sex or sex in self.sex

    def admits_profile(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles


@dataclass(frozen=True)
class AvailabilityStatement:
    """What someone said of a service's availability, and when."""

    status: Availability
    updated_at: datetime
    note: str | None = None
    source: str = "directory"  # "directory" (the file) or "organisation" (through the API)


@dataclass(frozen=True)
class Location:
    """A place an organisation works from (HSDS location)."""

    id: str
    name: str
    area: str
    address: str | None = None


@dataclass(frozen=True)
class Hours:
    """Opening hours on each opening day, local time, as written (HH:MM)."""

    opens: str
    closes: str


@dataclass(frozen=True)
class Service:
    """One service of one organisation, in the areas it serves (HSDS service)."""

    id: str
    organization: str
    type: str  # a code of contracts/codes/service-type.json
    name: str
    areas: tuple[str, ...]
    availability: AvailabilityStatement
    description: str | None = None
    at: tuple[str, ...] = ()  # location ids (HSDS service_at_location)
    eligibility: Eligibility = Eligibility()
    languages: tuple[str, ...] = ()
    contact: Contact | None = None
    calendar: str | None = None
    hours: Hours | None = None


@dataclass(frozen=True)
class Organization:
    """An organisation offering services: a partner, or one reached by other means."""

    id: str
    name: str
    description: str
    partner: str | None = None  # the CaseBridge partner a referral reaches it through
    website: str | None = None
    email: str | None = None
    contact: Contact | None = None
    locations: tuple[Location, ...] = ()
    services: tuple[Service, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One directory file: a country operation's areas and organisations."""

    id: str
    title: str
    country: str
    country_name: str
    areas: tuple[Area, ...]
    organizations: tuple[Organization, ...]
    calendar: str | None = None
    file: str = ""
    content_hash: str = ""

    @property
    def root(self) -> Area:
        """The country itself, the area every other area of the file lies within."""
        return Area(id=self.country.lower(), name=self.country_name, country=self.country,
                    level="country")


@dataclass(frozen=True)
class Conflict:
    """A file left out of the directory because it repeats an id another file holds."""

    file: str
    kind: str
    id: str
    other_file: str


@dataclass
class Directory:
    """Every operation in force, merged: areas, organisations and services by id."""

    operations: list[Operation]
    areas: dict[str, Area] = field(default_factory=dict)
    organizations: dict[str, Organization] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    @classmethod
    def merge(cls, operations: Iterable[Operation]) -> Directory:
        """The operations' contents together; a file repeating another's id is left out."""
        directory = cls(operations=[])
        owners: dict[tuple[str, str], str] = {}
        for operation in sorted(operations, key=lambda o: o.file):
            ids = [*(("area", a.id) for a in operation.areas),
                   *(("organization", o.id) for o in operation.organizations),
                   *(("service", s.id) for o in operation.organizations for s in o.services),
                   *(("location", loc.id) for o in operation.organizations
                     for loc in o.locations)]
            clash = next((key for key in ids if key in owners), None)
            if clash is not None:
                directory.conflicts.append(Conflict(operation.file, clash[0], clash[1],
                                                    owners[clash]))
                continue
            owners.update((key, operation.file) for key in ids)
            directory.operations.append(operation)
            root = operation.root
            directory.areas.setdefault(root.id, root)
            directory.areas.update((a.id, a) for a in operation.areas)
            for organization in operation.organizations:
                directory.organizations[organization.id] = organization
                directory.services.update((s.id, s) for s in organization.services)
        return directory

    def with_availability(self, updates: Mapping[str, AvailabilityStatement]
                          ) -> Directory:
        """The same directory with each update applied where it is newer than the file's."""
        services = dict(self.services)
        for service_id, update in updates.items():
            service = services.get(service_id)
            if service is not None and update.updated_at > service.availability.updated_at:
                services[service_id] = replace(service, availability=update)
        if services == self.services:
            return self
        organizations = {oid: replace(o, services=tuple(services[s.id] for s in o.services))
                         for oid, o in self.organizations.items()}
        return Directory(operations=self.operations, areas=self.areas,
                         organizations=organizations, services=services,
                         conflicts=self.conflicts)

    # -- areas ------------------------------------------------------------------------------

    def lineage(self, area_id: str) -> list[Area]:
        """The area and every area it lies within, nearest first (empty if unknown)."""
        found: list[Area] = []
        current = self.areas.get(area_id)
        while current is not None and current not in found:
            found.append(current)
            up = current.within or (current.country.lower() if current.level != "country"
                                    else None)
            current = self.areas.get(up) if up else None
        return found

    def contains(self, outer: str, inner: str) -> bool:
        """Whether area `inner` is `outer` or lies within it."""
        return any(a.id == outer for a in self.lineage(inner))

    def find_area(self, text: str) -> list[Area]:
        """The areas whose id, name, alias or code is `text` (an id wins outright)."""
        if text in self.areas:
            return [self.areas[text]]
        wanted = fold(text)
        return [a for a in self.areas.values() if wanted and wanted in a.names]

    def resolve(self, names: Sequence[str], countries: Iterable[str] = ()) -> Area | None:
        """The most precise area a person's place names point to (broadest first, e.g.
        admin1, admin2, admin3, settlement), within `countries` when given.

        Each name narrows the area found so far; a name the directory does not know is
        passed over (a county may be unknown while the town is known), and a name that
        matches more than one area equally closely stops the search where it is.
        """
        allowed = {c.upper() for c in countries}
        current: Area | None = None
        for name in names:
            matches = [a for a in self.find_area(name)
                       if (not allowed or a.country in allowed)
                       and (current is None or self.contains(current.id, a.id))]
            if not matches:
                continue
            shallowest = min(len(self.lineage(a.id)) for a in matches)
            nearest = [a for a in matches if len(self.lineage(a.id)) == shallowest]
            if len(nearest) > 1:
                break
            current = nearest[0]
        return current

    def by_postcode(self, postcode: str) -> Area | None:
        """The area a UK postcode (or its outward code) lies in: the district (CF10) if an
        area lists it, else the postcode area (CF)."""
        outward = outward_code(postcode)
        if not outward:
            return None
        letters = re.match(r"[A-Z]+", outward)
        for wanted in (outward, letters.group(0) if letters else ""):
            found = [a for a in self.areas.values() if wanted in a.postcodes]
            if len(found) == 1:
                return found[0]
        return None

    # -- organisations and services ---------------------------------------------------------

    def organizations_of(self, partner_id: str) -> list[Organization]:
        """The organisations a referral to this partner reaches."""
        return [o for o in self.organizations.values() if o.partner == partner_id]

    def organization_of(self, service: Service) -> Organization:
        return self.organizations[service.organization]

    def operation_of(self, service: Service) -> Operation | None:
        return next((op for op in self.operations
                     if any(o.id == service.organization for o in op.organizations)), None)


def outward_code(postcode: str) -> str:
    """The outward code of a UK postcode ("CF10 1AA" → "CF10"; "CF10" stays), upper case."""
    compact = re.sub(r"\s+", "", postcode.upper())
    if re.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}", compact):
        return compact[:-3]
    if re.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]?|[A-Z]{1,2}", compact):
        return compact
    return ""
