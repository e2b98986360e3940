"""Pages and forms: Jinja2 templates (autoescaped), form bodies, redirects.

Their security headers (no script, no framing, no caching) are set for every console
answer by the request middleware (gateway.api.headers)."""

import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Depends, Request
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.responses import HTMLResponse, RedirectResponse

from gateway.api.body import FORM, read_body
from gateway.console.access import ConsoleForbidden, Viewer
from gateway.errors import MalformedRequest

FORM_LIMIT = 64 * 1024

def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None, now: datetime) -> str:
    """How long ago (or, negative, from now) in the largest whole unit: 40 s, 12 min, 5 h, 3 d."""
    if value is None:
        return ""
    seconds = int((now - value).total_seconds())
    sign, seconds = ("in " if seconds < 0 else ""), abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{sign}{seconds // size} {unit}"
    return f"{sign}{seconds} s"


def _hours(value: float | None, unit: bool = True) -> str:
    return "—" if value is None else f"{value:.1f}{' h' if unit else ''}"


def _as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


templates = Environment(loader=PackageLoader("gateway.console", "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
templates.filters["when"] = _when
templates.filters["as_json"] = _as_json
templates.filters["hours"] = _hours
templates.filters["ago"] = _ago


def page(request: Request, template: str, *, viewer: Viewer | None, status: int = 200,
         **context: Any) -> HTMLResponse:
    """A rendered console page."""
    html = templates.get_template(template).render(viewer=viewer, **context)
    return HTMLResponse(html, status_code=status)  # headers: gateway.api.headers


# A printable document (a register summary, a person's export) is one self-contained
# file, to save or print: its styles are inline, and still no script may run. (The other
# security headers are the middleware's, as on every answer.)
PRINT_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                            "frame-ancestors 'none'; base-uri 'none'; "
                                            "form-action 'none'"}


def printable(template: str, **context: Any) -> str:
    """A self-contained printable document (templates/print/)."""
    return templates.get_template(f"print/{template}").render(**context)


def redirect(location: str) -> RedirectResponse:
    """See other: after a form, or to the login page."""
    return RedirectResponse(location, status_code=303)


@dataclass(frozen=True)
class Pager:
    """Page `number` of a filtered list, with links that keep the filters."""

    number: int
    size: int
    total: int
    filters: dict[str, str]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def link(self, number: int) -> str:
        return "?" + urlencode({**{k: v for k, v in self.filters.items() if v}, "page": number})


def safe_next(target: str | None) -> str | None:
    """A console path to go on to after login, never another site."""
    if not target or not target.startswith("/console") or target.startswith("//") \
            or "\\" in target or urlsplit(target).netloc:
        return None
    return target


class Form:
    """The fields of a posted form."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields

    def get(self, name: str, default: str = "") -> str:
        return next((value for key, value in self.fields if key == name), default)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]


async def read_form(request: Request) -> Form:
    """A URL-encoded form body, refused when it comes from another site or is too large."""
    # A browser cannot set X-Forwarded-Host on a cross-site form, so a proxy's is trusted.
    origin = request.headers.get("origin")
    ours = {request.headers.get("host"), request.headers.get("x-forwarded-host")} - {None}
    if origin is not None and urlsplit(origin).netloc not in ours:
        raise ConsoleForbidden("The form was sent from another site.", None)
    body = await read_body(request, media_type=FORM, limit=FORM_LIMIT)
    try:
        text = body.decode()
        fields = parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                           max_num_fields=1000)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedRequest("The form cannot be read.") from error
    return Form(fields)


FormDep = Annotated[Form, Depends(read_form)]


def check_csrf(form: Form, viewer: Viewer) -> None:
    """The form carries the token of the session that shows it."""
    if not hmac.compare_digest(form.get("csrf").encode(), viewer.csrf.encode()):
        raise ConsoleForbidden("The form is stale or was not sent from the console: reload "
                               "the page and try again.", viewer)
