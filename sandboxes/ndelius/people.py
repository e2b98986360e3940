"""People on probation: records, their offender manager, contacts, and re-allocation."""

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandboxes.ndelius import codes
from sandboxes.ndelius.errors import Conflict, NotFound, Unprocessable
from sandboxes.ndelius.events import raise_event
from sandboxes.ndelius.models import Contact, Offender, OffenderManager
from sandboxes.ndelius.organisation import (
    Context,
    Manager,
    checked_code,
    manager_json,
    pair,
    resolve_manager,
    same_provider,
)
from sandboxes.ndelius.schemas import Allocation, NewPerson
from sandboxes.ndelius.store import iso, now


def find_person(session: Session, crn: str) -> Offender:
    person = session.scalar(select(Offender).where(Offender.crn == crn))
    if person is None:
        raise NotFound("Person", "crn", crn)
    return person


def active_manager(person: Offender) -> OffenderManager:
    return next(m for m in person.managers if m.active_flag)


def current_manager(person: Offender) -> Manager:
    row = active_manager(person)
    return Manager(provider=row.provider_code, team=row.team_code, staff=row.staff_code)


def create_person(ctx: Context, body: NewPerson) -> Offender:
    """Record a person (e.g. one transferring in from another provider) with their manager."""
    session = ctx.session
    if session.scalar(select(Offender.offender_id).where(Offender.crn == body.crn)) is not None:
        raise Conflict(f"Person with crn of {body.crn} already exists", error_code="PERSON_EXISTS")
    checked_code(body.gender, codes.GENDERS, "Gender")
    checked_code(body.rosh_level, codes.ROSH_LEVELS, "RoSH level")
    if body.mappa:
        checked_code(body.mappa.category, codes.MAPPA_CATEGORIES, "MAPPA category")
        checked_code(body.mappa.level, codes.MAPPA_LEVELS, "MAPPA level")
    manager = resolve_manager(session, team=body.manager.team, staff=body.manager.staff,
                              provider_code=body.manager.provider)
    moment = now()
    person = Offender(
        crn=body.crn, noms_number=body.noms_number, forename=body.name.forename,
        middle_name=body.name.middle_name, surname=body.name.surname,
        date_of_birth=body.date_of_birth, gender_code=body.gender,
        pnc_number=body.pnc_number, rosh_level=body.rosh_level,
        mappa_category=body.mappa.category if body.mappa else None,
        mappa_level=body.mappa.level if body.mappa else None, created_datetime=moment)
    person.managers.append(OffenderManager(
        provider_code=manager.provider, team_code=manager.team, staff_code=manager.staff,
        allocation_date=moment, allocation_reason="IN1", end_date=None, active_flag=True))
    session.add(person)
    session.flush()
    raise_event(ctx, event_type=codes.ENGAGEMENT_CREATED,
                description="A new person on probation has been recorded", person=person,
                detail_path=f"/person/{person.crn}", additional={"createdBy": ctx.user})
    return person


def move_manager(ctx: Context, person: Offender, new: Manager, *, reason: str,
                 nsi_id: int | None = None) -> bool:
    """Rotate the offender manager (and so the responsible officer) to `new`.

    End-dates the active row, adds the new one, writes ETOM and ROC contacts and raises
    OFFENDER_MANAGER_CHANGED. A request for the manager already in place changes nothing.
    """
    old_row = active_manager(person)
    old = Manager(old_row.provider_code, old_row.team_code, old_row.staff_code)
    if old.team == new.team and old.staff == new.staff:
        return False
    moment = now()
    old_row.end_date, old_row.active_flag = moment, False
    person.managers.append(OffenderManager(
        provider_code=new.provider, team_code=new.team, staff_code=new.staff,
        allocation_date=moment, allocation_reason=reason, end_date=None, active_flag=True))
    reason_text = codes.ALLOCATION_REASONS[reason].description
    details = (f"New Details: {new.provider} / {new.team} / {new.staff}\n"
               f"Previous Details: {old.provider} / {old.team} / {old.staff}\n"
               f"Allocation Reason: {reason_text}")
    for contact_type in (codes.ETOM, codes.ROC):
        add_contact(ctx, person, contact_type.code, notes=details, nsi_id=nsi_id)
    raise_event(ctx, event_type=codes.OFFENDER_MANAGER_CHANGED,
                description="The offender manager of a person on probation has changed",
                person=person, detail_path=f"/person/{person.crn}",
                additional={"offenderId": person.offender_id, "sourceId": nsi_id,
                            "previousProvider": old.provider, "provider": new.provider,
                            "team": new.team, "staff": new.staff, "allocationReason": reason})
    return True


