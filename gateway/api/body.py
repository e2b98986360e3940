"""Reading a request body safely: media type, size limit, syntax.

`read_body` is the one place a body is read (JSON for the partner API, forms for OAuth2
and the console): the media type is checked first and the size limit while reading, so
an oversized body is refused without being held whole.
"""

import json
from typing import Any

from fastapi import Request

from gateway.errors import FieldError, MalformedRequest, PayloadTooLarge, UnsupportedMediaType

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


async def read_body(request: Request, *, media_type: str, limit: int) -> bytes:
    """The raw body, if sent as `media_type` (JSON also as `…+json`) and within `limit`."""
    got = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if got != media_type and not (media_type == JSON and got.endswith("+json")):
        raise UnsupportedMediaType(got, media_type)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise PayloadTooLarge(limit)
    return bytes(body)


async def read_json(request: Request, *, limit: int) -> Any:
    """The parsed body, or a problem naming why it cannot be read."""
    body = await read_body(request, media_type=JSON, limit=limit)
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
