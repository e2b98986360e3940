"""Routes of the service directory: search services, a referral pathway, availability."""

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.api.deps import ContractsDep, DirectoryDep, PartnerDep, SessionDep
from gateway.contracts import Contracts
from gateway.deadlines.calendars import next_working_day
from gateway.directory.availability import update_availability
from gateway.directory.model import Area, Availability, Contact, Directory, Service
from gateway.directory.registry import DirectoryRegistry
from gateway.directory.search import Match, Need, pathway, search
from gateway.errors import FieldError, MalformedRequest, NotFound
from gateway.store.models import utcnow

router = APIRouter(tags=["directory"])


class AreaOut(BaseModel):
    id: str
    name: str
    level: str | None
    country: str
    within: list[str] = Field(description="The areas it lies within, nearest first (ids)")


class ContactOut(BaseModel):
    team: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class OrganizationRef(BaseModel):
    id: str
    name: str
    partner: str | None = Field(description="The CaseBridge partner a referral reaches it "
                                "through; null: reached by other means (phone, e-mail)")


class AvailabilityOut(BaseModel):
    status: Availability
    updated_at: datetime
    note: str | None
    source: str = Field(description="directory (its file) or organisation (through the API)")


class EligibilityOut(BaseModel):
    min_age: int | None
    max_age: int | None
    sex: list[str]
    profiles: list[str]
    nationalities: list[str]
    legal_status: list[str]
    description: str | None


class LocationOut(BaseModel):
    id: str
    name: str
    area: str
    address: str | None


class OpeningOut(BaseModel):
    calendar: str | None = Field(description="The working-day calendar of its opening days")
    opens: str | None
    closes: str | None
    next_open_day: date | None = Field(description="Today or the next day it is open")


class ServiceOut(BaseModel):
    id: str
    type: str
    type_label: str
    name: str
    description: str | None
    organization: OrganizationRef
    areas: list[AreaOut]
    area_match: str | None = Field(
        default=None, description="Against the area searched: same, wider (it serves an "
        "area including it) or part (it serves only part of it)")
    locations: list[LocationOut]
    eligibility: EligibilityOut
    languages: list[str]
    contact: ContactOut | None
    availability: AvailabilityOut
    opening: OpeningOut


class ServiceSearch(BaseModel):
    area: AreaOut | None = Field(description="The area searched, as the directory knows it")
    items: list[ServiceOut]


class PathwayCell(BaseModel):
    service: str
    name: str
    availability: Availability
    area_match: str | None
    contact: ContactOut | None


class PathwayRow(BaseModel):
    organization: OrganizationRef
    services: dict[str, list[PathwayCell]] = Field(description="By service type (the columns)")


class CodeOut(BaseModel):
    code: str
    label: str


class PathwayOut(BaseModel):
    area: AreaOut | None
    profile: str | None
    service_types: list[CodeOut] = Field(description="The columns, in the code list's order")
    rows: list[PathwayRow] = Field(description="One row per organisation, by name")


class AvailabilityIn(BaseModel):
    status: Availability
    note: str | None = Field(default=None, max_length=500,
                             description="About the service only (e.g. full until March)")


AreaQuery = Annotated[str | None, Query(max_length=100, description=(
    "An area: its id, name, other name or code (e.g. et-gambella, Gambella, ET12)"))]
ProfileQuery = Annotated[str | None, Query(max_length=63, description=(
    "A profile code (contracts/codes/profile.json), e.g. gbv_survivor"))]


@router.get("/v1/directory/services", response_model=ServiceSearch,
            summary="Search the service directory")
def search_services(
    session: SessionDep, _: PartnerDep, registry: DirectoryDep, contracts: ContractsDep,
    service_type: Annotated[str | None, Query(max_length=63, description=(
        "A service type code (contracts/codes/service-type.json)"))] = None,
    area: AreaQuery = None,
    postcode: Annotated[str | None, Query(max_length=10, description=(
        "A UK postcode or its outward code (e.g. CF10 1AA): the probation delivery unit "
        "that covers it, instead of area"))] = None,
    age: Annotated[int | None, Query(ge=0, le=130)] = None,
    sex: Annotated[str | None, Query(max_length=20, description="female or male")] = None,
    profile: ProfileQuery = None,
    language: Annotated[str | None, Query(pattern="^[a-z]{2,3}$",
                                          description="An ISO 639 code (e.g. ar)")] = None,
) -> ServiceSearch:
    """Services matching the need, ranked: suspended last; then the same area, then
    services covering a wider area (nearest first), then those covering part of it; then
    accepting before waitlist. Given a postcode, the probation delivery unit covering it
    and its single point of contact (SPOC) team."""
    directory = registry.view(session)
    _check_code(contracts, "service-type", "service_type", service_type)
    _check_code(contracts, "sex", "sex", sex)
    _check_code(contracts, "profile", "profile", profile)
    if area is not None and postcode is not None:
        raise _bad("/postcode", "one-of", "give an area or a postcode, not both")
    where = (_area(directory, area) if area is not None
             else _postcode(directory, postcode) if postcode is not None else None)
    found = search(directory, Need(service_type=service_type, area=where, age=age, sex=sex,
                                   profile=profile, language=language))
    return ServiceSearch(area=_area_out(directory, where) if where else None,
                         items=[_service_out(registry, directory, contracts, m.service, m)
                                for m in found])


@router.get("/v1/directory/services/{service_id}", response_model=ServiceOut,
            summary="One service of the directory")
def get_service(service_id: str, session: SessionDep, _: PartnerDep, registry: DirectoryDep,
                contracts: ContractsDep) -> ServiceOut:
    directory = registry.view(session)
    service = directory.services.get(service_id)
    if service is None:
        raise NotFound("service")
    return _service_out(registry, directory, contracts, service, None)


