"""Reading a JSON request body safely: media type, size limit, syntax."""

import json
from typing import Any

from fastapi import Request

from gateway.errors import FieldError, MalformedRequest, PayloadTooLarge, UnsupportedMediaType


async def read_json(request: Request, *, limit: int) -> Any:
    """The parsed body, or a problem naming why it cannot be read."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(media_type)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(limit)
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise MalformedRequest("The body is not UTF-8 text.", errors=[
            FieldError("", "encoding", "send UTF-8 encoded JSON")]) from error
    except json.JSONDecodeError as error:
        # The decoder's message names the syntax problem, never the content.
        raise MalformedRequest(
            f"The body is not valid JSON: {error.msg} at line {error.lineno} "
            f"column {error.colno}.",
            errors=[FieldError("", "json-syntax", f"{error.msg} at line {error.lineno} "
                                                  f"column {error.colno}")],
        ) from error


async def json_body(request: Request) -> Any:
    """Dependency form of `read_json`, with the configured size limit."""
    return await read_json(request, limit=request.app.state.settings.max_body_bytes)
