"""Contacts: the person's contact log, and the alerts it puts on a manager's list.

After the Delius API (`POST /v1/contact` with a NewContact, `PATCH /v1/contact/{id}`) and
the `contact` / `contact_alert` tables: a contact is about one person (by CRN), optionally
one of their NSIs, and is for a provider, team and staff member — by default whoever
manages the NSI, else the person. `alert: true` puts it on that staff member's alert list
(only a contact type whose `alertAllowed` is set may, see `/reference-data`);
`PATCH /contact/{id}` with `{"alert": false}` clears it. An `externalReference` (an
integration's own id for the contact) is unique: a second contact with one already taken
is a 409 `DUPLICATE_EXTERNAL_REFERENCE`, so an integration that retries makes one contact.
The Delius API patches with JSON Patch; the sandbox takes the merge-style body its other
PATCH endpoints take.
"""

from datetime import datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandboxes.ndelius import codes
from sandboxes.ndelius.errors import Conflict, NotFound, Unprocessable
from sandboxes.ndelius.models import Contact, Nsi, Offender
from sandboxes.ndelius.organisation import Context, Manager, checked_code, resolve_manager
from sandboxes.ndelius.people import active_manager, find_person
from sandboxes.ndelius.schemas import ContactPatch, NewContact
from sandboxes.ndelius.store import LONDON, iso, now


def create_contact(ctx: Context, body: NewContact) -> Contact:
    """Record a contact, as an alert on the manager's list when `alert` is set."""
    session = ctx.session
    person = find_person(session, body.offender_crn)
    contact_type = checked_code(body.type, codes.CONTACT_TYPES, "Contact type")
    assert contact_type is not None
    if body.alert and contact_type not in codes.ALERT_CONTACT_TYPES:
        raise Unprocessable(f"Contact type {contact_type} cannot be an alert",
                            error_code="ALERT_NOT_ALLOWED")
    nsi = _nsi_of(session, person, body.nsi_id)
    if body.external_reference is not None:
        taken = session.scalar(select(Contact.contact_id).where(
            Contact.external_reference == body.external_reference))
        if taken is not None:
            raise Conflict(f"Contact {taken} already has this external reference",
                           error_code="DUPLICATE_EXTERNAL_REFERENCE")
    manager = _for_whom(session, person, nsi, body)
    moment = now() if body.contact_date is None else datetime.combine(
        body.contact_date, body.start_time or time(0), tzinfo=LONDON)
    contact = Contact(offender_id=person.offender_id, nsi_id=body.nsi_id,
                      contact_type=contact_type, contact_date=moment,
                      notes=body.notes, description=body.description,
                      provider_code=manager.provider, team_code=manager.team,
                      staff_code=manager.staff, alert_active=body.alert,
                      sensitive=body.sensitive, external_reference=body.external_reference,
                      created_by=ctx.user)
    session.add(contact)
    session.flush()
    return contact


def _nsi_of(session: Session, person: Offender, nsi_id: int | None) -> Nsi | None:
    if nsi_id is None:
        return None
    nsi = session.get(Nsi, nsi_id)
    if nsi is None or nsi.soft_deleted:
        raise NotFound("NSI", "id", nsi_id)
    if nsi.offender_id != person.offender_id:
        raise Unprocessable(f"NSI {nsi_id} is about another person",
                            error_code="NSI_NOT_FOR_PERSON")
    return nsi


def _for_whom(session: Session, person: Offender, nsi: Nsi | None,
              body: NewContact) -> Manager:
    """The provider, team and staff named, else the NSI's manager, else the person's."""
    if body.team is not None:
        return resolve_manager(session, team=body.team, staff=body.staff,
                               provider_code=body.provider)
    if body.staff is not None or body.provider is not None:
        raise Unprocessable("A contact names its team when it names a provider or staff",
                            error_code="TEAM_REQUIRED")
    row = (next(m for m in nsi.managers if m.active_flag) if nsi is not None
           else active_manager(person))
    return Manager(row.provider_code, row.team_code, row.staff_code)


def find_contact(session: Session, contact_id: int) -> Contact:
    found = session.get(Contact, contact_id)
    if found is None:
        raise NotFound("Contact", "id", contact_id)
    return found


def patch_contact(ctx: Context, contact_id: int, body: ContactPatch) -> Contact:
    """Raise or clear the contact's alert; the same value again changes nothing."""
    contact = find_contact(ctx.session, contact_id)
    if body.alert == contact.alert_active:
        return contact
    if body.alert and contact.contact_type not in codes.ALERT_CONTACT_TYPES:
        raise Unprocessable(f"Contact type {contact.contact_type} cannot be an alert",
                            error_code="ALERT_NOT_ALLOWED")
    contact.alert_active = body.alert
    contact.row_version += 1
    return contact


def contact_json(session: Session, contact: Contact) -> dict[str, Any]:
    """A contact in the Delius API's ContactDto shape (codes as plain strings)."""
    person = session.get(Offender, contact.offender_id)
    known = codes.CONTACT_TYPES.get(contact.contact_type)
    return {"id": contact.contact_id, "offenderCrn": person.crn if person else None,
            "nsiId": contact.nsi_id, "type": contact.contact_type,
            "typeDescription": known.description if known else contact.contact_type,
            "date": iso(contact.contact_date), "alert": contact.alert_active,
            "sensitive": contact.sensitive, "notes": contact.notes,
            "description": contact.description,
            "provider": contact.provider_code, "team": contact.team_code,
            "staff": contact.staff_code, "externalReference": contact.external_reference,
            "createdBy": contact.created_by}


def contacts_json(session: Session, crn: str, *, nsi_id: int | None = None,
                  external_reference: str | None = None) -> list[dict[str, Any]]:
    """The person's contacts, oldest first, optionally of one NSI or one external reference."""
    person = find_person(session, crn)
    query = select(Contact).where(Contact.offender_id == person.offender_id)
    if nsi_id is not None:
        query = query.where(Contact.nsi_id == nsi_id)
    if external_reference is not None:
        query = query.where(Contact.external_reference == external_reference)
    return [contact_json(session, c)
            for c in session.scalars(query.order_by(Contact.contact_id))]