@router.put("/v1/directory/services/{service_id}/availability", response_model=ServiceOut,
            summary="Say whether your service takes referrals now")
def put_availability(service_id: str, body: AvailabilityIn, session: SessionDep,
                     partner: PartnerDep, registry: DirectoryDep,
                     contracts: ContractsDep) -> ServiceOut:
    """The organisation offering the service (through its partner) says it is accepting,
    has a waiting list, or is suspended. It holds until the directory file says something
    newer. A suspended service is refused at submission; a waiting list is a warning."""
    update_availability(session=session, directory=registry.view(session), partner=partner,
                        service_id=service_id, status=body.status, note=body.note,
                        now=utcnow())
    session.commit()
    directory = registry.view(session)
    return _service_out(registry, directory, contracts, directory.services[service_id], None)


@router.get("/v1/pathways", response_model=PathwayOut, summary="The referral pathway of an area")
def get_pathway(session: SessionDep, _: PartnerDep, registry: DirectoryDep,
                contracts: ContractsDep, area: AreaQuery = None,
                profile: ProfileQuery = None) -> PathwayOut:
    """The coordination matrix for a profile in an area: organisation rows, service-type
    columns, each cell the organisation's services of that type there for that profile."""
    directory = registry.view(session)
    _check_code(contracts, "profile", "profile", profile)
    where = _area(directory, area) if area is not None else None
    labels = contracts.labels("service-type")
    drawn = pathway(directory, area=where, profile=profile, type_order=labels)
    return PathwayOut(
        area=_area_out(directory, where) if where else None, profile=profile,
        service_types=[CodeOut(code=t, label=labels[t]) for t in drawn.service_types],
        rows=[PathwayRow(organization=_org_ref(row.organization), services={
            t: [PathwayCell(service=m.service.id, name=m.service.name,
                            availability=m.service.availability.status,
                            area_match=m.area_match.value if m.area_match else None,
                            contact=_contact(m.service.contact or m.organization.contact))
                for m in matches] for t, matches in row.cells.items()})
            for row in drawn.rows])


# ---------------------------------------------------------------------------- helpers


def _check_code(contracts: Contracts, code_list: str, parameter: str, value: str | None
                ) -> None:
    if value is not None and value not in contracts.codes(code_list):
        raise _bad(f"/{parameter}", "enum", f"must be a code of {code_list}: "
                   f"{', '.join(contracts.codes(code_list))}")


def _area(directory: Directory, text: str) -> Area:
    found = directory.find_area(text)
    if not found:
        raise _bad("/area", "known-area", "no area of the directory has this id, name or code")
    if len(found) > 1:
        raise _bad("/area", "one-area", "more than one area answers to this name: give one "
                   f"of the ids {', '.join(sorted(a.id for a in found))}")
    return found[0]


def _postcode(directory: Directory, postcode: str) -> Area:
    found = directory.by_postcode(postcode)
    if found is None:
        raise _bad("/postcode", "known-postcode", "no area of the directory covers this "
                   "postcode (areas list postcode areas such as CF, or districts such as CF10)")
    return found


def _bad(pointer: str, rule: str, detail: str) -> MalformedRequest:
    return MalformedRequest("A query parameter is not valid.", slug="invalid-parameter",
                            errors=[FieldError(pointer, rule, detail)])


def _area_out(directory: Directory, area: Area) -> AreaOut:
    return AreaOut(id=area.id, name=area.name, level=area.level, country=area.country,
                   within=[a.id for a in directory.lineage(area.id)[1:]])


def _org_ref(organization: Any) -> OrganizationRef:
    return OrganizationRef(id=organization.id, name=organization.name,
                           partner=organization.partner)


def _contact(contact: Contact | None) -> ContactOut | None:
    return ContactOut(team=contact.team, name=contact.name, email=contact.email,
                      phone=contact.phone) if contact else None


def _service_out(registry: DirectoryRegistry, directory: Directory, contracts: Contracts,
                 service: Service, match: Match | None) -> ServiceOut:
    organization = directory.organization_of(service)
    operation = directory.operation_of(service)
    calendar_id = service.calendar or (operation.calendar if operation else None)
    rules = service.eligibility
    return ServiceOut(
        id=service.id, type=service.type,
        type_label=contracts.labels("service-type")[service.type], name=service.name,
        description=service.description, organization=_org_ref(organization),
        areas=[_area_out(directory, directory.areas[a]) for a in service.areas
               if a in directory.areas],
        area_match=match.area_match.value if match and match.area_match else None,
        locations=[LocationOut(id=loc.id, name=loc.name, area=loc.area, address=loc.address)
                   for loc in organization.locations if loc.id in service.at],
        eligibility=EligibilityOut(
            min_age=rules.min_age, max_age=rules.max_age, sex=sorted(rules.sex),
            profiles=sorted(rules.profiles), nationalities=sorted(rules.nationalities),
            legal_status=sorted(rules.legal_status), description=rules.description),
        languages=list(service.languages),
        contact=_contact(service.contact or organization.contact),
        availability=AvailabilityOut(status=service.availability.status,
                                     updated_at=service.availability.updated_at,
                                     note=service.availability.note,
                                     source=service.availability.source),
        opening=OpeningOut(calendar=calendar_id,
                           opens=service.hours.opens if service.hours else None,
                           closes=service.hours.closes if service.hours else None,
                           next_open_day=_next_open_day(registry, calendar_id)))


def _next_open_day(registry: DirectoryRegistry, calendar_id: str | None) -> date | None:
    calendar = registry.calendars.get(calendar_id) if calendar_id else None
    if calendar is None:
        return None
    today = calendar.local_date(utcnow())
    return today if calendar.is_working_day(today) else next_working_day(today, calendar)
