"""The one error hierarchy of the gateway.

Each error knows its HTTP status and problem type; the API turns them into RFC 9457
problem+json in one handler (`gateway.api.problems`) and delivery turns them into
retry or dead-letter decisions in one place. Messages never carry personal values.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

PROBLEM_BASE = "https://casebridge.org/problems/"


@dataclass(frozen=True)
class FieldError:
    """One broken rule at one place of a document, named by a JSON Pointer."""

    pointer: str
    rule: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "rule": self.rule, "detail": self.detail}


@dataclass
class CaseBridgeError(Exception):
    """Base of every error the gateway raises on purpose."""

    detail: str
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"
    extensions: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # of the HTTP answer, e.g. Retry-After

    def __str__(self) -> str:
        return self.detail

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


class ValidationProblem(CaseBridgeError):
    """A document breaks its contract; `errors` names each field by JSON Pointer."""

    def __init__(self, detail: str, errors: Sequence[FieldError]) -> None:
        super().__init__(
            detail=detail,
            status=422,
            slug="validation-error",
            title="The document breaks its contract",
            extensions={"errors": [e.as_dict() for e in errors]},
        )
        self.errors = list(errors)


class MalformedRequest(CaseBridgeError):
    """The request could not be read at all (bad JSON, missing header)."""

    def __init__(self, detail: str, *, slug: str = "malformed-request", status: int = 400,
                 errors: Sequence[FieldError] = ()) -> None:
        extensions: dict[str, Any] = {"errors": [e.as_dict() for e in errors]} if errors else {}
        super().__init__(detail=detail, status=status, slug=slug, title="Malformed request",
                         extensions=extensions)


class PayloadTooLarge(CaseBridgeError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            detail=f"The request body is larger than the limit of {limit} bytes.",
            status=413, slug="payload-too-large", title="Payload too large",
            extensions={"limit_bytes": limit},
        )


class JsonLimitExceeded(CaseBridgeError):
    """A JSON body breaks one of the reading limits (CASEBRIDGE_JSON_MAX_*)."""

    def __init__(self, limit: str, value: int, where: str, *, detail: str,
                 status: int = 413) -> None:
        super().__init__(
            detail=f"The body breaks the {limit} limit of {value}: {detail}.",
            status=status, slug="json-limit", title="JSON limit exceeded",
            extensions={"limit": {"name": limit, "value": value},
                        "errors": [{"pointer": where, "rule": limit, "detail": detail}]},
        )


class UnsupportedMediaType(CaseBridgeError):
    def __init__(self, got: str, expected: str = "application/json") -> None:
        super().__init__(
            detail=f"Content-Type must be {expected}, not {got or 'missing'}.",
            status=415, slug="unsupported-media-type", title="Unsupported media type",
            extensions={"errors": [{"pointer": "", "rule": "content-type",
                                    "detail": f"send the body as {expected}"}]},
        )


class NotAuthenticated(CaseBridgeError):
    def __init__(self, detail: str = "A valid partner API key is required.") -> None:
        super().__init__(detail=detail, status=401, slug="not-authenticated",
                         title="Not authenticated")


class Forbidden(CaseBridgeError):
    def __init__(self, detail: str, errors: Sequence[FieldError] = ()) -> None:
        extensions: dict[str, Any] = {"errors": [e.as_dict() for e in errors]} if errors else {}
        super().__init__(detail=detail, status=403, slug="forbidden", title="Forbidden",
                         extensions=extensions)


class InvalidParameter(CaseBridgeError):
    """A query parameter is not valid: the same problem FastAPI's own checks answer with
    (`gateway.api.problems`), each error naming the parameter as a JSON Pointer."""

    def __init__(self, name: str, rule: str, detail: str) -> None:
        super().__init__(detail=f"The query parameter {name!r} is not valid: {detail}.",
                         status=400, slug="invalid-parameter", title="Invalid parameter",
                         extensions={"errors": [{"pointer": f"/{name}", "in": "query",
                                                 "rule": rule, "detail": detail}]})
        self.name = name
        self.rule = rule
        self.reason = detail


class NotFound(CaseBridgeError):
    def __init__(self, what: str) -> None:
        super().__init__(detail=f"No {what} with that id is visible to you.", status=404,
                         slug="not-found", title="Not found")


class IdempotencyConflict(CaseBridgeError):
    def __init__(self) -> None:
        super().__init__(
            detail="This Idempotency-Key was already used with a different request body.",
            status=409, slug="idempotency-conflict", title="Idempotency-Key reused",
            extensions={"errors": [{"pointer": "", "rule": "idempotency-key",
                                    "detail": "use a new key for a new referral"}]},
        )


class LifecycleViolation(CaseBridgeError):
    """A status event the canonical lifecycle does not allow from the current state."""

    def __init__(self, *, current: str, requested: str, allowed: Sequence[str], why: str) -> None:
        super().__init__(
            detail=f"Cannot move from '{current}' to '{requested}': {why}",
            status=409, slug="lifecycle-violation", title="Status change not allowed",
            extensions={
                "current_state": current,
                "requested_state": requested,
                "allowed_next_states": list(allowed),
                "errors": [{"pointer": "/status", "rule": "lifecycle", "detail": why}],
            },
        )


class ServiceUnavailable(CaseBridgeError):
    def __init__(self, detail: str, checks: dict[str, str]) -> None:
        super().__init__(detail=detail, status=503, slug="not-ready", title="Not ready",
                         extensions={"checks": checks})


class DeliveryError(CaseBridgeError):
    """A partner system did not take a request; the subclass says whether to try again.

    `partner_message` is the partner's own words (bounded): they may quote a record's
    values, so they are stored encrypted with the delivery attempt or dead letter and shown
    to operators, but never put in `detail`, a log line or a broker header.
    """

    partner_status: int | None
    partner_code: str | None
    partner_message: str | None

    def partner_error(self) -> dict[str, Any] | None:
        """The partner's answer to keep (encrypted): status, code, message; None if none."""
        answer = {"status": self.partner_status, "code": self.partner_code,
                  "message": self.partner_message}
        return answer if any(v is not None for v in answer.values()) else None


