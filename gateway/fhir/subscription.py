"""FHIR Subscriptions (R4, rest-hook): a FHIR partner is told when a Task it sent or owns
changes, through the same outbox, broker queues and retry ladder as every delivery.

Each status event of a referral writes one `fhir-notify` outbox message per active
subscription of its sender or receiver (`announce`, in the event's own transaction). A
worker takes the message, checks the subscription's criteria against the Task at that
event, and POSTs the notification to the partner's endpoint (`Notifier`). The notification
carries ids only, in the shape of the R4 Subscriptions Backport IG (`id-only`): a `history`
Bundle whose first entry is the subscription status (a Parameters) naming the Task; the
partner then reads the Task, which only it and the other side may. With no payload the
classic R4 ping is sent: an empty POST.
"""

import ipaddress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import structlog
from pydantic import ValidationError
from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session, sessionmaker

from adapters.http import failure, partner_message, tls, transport_failure
from gateway.delivery.outbox import outbox_message
from gateway.delivery.translate import Translator
from gateway.errors import DeliveryError, FieldError, MalformedRequest, NotFound
from gateway.fhir.search import parse_criteria
from gateway.protection import audit
from gateway.store.db import insert_now, unit_of_work
from gateway.store.group_commit import once_per_group
from gateway.store.models import (
    Delivery,
    FhirSubscription,
    Partner,
    Referral,
    StatusEvent,
    new_id,
    utcnow,
)

log = structlog.get_logger()

if TYPE_CHECKING:
    from fhir.resources.R4B.subscription import Subscription

# The FHIR models load only where a resource is made or read: the workers, the API and
# every command import this module, and most never build one.

NOTIFY = "fhir-notify"  # the outbox message type, and its queues: fhir-notify.<partner>
NOTIFY_FIELDS = ("subscription", "event_number")  # what its envelope adds to the ids
FHIR_JSON = "application/fhir+json"
BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"
PAYLOAD_CONTENT = f"{BACKPORT}/StructureDefinition/backport-payload-content"
TOPIC = "https://casebridge.org/fhir/SubscriptionTopic/task-changes"
HIDDEN = "(hidden)"


# --- the subscriptions of a partner -------------------------------------------------------

def subscribe(*, session: Session, partner: Partner, body: Any) -> FhirSubscription:
    """Store a partner's Subscription after checking it; it is active at once."""
    from fhir.resources.R4B.subscription import Subscription

    from gateway.fhir.resources import invalid

    if not isinstance(body, dict) or body.get("resourceType") != "Subscription":
        raise MalformedRequest("Post a Subscription.", errors=[
            FieldError("/resourceType", "resource-type", "Subscription")])
    try:
        resource = Subscription.model_validate(body)
    except ValidationError as error:
        raise invalid("The Subscription is not valid FHIR.", error) from None
    criteria, channel = str(resource.criteria or ""), resource.channel
    parse_criteria(criteria)
    endpoint = str(channel.endpoint or "")
    errors = []
    if channel.type != "rest-hook":
        errors.append(FieldError("/channel/type", "channel-type", "rest-hook"))
    if not _endpoint_allowed(endpoint):
        errors.append(FieldError("/channel/endpoint", "endpoint",
                                 "an https URL (http only to this machine, for testing)"))
    if channel.payload not in (None, FHIR_JSON):
        errors.append(FieldError("/channel/payload", "payload",
                                 f"{FHIR_JSON} (id-only notifications), or none (a ping)"))
    content = [e.valueCode for e in (channel.payload__ext.extension or [])
               if e.url == PAYLOAD_CONTENT] if channel.payload__ext else []
    if any(c != "id-only" for c in content):
        errors.append(FieldError("/channel/_payload/extension", "payload-content",
                                 "id-only: a notification names the Task; read it then"))
    headers = [str(h) for h in channel.header or []]
    errors += [FieldError(f"/channel/header/{i}", "header", "Name: value")
               for i, h in enumerate(headers) if ":" not in h or not h.split(":")[0].strip()]
    if errors:
        raise MalformedRequest("The Subscription cannot be served.", errors=errors)
    now = utcnow()
    subscription = FhirSubscription(
        id=new_id(), partner_id=partner.id, status="active", criteria=criteria,
        channel={"reason": resource.reason, "endpoint": endpoint,
                 "payload": channel.payload, "header": headers},
        end_at=resource.end, events_since_start=0, error_count=0, created_at=now,
        updated_at=now)
    session.add(subscription)
    session.flush()
    audit.record(session, actor=f"partner:{partner.id}", action="fhir.subscription",
                 partner_id=partner.id, detail={"change": "create", "id": subscription.id})
    log.info("fhir_subscription_created", partner=partner.id, subscription=subscription.id)
    return subscription


