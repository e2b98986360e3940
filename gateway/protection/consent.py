"""The consent gate: what may leave for this receiver, or why nothing may.

A referral or transfer leaves only when
- its consent is in force (not withdrawn, not dated in the future),
- it says who gave it, how and when, or the agreement says the sender records consent in
  its own system (`consent_recorded_by`) and the consent says it was (`recorded_by_sender`),
- it covers this purpose (referral or transfer) and this receiver,
- a data-sharing agreement between sender and receiver covers the purpose and services,
- for a child, the consent carries what the agreement requires: the child's assent and
  the reference of a Best Interests Assessment (who is a child is worked out first, once,
  by `minors.establish_minor`: from the birth date, the age, or a child-protection case);
and then only the fields whose data category both the agreement and the consent allow
reach the receiver (`need_to_know`). Where the agreement says `outside_consent: refuse`,
a field the consent does not cover refuses the whole referral instead of being removed.

Every refusal names each gap by JSON Pointer and rule, never a personal value.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gateway.contracts import Contracts
from gateway.errors import ConsentProblem, FieldError
from gateway.protection.agreements import Agreement, AgreementRegistry
from gateway.protection.minors import establish_minor
from gateway.protection.need_to_know import Withheld, need_to_know


@dataclass(frozen=True)
class Admitted:
    """The receiver's copy, what was removed from it, and the agreement it leaves under."""

    document: dict[str, Any]
    withheld: Sequence[Withheld]
    agreement: Agreement
    # Pointers of a birth date or age that overruled the sender's `is_minor: false`.
    minor_contradicted: Sequence[str] = ()


def admit(document: dict[str, Any], *, agreements: AgreementRegistry, contracts: Contracts,
          today: date, in_force: Sequence[Agreement] | None = None) -> Admitted:
    """The copy of a valid canonical referral that may leave, or ConsentProblem.
    `in_force`: the agreements in force, when read already."""
    document, contradicted = establish_minor(document, today=today)
    gaps = consent_gaps(document, today=today)
    if gaps:
        raise ConsentProblem(
            "The consent given does not cover this referral; nothing was stored.", gaps,
            title="Consent does not cover this referral")
    kind = document["kind"]
    agreement = agreements.covering(
        sender=document["sender"]["partner"], receiver=document["receiver"]["partner"],
        purpose=kind, service_types=[s["type"] for s in document.get("services") or []],
        on=today, among=in_force)
    gaps = recorded_consent_gaps(document, agreement)
    if gaps:
        raise ConsentProblem(
            "The referral carries no record of the person's consent, and agreement "
            f"'{agreement.id}' does not say the sender records consent in its own system; "
            "nothing was stored.", gaps, title="Consent does not cover this referral",
            agreement=agreement.id)
    gaps = child_gaps(document, agreement)
    if gaps:
        raise ConsentProblem(
            f"Agreement '{agreement.id}' requires more for a child; nothing was stored.", gaps,
            title="Consent for a child is incomplete", slug="child-safeguard-required",
            agreement=agreement.id)

    allowed = agreement.categories[kind]
    consented = frozenset(document["consent"]["scope"]["data_categories"])
    if agreement.outside_consent == "refuse":
        beyond = need_to_know(document, allowed=consented, contracts=contracts).withheld
        gaps = [FieldError(w.pointer, "consent-category",
                           f"consent does not cover the category '{w.category}'")
                for w in beyond if w.category in allowed]
        if gaps:
            raise ConsentProblem(
                f"Agreement '{agreement.id}' refuses fields the consent does not cover; "
                "nothing was stored.", gaps, title="Consent does not cover these fields",
                agreement=agreement.id)
    filtered = need_to_know(document, allowed=allowed & consented, contracts=contracts)
    # Removing fields can only break `required` rules: check again only if any went. (A
    # value still breaking its rule in a field that stays is the caller's to refuse.)
    lost = [e for e in contracts.validate("referral", filtered.document)
            if e.rule == "required"] if filtered.withheld else []
    if lost:
        categories = {w.pointer: w.category for w in filtered.withheld}
        raise ConsentProblem(
            "What the consent and the agreement let leave is not enough for a referral; "
            "nothing was stored.",
            [FieldError(e.pointer, "needed-category",
                        f"the receiver needs this field ({_category_for(e.pointer, categories)}),"
                        " but the consent or the agreement does not allow its category")
             for e in lost],
            title="Not enough may be shared", agreement=agreement.id)
    return Admitted(filtered.document, filtered.withheld, agreement, contradicted)


def consent_gaps(document: dict[str, Any], *, today: date) -> list[FieldError]:
    """What the consent itself does not cover; empty when it may leave."""
    consent = document.get("consent") or {}
    scope = consent.get("scope") or {}
    gaps = []
    if consent.get("withdrawn"):
        gaps.append(FieldError("/consent/withdrawn", "consent-withdrawn",
                               "consent was withdrawn; nothing may be shared"))
    if "date" in consent and date.fromisoformat(consent["date"]) > latest_today(today):
        gaps.append(FieldError("/consent/date", "consent-date",
                               "consent cannot be dated in the future"))
    if document["kind"] not in scope.get("purposes", []):
        gaps.append(FieldError("/consent/scope/purposes", "consent-purpose",
                               f"consent does not cover the purpose '{document['kind']}'"))
    receiver = document["receiver"]["partner"]
    if receiver not in scope.get("receivers", []):
        gaps.append(FieldError("/consent/scope/receivers", "consent-receiver",
                               f"consent does not cover the receiver '{receiver}'"))
    return gaps


def latest_today(today: date | None = None) -> date:
    """The latest date that is "today" somewhere: UTC's today plus one day, for the time
    zones ahead of UTC (up to +14 h). A date after it is in the future everywhere."""
    return (today or datetime.now(UTC).date()) + timedelta(days=1)


def recorded_consent_gaps(document: dict[str, Any], agreement: Agreement) -> list[FieldError]:
    """A consent the sender only recorded in its own system, where the agreement does not
    say that sender does so."""
    sender = document["sender"]["partner"]
    if document["consent"].get("recorded_by_sender") is not True \
            or sender in agreement.consent_recorded_by:
        return []
    return [FieldError("/consent/recorded_by_sender", "consent-not-carried",
                       f"agreement '{agreement.id}' does not list '{sender}' under "
                       "consent_recorded_by: the referral must carry the consent")]


def child_gaps(document: dict[str, Any], agreement: Agreement) -> list[FieldError]:
    """For a child, the assent and Best Interests Assessment the agreement requires."""
    if document["subject"].get("is_minor") is not True:
        return []
    consent, gaps = document["consent"], []
    if agreement.requires_child_assent and consent.get("child_assent") is not True:
        gaps.append(FieldError("/consent/child_assent", "child-assent-required",
                               f"agreement '{agreement.id}' requires the child's assent"))
    if agreement.requires_bia_for_children and not consent.get("bia_reference"):
        gaps.append(FieldError("/consent/bia_reference", "bia-required",
                               f"agreement '{agreement.id}' requires the reference of a Best "
                               "Interests Assessment for a child"))
    return gaps


def _category_for(pointer: str, categories: dict[str, str]) -> str:
    """The category of a field the filter removed, or of the nearest removed parent."""
    while pointer:
        if pointer in categories:
            return categories[pointer]
        pointer = pointer.rsplit("/", 1)[0]
    return "a category not allowed"
