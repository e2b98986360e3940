"""Domain events: written to the outbox in the change's own transaction, read as a feed.

Each event is the HMPPS domain event envelope (§6.1) — `eventType`, `version`, `occurredAt`
(Europe/London), `description`, `detailUrl` (a GET on this sandbox), `personReference`
and `additionalInformation` — wrapped as SNS delivers it on SQS (§6.2):
`{"sequence", "Message": "<envelope as a JSON string>", "MessageAttributes": {"eventType":
{"Type": "String", "Value"}}}`. The `probation-case.nsi.*` types are sandbox-only (codes.py).

Feeds differ in the wild, so the sandbox can serve the shapes a subscriber must take
(`FeedStyle`): `sns` (the default, above), `bare` (the envelope itself, as a consumer of the
topic without raw delivery off sees it in tests), or `mixed` (odd sequences bare, even ones
wrapped); `redeliver_every=N` serves every Nth SNS message twice with the same `MessageId`
(SQS is at-least-once); `detail_urls=False` leaves out the optional `detailUrl`.

`GET /events?after=<cursor>&size=N[&eventType=…]` answers
`{"content": [...], "cursor", "latest", "hasMore"}`: pass `cursor` back as `after`.
Without `after` the feed starts at the beginning; `latest` is the newest sequence number.
"""

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandboxes.ndelius.models import DomainEvent, Offender
from sandboxes.ndelius.organisation import Context
from sandboxes.ndelius.store import iso, now

FeedStyle = Literal["sns", "bare", "mixed"]
_MESSAGE_IDS = uuid.UUID("5d1a7c52-7e0e-4d4c-9a51-1f6e0b5c0d31")


@dataclass(frozen=True)
class FeedShape:
    """How the feed serves events: wrapped or bare, redelivered, with or without detail URLs."""

    style: FeedStyle = "sns"
    redeliver_every: int = 0
    detail_urls: bool = True


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


def feed(session: Session, *, after: int, size: int, event_types: list[str],
         shape: FeedShape | None = None) -> dict[str, Any]:
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
        "content": [item for row in rows for item in _served(row, shape or FeedShape())],
        "cursor": str(cursor),
        "latest": str(latest),
        "hasMore": full and cursor < latest,
    }


def _served(row: DomainEvent, shape: FeedShape) -> list[dict[str, Any]]:
    """One outbox row as the feed serves it: once, or twice when SQS redelivers it."""
    body = dict(row.message_body)
    if not shape.detail_urls:
        body.pop("detailUrl", None)
    sequence = row.domain_event_id
    if shape.style == "bare" or (shape.style == "mixed" and sequence % 2):
        return [{"sequence": sequence, **body}]
    item = {"sequence": sequence,
            "MessageId": str(uuid.uuid5(_MESSAGE_IDS, str(sequence))),
            "Message": json.dumps(body),
            "MessageAttributes": {"eventType": {"Type": "String", "Value": row.event_type}}}
    redelivered = shape.redeliver_every > 0 and sequence % shape.redeliver_every == 0
    return [item, dict(item)] if redelivered else [item]