def owned(*, session: Session, partner: Partner, subscription_id: str) -> FhirSubscription:
    """One of the partner's own subscriptions, or NotFound."""
    found = session.get(FhirSubscription, subscription_id)
    if found is None or found.partner_id != partner.id:
        raise NotFound("Subscription")
    return found


def of_partner(*, session: Session, partner: Partner) -> list[FhirSubscription]:
    return list(session.scalars(select(FhirSubscription).where(
        FhirSubscription.partner_id == partner.id).order_by(FhirSubscription.created_at)))


def unsubscribe(*, session: Session, partner: Partner, subscription_id: str) -> None:
    """Delete a subscription: nothing more is sent for it (messages on their way are
    dropped by the worker)."""
    session.delete(owned(session=session, partner=partner, subscription_id=subscription_id))
    audit.record(session, actor=f"partner:{partner.id}", action="fhir.subscription",
                 partner_id=partner.id, detail={"change": "delete", "id": subscription_id})


def resource_of(subscription: FhirSubscription) -> "Subscription":
    """The Subscription as its partner sees it; header values are not shown again."""
    from fhir.resources.R4B.subscription import Subscription

    from gateway.fhir.resources import emit, instant

    channel = subscription.channel
    return emit(Subscription, {
        "resourceType": "Subscription", "id": subscription.id,
        "meta": {"lastUpdated": instant(subscription.updated_at)},
        "status": subscription.status, "reason": channel["reason"],
        "criteria": subscription.criteria,
        **({"end": instant(subscription.end_at)} if subscription.end_at else {}),
        **({"error": subscription.last_error} if subscription.last_error else {}),
        "channel": {"type": "rest-hook", "endpoint": channel["endpoint"],
                    **({"payload": channel["payload"]} if channel["payload"] else {}),
                    **({"header": [f"{h.split(':')[0]}: {HIDDEN}" for h in channel["header"]]}
                       if channel["header"] else {})}})


