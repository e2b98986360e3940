"""OperationOutcome: every refusal of the FHIR face, from the gateway's one error hierarchy.

An error names each offending field by a JSON Pointer into what the partner sent (the
gateway's rule everywhere); here it also becomes a FHIRPath `expression` on the resource
sent (`Bundle.entry[2].resource.name[0].given[0]`), and the pointer travels in an
extension so both readings stay available.
"""

from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome

from gateway.errors import PROBLEM_BASE, CaseBridgeError, FieldError

POINTER_EXTENSION = "https://casebridge.org/fhir/StructureDefinition/json-pointer"
PROBLEM_SYSTEM = PROBLEM_BASE.rstrip("/")

# The issue type (http://hl7.org/fhir/issue-type) of each problem, else of its status.
_BY_SLUG = {"consent-required": "business-rule", "child-safeguard-required": "business-rule",
            "lifecycle-violation": "business-rule", "idempotency-conflict": "duplicate",
            "mapping-error": "invalid", "validation-error": "invalid",
            "restricted": "suppressed", "erased": "deleted", "version-conflict": "conflict"}
_BY_STATUS = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
              405: "not-supported", 406: "not-supported", 409: "conflict", 410: "deleted",
              412: "conflict", 413: "too-long", 415: "not-supported", 422: "processing",
              429: "throttled", 502: "transient", 503: "transient"}


def fhirpath(root: str, pointer: str) -> str:
    """The FHIRPath of a JSON Pointer into a resource of type `root`:
    `/entry/2/resource/name/0` → `Bundle.entry[2].resource.name[0]`."""
    path = root
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        path += f"[{part}]" if part.isdigit() else ("" if part == "-" else f".{part}")
    return path


def issue_type(error: CaseBridgeError) -> str:
    return _BY_SLUG.get(error.slug) or _BY_STATUS.get(error.status, "exception")


def outcome_of(error: CaseBridgeError, *, root: str | None = None) -> OperationOutcome:
    """The OperationOutcome of `error`: one issue per field it names, else one for it all.

    `root` is the resource type of the request body the pointers point into; None when
    they point at query parameters (then only the pointer is given).
    """
    code = issue_type(error)
    details = {"coding": [{"system": PROBLEM_SYSTEM, "code": error.slug,
                           "display": error.title}], "text": error.title}
    errors = [FieldError(str(e.get("pointer", "")), str(e.get("rule", "")),
                         str(e.get("detail", "")))
              for e in error.extensions.get("errors") or [] if isinstance(e, dict)]
    issues: list[dict[str, Any]] = []
    for field in errors:
        issue: dict[str, Any] = {
            "severity": "error", "code": code,
            "details": {**details, "coding": [*details["coding"], {
                "system": f"{PROBLEM_SYSTEM}/rules", "code": field.rule}]},
            "diagnostics": field.detail}
        if field.pointer:
            issue["extension"] = [{"url": POINTER_EXTENSION, "valueString": field.pointer}]
            if root is not None:
                issue["expression"] = [fhirpath(root, field.pointer)]
        issues.append(issue)
    if not issues:
        issues.append({"severity": "fatal" if error.status >= 500 else "error", "code": code,
                       "details": details, "diagnostics": error.detail})
    else:
        issues.insert(0, {"severity": "error", "code": code, "details": details,
                          "diagnostics": error.detail})
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome",
                                            "issue": issues})


def informational(text: str, pointers: list[tuple[str, str]], *, root: str
                  ) -> OperationOutcome:
    """An OperationOutcome that tells, without refusing: one issue per (pointer, detail)."""
    issues: list[dict[str, Any]] = [{"severity": "information", "code": "informational",
                                     "diagnostics": text}]
    issues += [{"severity": "information", "code": "informational", "diagnostics": detail,
                "expression": [fhirpath(root, pointer)],
                "extension": [{"url": POINTER_EXTENSION, "valueString": pointer}]}
               for pointer, detail in pointers]
    return OperationOutcome.model_validate({"resourceType": "OperationOutcome",
                                            "issue": issues})
