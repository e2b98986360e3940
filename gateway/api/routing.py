"""Every route of the app, whichever router it came from."""

from collections.abc import Iterable, Iterator
from typing import Any

import fastapi.routing
from starlette.applications import Starlette


def flat_routes(app: Starlette) -> Iterator[Any]:
    """Each route of `app` (newer FastAPI wraps the routes of an included router in a context
    that reads like the route itself: path, methods, dependencies, `matches`)."""
    contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = contexts(app.routes) if contexts else app.routes
    yield from routes


def is_api_route(route: Any) -> bool:
    """Whether `route` (or the route a context wraps) is a FastAPI route."""
    return isinstance(getattr(route, "original_route", route), fastapi.routing.APIRoute)
