"""Structured logging: JSON lines with a correlation id, never personal data.

Log events are snake_case verbs with ids, partner, state and attempt only. The
correlation id of the referral being handled is bound in a context variable, so
every line written while handling it carries it.
"""

import logging
import sys
import uuid
from typing import TextIO

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, merge_contextvars

CORRELATION_HEADER = "X-Correlation-ID"
_configured = False


def configure_logging(
    *, level: str = "info", json: bool = True, stream: TextIO | None = None
) -> None:
    """Route stdlib and structlog output through one JSON renderer on `stream` (stdout)."""
    global _configured
    _configured = True
    stream = stream or sys.stdout
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer])
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints paths and query strings; our own request log (with the
    # route template, not the path) replaces it. httpx logs every URL the adapters call at
    # INFO, and partner URLs carry people's identifiers (/person/<CRN>): warnings only.
    logging.getLogger("uvicorn.access").disabled = True
    # pika narrates every connection step at INFO: operators need its warnings only.
    for name in ("httpx", "httpcore", "pika"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def ensure_logging(*, level: str, json: bool) -> None:
    """Configure logging unless the process did already (the CLI, a test capturing logs)."""
    if not _configured:
        configure_logging(level=level, json=json)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def bind_correlation_id(correlation_id: str) -> None:
    """Start a fresh logging context carrying this correlation id."""
    clear_contextvars()
    bind_contextvars(correlation_id=correlation_id)