def _endpoint_allowed(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


# --- announcing a status event ------------------------------------------------------------

_SUBSCRIPTIONS = FhirSubscription.__table__
# Two equalities, not an expanding IN: its SQL would be rendered again at every call.
_ANY_ON = select(_SUBSCRIPTIONS.c.id).where(
    or_(_SUBSCRIPTIONS.c.partner_id == bindparam("sender"),
        _SUBSCRIPTIONS.c.partner_id == bindparam("receiver")),
    _SUBSCRIPTIONS.c.status != "off").limit(1)


def announce(session: Session, referral: Referral, event: StatusEvent) -> None:
    """Queue a notification of `event` for each active subscription of either side.

    The subscriptions are locked until the event commits, so that events of two referrals
    at once never give one subscription the same notification number twice.
    """
    sides = [referral.sender_id, referral.receiver_id]
    if not once_per_group(session, ("fhir-subscribed", *sides), lambda: session.scalar(
            _ANY_ON, {"sender": sides[0], "receiver": sides[1]}) is not None):
        # Most partners have none: one cheap read. One made meanwhile by another
        # transaction starts after this event, as if made a moment later.
        return
    now = utcnow()
    for subscription in session.scalars(select(FhirSubscription).where(
            FhirSubscription.partner_id.in_(sides),
            FhirSubscription.status != "off").order_by(FhirSubscription.id)
            .with_for_update()):
        if subscription.end_at is not None and subscription.end_at <= now:
            continue
        subscription.events_since_start += 1
        # With insert_now, as the event's own rows: in a group commit they wait for the
        # commit together, parents first.
        insert_now(session, outbox_message(
            referral, event, message_type=NOTIFY, target=subscription.partner_id,
            subscription=subscription.id, event_number=subscription.events_since_start))


# --- notifying ----------------------------------------------------------------------------

class Notifier:
    """Sends the notifications of `fhir-notify` messages; one per worker, reused."""

    def __init__(self, *, sessions: sessionmaker[Session], translator: Translator,
                 base_url: str | None = None, timeout: float = 10.0) -> None:
        self.sessions = sessions
        self.translator = translator
        self.base_url = base_url
        self.client = httpx.Client(timeout=timeout, follow_redirects=False, verify=tls())

    def notify(self, envelope: dict[str, Any], attempt: int) -> str:
        """POST the notification; raises the delivery error a failure stands for."""
        from gateway.fhir.resources import task_status_of

        with self.sessions() as session:
            subscription = session.get(FhirSubscription, envelope.get("subscription", ""))
            event = session.get(StatusEvent, envelope.get("status_event_id", ""))
            if subscription is None or subscription.status == "off" or event is None:
                return "the subscription or the event is gone: nothing to tell"
            referral = event.referral
            status = task_status_of(event.to_state, referral.kind, self.translator)
            if not parse_criteria(subscription.criteria).matches(referral, status):
                return "the Task at this event is not one the subscription asks for"
            channel = subscription.channel
            body = self._body(subscription.id, referral.id, event,
                              int(envelope["event_number"])) if channel["payload"] else None
        headers = dict(_header(h) for h in channel["header"])
        if body is not None:
            headers["Content-Type"] = FHIR_JSON
        try:
            response = self.client.post(channel["endpoint"], content=body, headers=headers)
        except httpx.TransportError as error:
            raise self._failed(envelope, transport_failure("notification", error)) from None
        if response.is_error:
            raise self._failed(envelope, failure(
                response, f"the notification endpoint answered {response.status_code}",
                code=None, message=partner_message(response.text)))
        with unit_of_work(self.sessions) as session:
            subscription = session.get(FhirSubscription, envelope["subscription"])
            if subscription is not None and subscription.status == "error":
                subscription.status, subscription.last_error = "active", None
                subscription.error_count, subscription.updated_at = 0, utcnow()
            session.add(Delivery(
                referral_id=envelope["referral_id"], partner_id=envelope["target"],
                message_type=NOTIFY, attempt=attempt, outcome="delivered", finished_at=utcnow(),
                detail=f"notification {envelope['event_number']} of subscription "
                       f"{envelope['subscription']} sent"))
            audit.record(session, actor="system:worker", action="delivery.deliver",
                         partner_id=envelope["target"], referral_id=envelope["referral_id"],
                         correlation_id=envelope.get("correlation_id"),
                         detail={"type": NOTIFY, "subscription": envelope["subscription"],
                                 "event_number": envelope["event_number"],
                                 "state": envelope.get("state"), "attempt": attempt})
        return "notification sent"

    def _failed(self, envelope: dict[str, Any], error: DeliveryError) -> DeliveryError:
        """Show the failure on the subscription (status error), and hand the error on."""
        with unit_of_work(self.sessions) as session:
            subscription = session.get(FhirSubscription, envelope["subscription"])
            if subscription is not None:
                subscription.status = "error"
                subscription.error_count += 1
                subscription.last_error = error.detail[:100]
                subscription.updated_at = utcnow()
        return error

    def _body(self, subscription_id: str, referral_id: str, event: StatusEvent,
              number: int) -> bytes:
        """The id-only notification: the subscription status, then the Task it names."""
        from fhir.resources.R4B.bundle import Bundle

        from gateway.fhir.resources import emit, instant

        focus = {"reference": f"Task/{referral_id}"}
        status = {
            "resourceType": "Parameters",
            "meta": {"profile": [f"{BACKPORT}/StructureDefinition/"
                                 "backport-subscription-status-r4"]},
            "parameter": [
                {"name": "subscription",
                 "valueReference": {"reference": f"Subscription/{subscription_id}"}},
                {"name": "topic", "valueCanonical": TOPIC},
                {"name": "status", "valueCode": "active"},
                {"name": "type", "valueCode": "event-notification"},
                {"name": "events-since-subscription-start", "valueString": str(number)},
                {"name": "notification-event", "part": [
                    {"name": "event-number", "valueString": str(number)},
                    {"name": "timestamp", "valueInstant": instant(event.recorded_at)},
                    {"name": "focus", "valueReference": focus}]}]}
        task_entry: dict[str, Any] = {"request": {"method": "PUT", "url": focus["reference"]},
                                      "response": {"status": "200"}}
        if self.base_url:
            task_entry["fullUrl"] = f"{self.base_url.rstrip('/')}/{focus['reference']}"
        bundle = emit(Bundle, {
            "resourceType": "Bundle", "type": "history",
            "meta": {"profile": [f"{BACKPORT}/StructureDefinition/"
                                 "backport-subscription-notification-r4"]},
            "timestamp": instant(datetime.now(UTC)),
            "entry": [{"fullUrl": f"urn:uuid:{new_id()}", "resource": status,
                       "request": {"method": "GET",
                                   "url": f"Subscription/{subscription_id}/$status"},
                       "response": {"status": "200"}}, task_entry]})
        return bundle.model_dump_json(exclude_none=True).encode()

    def close(self) -> None:
        self.client.close()


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    return name.strip(), value.strip()
