"""The CapabilityStatement at /fhir/metadata: what the FHIR face offers, declared once here.

A test holds it to the routes (`tests/unit/fhir/test_capability.py`): every interaction
listed has a route, every route is listed, and the search parameters are those the
search route reads.
"""

from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from gateway.fhir.resources import emit

FHIR_VERSION = "4.0.1"  # R4; served with the R4B models, identical for these resources

# Resource type → (interactions, search parameters with their types, _include values, doc).
RESOURCES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...], str]] = {
    "Task": (
        ("create", "read", "vread", "update", "patch", "search-type", "history-instance"),
        (("owner", "reference"), ("requester", "reference"), ("status", "token"),
         ("_id", "token"), ("_lastUpdated", "date")),
        ("Task:focus", "Task:patient"),
        "A referral: Task/<id> tracks ServiceRequest/<id> for Patient/<id> under Consent/<id>. "
        "create takes a transaction Bundle (Task, ServiceRequest, Patient, Consent). update "
        "and patch (JSON Patch) change status, statusReason, output and note only: the "
        "owner moves the referral on, the requester cancels it. Version n is the referral "
        "after its n-th status event."),
    "ServiceRequest": (("read",), (), (), "The services asked for."),
    "Patient": (("read",), (), (),
                "The person, as far as the data-sharing agreement and the consent let "
                "this partner see."),
    "Consent": (("read",), (), (), "The consent the referral left under."),
    "Organization": (("read",), (), (), "A partner of the gateway."),
    "Subscription": (
        ("create", "read", "delete", "search-type"), (), (),
        "rest-hook; criteria Task?owner|requester|status|_id; id-only notifications (R4 "
        "Subscriptions Backport shape) or an empty ping; your own subscriptions only."),
}
SYSTEM_INTERACTIONS = ("transaction",)


def statement(base_url: str, *, software_version: str) -> CapabilityStatement:
    """The CapabilityStatement of the FHIR face served at `base_url`."""
    resources: list[dict[str, Any]] = []
    for kind, (interactions, params, includes, doc) in RESOURCES.items():
        resource: dict[str, Any] = {
            "type": kind, "documentation": doc,
            "interaction": [{"code": code} for code in interactions]}
        if params:
            resource["searchParam"] = [{"name": name, "type": kind_}
                                       for name, kind_ in params]
        if includes:
            resource["searchInclude"] = list(includes)
        if "vread" in interactions:
            resource["versioning"] = "versioned"
            resource["readHistory"] = True
        if "update" in interactions:
            resource["updateCreate"] = False
            resource["conditionalUpdate"] = False
        resources.append(resource)
    return emit(CapabilityStatement, {
        "resourceType": "CapabilityStatement", "status": "active",
        "date": "2026-12-10", "publisher": "CaseBridge", "kind": "instance",
        "software": {"name": "CaseBridge", "version": software_version},
        "implementation": {"description": "CaseBridge FHIR R4 face", "url": base_url},
        "fhirVersion": FHIR_VERSION, "format": ["json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Referrals between case-management systems as Gravity / BSeR "
                             "closed-loop referrals. Each partner sees only the referrals "
                             "it sent or received, and of those only what the data-sharing "
                             "agreement and the person's consent let it see.",
            "security": {
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "OAuth"}]}],
                "description": "The partner's CaseBridge credentials: an API key, or an "
                               "access token from POST /oauth/token (client credentials), "
                               "as Authorization: Bearer; or the API key as X-API-Key."},
            "resource": resources,
            "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
        }],
    })
