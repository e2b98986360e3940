"""Domain events: written to the outbox in the change's own transaction, read as a feed.

Each event is the HMPPS domain event envelope (§6.1) — `eventType`, `version`, `occurredAt`
(Europe/London), `description`, `detailUrl` (a GET on this sandbox), `personReference`
and `additionalInformation` — wrapped as SNS delivers it on SQS (§6.2):
`{"sequence", "Message": "<envelope as a JSON string>", "MessageAttributes": {"eventType":
{"Type": "String", "Value"}}}`. The `probation-case.nsi.*` types are sandbox-only (codes.py).

`GET /events?after=<cursor>&size=N[&eventType=…]` answers
`{"content": [...], "cursor", "latest", "hasMore"}`: pass `cursor` back as `after`.
Without `after` the feed starts at the beginning; `latest` is the newest sequence number.
"""

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandboxes.ndelius.models import DomainEvent, Offender
from sandboxes.ndelius.organisation import Context
from sandboxes.ndelius.store import iso, now


def raise_event(ctx: Context, *, event_type: str, description: str, person: Offender,
                detail_path: str, additional: dict[str, Any]) -> None:
    """Add one domain event to the outbox, in the caller's transaction."""
    identifiers = [{"type": "CRN", "value": person.crn}]
    if person.noms_number:
        identifiers.append({"type": "NOMS", "value": person.noms_number})
    envelope = {
        "eventType": event_type,
        "version": 1,
        "occurredAt": iso(now()),
        "description": description,
        "detailUrl": f"{ctx.base_url.rstrip('/')}{detail_path}",
        "personReference": {"identifiers": identifiers},
        "additionalInformation": additional,
    }
    ctx.session.add(DomainEvent(event_type=event_type, message_body=envelope))


def feed(session: Session, *, after: int, size: int, event_types: list[str]) -> dict[str, Any]:
    """Up to `size` events after sequence `after`, oldest first, and the cursor to go on from."""
    # Read the newest sequence first: every event up to it is committed (writers are
    # serialised), so the answer can never skip one that commits later.
    latest = session.scalar(select(func.max(DomainEvent.domain_event_id))) or 0
    query = (select(DomainEvent)
             .where(DomainEvent.domain_event_id > after, DomainEvent.domain_event_id <= latest)
             .order_by(DomainEvent.domain_event_id).limit(size))
    if event_types:
        query = query.where(DomainEvent.event_type.in_(event_types))
    rows = list(session.scalars(query))
    full = len(rows) == size
    cursor = rows[-1].domain_event_id if full else max(after, latest)
    return {
        "content": [{"sequence": row.domain_event_id, "Message": json.dumps(row.message_body),
                     "MessageAttributes": {"eventType": {"Type": "String",
                                                         "Value": row.event_type}}}
                    for row in rows],
        "cursor": str(cursor),
        "latest": str(latest),
        "hasMore": full and cursor < latest,
    }