def allocate(ctx: Context, crn: str, body: Allocation) -> Offender:
    """Re-allocate a person within their provider (moving providers takes a transfer: 409)."""
    person = find_person(ctx.session, crn)
    checked_code(body.reason, codes.ALLOCATION_REASONS, "Allocation reason")
    if body.reason == "TRF":
        raise Unprocessable("Allocation reason TRF is set by completing a case transfer",
                            error_code="INVALID_CODE")
    new = resolve_manager(ctx.session, team=body.team, staff=body.staff)
    same_provider(current_manager(person).provider, new.provider)
    move_manager(ctx, person, new, reason=body.reason)
    return person


def add_contact(ctx: Context, person: Offender, contact_type: str, *, notes: str | None,
                nsi_id: int | None = None) -> None:
    """A contact the workflow writes (a status change, a transfer), for the person's manager."""
    manager = active_manager(person)
    ctx.session.add(Contact(offender_id=person.offender_id, nsi_id=nsi_id,
                            contact_type=contact_type, contact_date=now(), notes=notes,
                            provider_code=manager.provider_code, team_code=manager.team_code,
                            staff_code=manager.staff_code, created_by=ctx.user))


def person_json(session: Session, person: Offender) -> dict[str, Any]:
    row = active_manager(person)
    return {
        "crn": person.crn,
        "nomsNumber": person.noms_number,
        "name": {"forename": person.forename, "middleName": person.middle_name,
                 "surname": person.surname},
        "dateOfBirth": person.date_of_birth.isoformat(),
        "gender": pair(person.gender_code, codes.GENDERS),
        "pncNumber": person.pnc_number,
        "roshLevel": pair(person.rosh_level, codes.ROSH_LEVELS),
        "mappa": {"category": pair(person.mappa_category, codes.MAPPA_CATEGORIES),
                  "level": pair(person.mappa_level, codes.MAPPA_LEVELS)}
        if person.mappa_category else None,
        "manager": {
            **manager_json(session, Manager(row.provider_code, row.team_code, row.staff_code)),
            "allocationDate": iso(row.allocation_date),
            "allocationReason": pair(row.allocation_reason, codes.ALLOCATION_REASONS),
        },
    }


def manager_history_json(session: Session, person: Offender) -> list[dict[str, Any]]:
    return [{**manager_json(session, Manager(m.provider_code, m.team_code, m.staff_code)),
             "allocationDate": iso(m.allocation_date), "endDate": iso(m.end_date),
             "allocationReason": pair(m.allocation_reason, codes.ALLOCATION_REASONS),
             "active": m.active_flag} for m in person.managers]


def people_page(session: Session, *, page: int, size: int) -> dict[str, Any]:
    """The people this sandbox holds, as a Spring page."""
    total = session.scalar(select(func.count(Offender.offender_id))) or 0
    rows = session.scalars(select(Offender).order_by(Offender.offender_id)
                           .offset(page * size).limit(size))
    return spring_page([person_json(session, p) for p in rows], page=page, size=size,
                       total=total)


def spring_page(content: list[dict[str, Any]], *, page: int, size: int,
                total: int) -> dict[str, Any]:
    """The Spring Data `Page` shape the HMPPS APIs answer lists in."""
    pages = (total + size - 1) // size
    return {"content": content, "totalElements": total, "totalPages": pages, "number": page,
            "size": size, "numberOfElements": len(content), "first": page == 0,
            "last": page >= pages - 1}
