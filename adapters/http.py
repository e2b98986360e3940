"""HTTP details every adapter shares."""

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


PARTNER_MESSAGE_LIMIT = 500


def partner_message(*parts: object) -> str | None:
    """The partner's own words about an error: the text parts joined, cut to 500 characters.

    They may quote a record's values, so they go to the encrypted store only (see
    `DeliveryError.partner_error`), never into a log line, an error detail or the broker.
    """
    texts = list(dict.fromkeys(str(p).strip() for p in parts
                               if isinstance(p, str | int | float) and str(p).strip()))
    if not texts:
        return None
    text = " | ".join(texts)
    return text if len(text) <= PARTNER_MESSAGE_LIMIT else text[:PARTNER_MESSAGE_LIMIT - 1] + "…"