class TransientDeliveryError(DeliveryError):
    """Worth retrying: timeout, dropped connection, 5xx, 429 (with the partner's Retry-After)."""

    def __init__(self, detail: str, *, retry_after: float | None = None,
                 partner_status: int | None = None, partner_code: str | None = None,
                 partner_message: str | None = None) -> None:
        super().__init__(detail=detail, status=502, slug="partner-unavailable",
                         title="Partner system unavailable",
                         extensions={"retry_after": retry_after, "partner_status": partner_status})
        self.retry_after = retry_after
        self.partner_status = partner_status
        self.partner_code = partner_code
        # Kept out of `detail` and `extensions`: see `DeliveryError.partner_error`.
        self.partner_message = partner_message


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help: the partner refused the request (4xx other than 429, validation)."""

    def __init__(self, detail: str, *, partner_status: int | None = None,
                 partner_code: str | None = None, partner_message: str | None = None) -> None:
        super().__init__(detail=detail, status=502, slug="partner-refused",
                         title="Partner system refused the request",
                         extensions={"partner_status": partner_status,
                                     "partner_code": partner_code})
        self.partner_status = partner_status
        self.partner_code = partner_code
        # Kept out of `detail` and `extensions`: see `DeliveryError.partner_error`.
        self.partner_message = partner_message


class MappingError(CaseBridgeError):
    """A mapping could not translate a record (or could not be found or loaded).

    The message and `extensions` name the mapping file, line, rule and field path, never the
    value that failed — except an unlisted code that has the shape of a code, which the
    operator needs to fix the code list — so delivery can dead-letter the record with it.
    """

    def __init__(self, detail: str, *, file: str = "", line: int = 0, rule: str = "",
                 path: str = "", **extra: Any) -> None:
        super().__init__(
            detail=detail, status=422, slug="mapping-error",
            title="The record cannot be translated",
            extensions={"file": file, "line": line, "rule": rule, "path": path, **extra},
        )


class ConfigurationError(CaseBridgeError):
    """The gateway is set up wrongly (a missing key, an unreadable file); no request caused it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail=detail, status=500, slug="configuration-error",
                         title="The gateway is not configured correctly")


class ConsentProblem(CaseBridgeError):
    """The consent, or the data-sharing agreement, does not let this referral leave.

    `receiver` and `agreement` are ids, set where the gateway established them, so that
    the refusal's audit entry (and the disclosure register) can name the partner pair.
    """

    def __init__(self, detail: str, errors: Sequence[FieldError], *, title: str,
                 slug: str = "consent-required", status: int = 422,
                 agreement: str | None = None) -> None:
        super().__init__(detail=detail, status=status, slug=slug, title=title,
                         extensions={"errors": [e.as_dict() for e in errors]})
        self.errors = list(errors)
        self.agreement = agreement
        self.receiver: str | None = None


class ServiceNotOffered(CaseBridgeError):
    """The service directory says the receiver does not offer a service asked, in the
    person's area, or has suspended it; `alternatives` lists who does."""

    def __init__(self, detail: str, errors: Sequence[FieldError],
                 alternatives: Sequence[dict[str, Any]]) -> None:
        super().__init__(detail=detail, status=422, slug="service-not-offered",
                         title="The receiver does not offer this service here",
                         extensions={"errors": [e.as_dict() for e in errors],
                                     "alternatives": list(alternatives)})
        self.errors = list(errors)
