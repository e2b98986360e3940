"""The lookups (option lists) of this sandbox deployment and the check of a case against them.

Values come from Primero's default seed (`db/configuration/lookups/lookups.rb`,
`forms/case/*.rb`) plus what this deployment added, as real deployments do: the
Gambella deployment's generated `lookup-gender` ids for other and unknown and its
service types (`alternative_care`, `focuses_non_specialized_mhpss_care`,
`legal_support`, `medical`), and services for best-interests assessment and
determination (`bia_service`, `bid_service`). Since r2-3601 Primero answers 422
`Invalid Record JSON` when a select field holds an unknown value; the sandbox does the
same, naming each bad field by JSON Pointer.
"""

import re
from typing import Any

MODULE_CP = "primeromodule-cp"
MODULE_GBV = "primeromodule-gbv"
MODULES = {MODULE_CP: "CP", MODULE_GBV: "GBV"}

LOOKUPS: dict[str, dict[str, str]] = {
    "lookup-gender": {"male": "Male", "female": "Female", "other_b25f252": "Other",
                      "unknown_4b34795": "Unknown"},
    "lookup-case-status": {"open": "Open", "closed": "Closed", "transferred": "Transferred",
                           "duplicate": "Duplicate"},
    "lookup-risk-level": {"high": "High", "medium": "Medium", "low": "Low"},
    "lookup-protection-concerns": {v: v.replace("_", " ").capitalize() for v in (
        "sexually_exploited", "gbv_survivor", "trafficked_smuggled", "statelessness",
        "arrested_detained", "migrant", "disabled", "serious_health_issue", "refugee",
        "caafag", "street_child", "child_mother", "physically_or_mentally_abused",
        "living_with_vulnerable_person", "worst_forms_of_child_labor",
        "child_headed_household", "mentally_distressed", "other")},
    "lookup-service-type": {v: v.replace("_", " ").capitalize() for v in (
        "safehouse_service", "health_medical_service", "psychosocial_service",
        "police_other_service", "legal_assistance_service", "livelihoods_service",
        "child_protection_service", "family_mediation_service",
        "family_seunification_service", "education_service", "nfi_clothes_shoes_service",
        "water_sanitation_service", "registration_service", "food_service",
        "other_service", "alternative_care", "focuses_non_specialized_mhpss_care",
        "legal_support", "medical", "bia_service", "bid_service")},
    "lookup-service-response-timeframe": {"1_hour": "1 hour", "3_hours": "3 hours",
                                          "1_day": "1 day", "3_days": "3 days"},
    "lookup-service-response-type": {"care_plan": "Care plan", "action_plan": "Action plan",
                                     "service_provision": "Service provision"},
    "lookup-service-implemented": {"not_implemented": "Not implemented",
                                   "implemented": "Implemented"},
    "lookup-transfer-status": {"in_progress": "In progress", "accepted": "Accepted",
                               "rejected": "Rejected"},
    "lookup-transition-type": {"referral": "Referral", "reassign": "Reassign",
                               "transfer": "Transfer", "transfer_request": "Transfer request"},
}

_SELECTS = {"sex": "lookup-gender", "status": "lookup-case-status",
            "risk_level": "lookup-risk-level", "transfer_status": "lookup-transfer-status"}
_MULTI_SELECTS = {"protection_concerns": "lookup-protection-concerns"}
_SERVICE_SELECTS = {"service_type": "lookup-service-type",
                    "service_response_type": "lookup-service-response-type",
                    "service_response_timeframe": "lookup-service-response-timeframe",
                    "service_implemented": "lookup-service-implemented"}
_BOOLEANS = ("consent_for_services", "disclosure_other_orgs", "consent_for_tracing",
             "consent_reporting", "urgent_protection_concern", "estimated", "hidden_name")
_DATES = ("date_of_birth", "registration_date")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def invalid_pointers(case: dict[str, Any]) -> list[str]:
    """JSON Pointers of the fields of `case` that break the form definitions."""
    bad: list[str] = []
    if "module_id" in case and case["module_id"] not in MODULES:
        bad.append("/module_id")
    for field, lookup in _SELECTS.items():
        value = case.get(field)
        if value is not None and value not in LOOKUPS[lookup]:
            bad.append(f"/{field}")
    for field, lookup in _MULTI_SELECTS.items():
        values = case.get(field)
        if values is None:
            continue
        if not isinstance(values, list):
            bad.append(f"/{field}")
            continue
        bad += [f"/{field}/{i}" for i, v in enumerate(values) if v not in LOOKUPS[lookup]]
    for field in _BOOLEANS:
        if field in case and case[field] is not None and not isinstance(case[field], bool):
            bad.append(f"/{field}")
    for field in _DATES:
        value = case.get(field)
        if value is not None and not (isinstance(value, str) and _DATE.match(value)):
            bad.append(f"/{field}")
    age = case.get("age")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 0):
        bad.append("/age")
    services = case.get("services_section")
    if services is not None:
        if not isinstance(services, list):
            bad.append("/services_section")
        else:
            for i, row in enumerate(services):
                if not isinstance(row, dict):
                    bad.append(f"/services_section/{i}")
                    continue
                for field, lookup in _SERVICE_SELECTS.items():
                    value = row.get(field)
                    if value is not None and value not in LOOKUPS[lookup]:
                        bad.append(f"/services_section/{i}/{field}")
    return bad


def as_resources() -> list[dict[str, Any]]:
    """The lookups as `GET /api/v2/lookups` lists them."""
    return [{"id": n, "unique_id": unique_id, "name": {"en": unique_id},
             "values": [{"id": k, "display_text": {"en": v}} for k, v in values.items()]}
            for n, (unique_id, values) in enumerate(sorted(LOOKUPS.items()), start=1)]
