"""The consent gate: a referral leaves only when its consent covers this receiver and purpose."""

from typing import Any

from gateway.errors import FieldError


def consent_gaps(referral: dict[str, Any]) -> list[FieldError]:
    """What the referral's consent block does not cover; empty when it may leave."""
    consent = referral.get("consent") or {}
    scope = consent.get("scope") or {}
    gaps = []
    if consent.get("withdrawn"):
        gaps.append(FieldError("/consent/withdrawn", "consent-withdrawn",
                               "consent was withdrawn; nothing may be shared"))
    if referral["kind"] not in scope.get("purposes", []):
        gaps.append(FieldError("/consent/scope/purposes", "consent-purpose",
                               f"consent does not cover the purpose '{referral['kind']}'"))
    receiver = referral["receiver"]["partner"]
    if receiver not in scope.get("receivers", []):
        gaps.append(FieldError("/consent/scope/receivers", "consent-receiver",
                               f"consent does not cover the receiver '{receiver}'"))
    return gaps
