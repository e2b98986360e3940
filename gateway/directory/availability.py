"""Availability kept by the organisations themselves: accepting, waitlist or suspended.

IM officers keep each service's availability in its directory file, with the time it was
said; an organisation may change it through the API (`PUT
/v1/directory/services/{id}/availability`), for its own services only. The newest word
wins: an update through the API holds until the file says something newer.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.directory.model import Availability, AvailabilityStatement, Directory, Service
from gateway.errors import FieldError, Forbidden, NotFound
from gateway.protection import audit
from gateway.store.models import Partner, ServiceAvailability

log = structlog.get_logger()


def availability_updates(session: Session) -> dict[str, AvailabilityStatement]:
    """What organisations said of their services' availability through the API."""
    return {row.service_id: AvailabilityStatement(Availability(row.status), row.updated_at,
                                                  row.note, source="organisation")
            for row in session.scalars(select(ServiceAvailability))}


def update_availability(*, session: Session, directory: Directory, partner: Partner,
                        service_id: str, status: Availability, note: str | None,
                        now: datetime) -> AvailabilityStatement:
    """Record the organisation's word on its service's availability; only the partner the
    organisation is reached through may give it."""
    service: Service | None = directory.services.get(service_id)
    if service is None:
        raise NotFound("service")
    organization = directory.organization_of(service)
    if organization.partner != partner.id:
        raise Forbidden("Only the organisation offering a service updates its availability.",
                        [FieldError("", "own-service",
                                    f"service '{service_id}' is offered by "
                                    f"'{organization.id}', not reached through '{partner.id}'")])
    row = session.get(ServiceAvailability, service_id) or ServiceAvailability(
        service_id=service_id)
    row.status, row.note, row.updated_at, row.updated_by = status.value, note, now, partner.id
    session.add(row)
    audit.record(session, actor=f"partner:{partner.id}", action="directory.availability",
                 partner_id=partner.id,
                 detail={"service": service_id, "status": status.value,
                         "was": service.availability.status.value})
    log.info("service_availability_updated", service=service_id, partner=partner.id,
             status=status.value, was=service.availability.status.value)
    return AvailabilityStatement(status, now, note, source="organisation")
