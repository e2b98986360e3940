"""Parameter types whose OpenAPI schema says exactly what the API accepts.

A value outside the schema is refused with 400 naming the parameter; a value inside it is
read as documented (no lax parsing of `1700000000` as a date, say).
"""

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

from gateway.protection.agreements import PARTNER_ID

# RFC 3339 with a time zone, as the contracts write date-times.
DATE_TIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
                     r"(Z|[+-][0-9]{2}:[0-9]{2})$")
PARTNER_ID_PATTERN = f"^{PARTNER_ID.pattern}$"
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_DATE_TIME = re.compile(DATE_TIME_PATTERN)


def _date_time(value: Any) -> datetime:
    if not isinstance(value, str) or not _DATE_TIME.fullmatch(value):
        raise ValueError("must be an RFC 3339 date-time with a time zone, e.g. "
                         "2026-11-01T09:30:00Z")
    return datetime.fromisoformat(value)  # a day or hour that does not exist: ValueError


DateTime = Annotated[datetime, PlainValidator(_date_time), WithJsonSchema(
    {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN})]
