"""Finding services: who offers what, for whom, where, and in which order to show them.

Pure functions over a `Directory`. A service matches a need when its type is the one
sought, one of its areas overlaps the person's area, and its eligibility admits the
person's age, sex and profile (a bound or list the directory leaves out admits anyone).
Matches are ranked: suspended services last; then by area (the same area, then services
covering a wider area, nearest first, then services covering only part of it); then
accepting before waitlist; then by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from gateway.directory.model import (
    Area,
    Availability,
    Directory,
    Organization,
    Service,
)


class AreaMatch(StrEnum):
    """How a service's areas relate to the area asked about."""

    SAME = "same"  # it serves exactly that area
    WIDER = "wider"  # it serves an area that includes it
    PART = "part"  # it serves only part of it (an area within it)


@dataclass(frozen=True)
class Need:
    """What is sought, and for whom; None leaves that out of the search."""

    service_type: str | None = None
    area: Area | None = None
    age: int | None = None
    sex: str | None = None
    profile: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Match:
    """A service that answers a need, with how it was matched."""

    service: Service
    organization: Organization
    area_match: AreaMatch | None
    area_distance: int  # levels between the area asked and the service's nearest area


_AVAILABILITY_ORDER = {Availability.ACCEPTING: 0, Availability.WAITLIST: 1,
                       Availability.SUSPENDED: 2}
_AREA_ORDER = {AreaMatch.SAME: 0, AreaMatch.WIDER: 1, AreaMatch.PART: 2, None: 0}


def area_match(directory: Directory, service: Service, area: Area
               ) -> tuple[AreaMatch, int] | None:
    """How the service's areas meet `area`, and how far (in levels); None if they do not."""
    best: tuple[AreaMatch, int] | None = None
    for served in service.areas:
        if served == area.id:
            found = (AreaMatch.SAME, 0)
        elif directory.contains(served, area.id):
            found = (AreaMatch.WIDER, [a.id for a in directory.lineage(area.id)].index(served))
        elif directory.contains(area.id, served):
            found = (AreaMatch.PART, [a.id for a in directory.lineage(served)].index(area.id))
        else:
            continue
        if best is None or (_AREA_ORDER[found[0]], found[1]) < (_AREA_ORDER[best[0]], best[1]):
            best = found
    return best


def eligible(service: Service, need: Need) -> bool:
    """Whether the service's eligibility admits the person described by `need`."""
    rules = service.eligibility
    return ((need.age is None or rules.admits_age(need.age))
            and (need.sex is None or rules.admits_sex(need.sex))
            and (need.profile is None or rules.admits_profile(need.profile))
            and (need.language is None or not service.languages
                 or need.language in service.languages))


def search(directory: Directory, need: Need, *, leave_out: Iterable[str] = ()) -> list[Match]:
    """The services answering `need`, best first (see the module docstring for the order);
    services of the organisations in `leave_out` are not listed."""
    skipped = set(leave_out)
    matches = []
    for service in directory.services.values():
        if service.organization in skipped:
            continue
        if need.service_type is not None and service.type != need.service_type:
            continue
        if not eligible(service, need):
            continue
        where: tuple[AreaMatch, int] | None = None
        if need.area is not None:
            where = area_match(directory, service, need.area)
            if where is None:
                continue
        matches.append(Match(service, directory.organization_of(service),
                             where[0] if where else None, where[1] if where else 0))
    return sorted(matches, key=_rank)


def _rank(match: Match) -> tuple[int, int, int, int, str, str]:
    status = match.service.availability.status
    return (status is Availability.SUSPENDED, _AREA_ORDER[match.area_match],
            match.area_distance, _AVAILABILITY_ORDER[status], match.organization.name.casefold(),
            match.service.name.casefold())


@dataclass
class Row:
    """One organisation of a pathway, and its services by service type."""

    organization: Organization
    cells: dict[str, list[Match]] = field(default_factory=dict)


@dataclass(frozen=True)
class Pathway:
    """The referral pathway of an area for a profile: organisations × service types."""

    area: Area | None
    profile: str | None
    service_types: list[str]  # the columns, in the code list's order
    rows: list[Row]


def pathway(directory: Directory, *, area: Area | None, profile: str | None,
            type_order: Iterable[str]) -> Pathway:
    """The matrix a coordination group prints: organisation rows, service-type columns,
    each cell the organisation's services of that type for this profile in this area."""
    rows: dict[str, Row] = {}
    for match in search(directory, Need(area=area, profile=profile)):
        row = rows.setdefault(match.organization.id, Row(match.organization))
        row.cells.setdefault(match.service.type, []).append(match)
    used = {t for row in rows.values() for t in row.cells}
    return Pathway(area=area, profile=profile,
                   service_types=[t for t in type_order if t in used],
                   rows=sorted(rows.values(), key=lambda r: r.organization.name.casefold()))
