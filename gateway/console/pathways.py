"""The referral pathways page: the coordination matrix for an area and a profile.

Organisation rows, service-type columns, each cell the organisation's services of that
type in the area for the profile, with availability and contact point — as coordination
groups print their referral pathways. Below it, the directory files refused and the files
left out for repeating another file's id, with why. Directory data only: no person.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import page
from gateway.contracts import Contracts
from gateway.directory.model import Area, Directory
from gateway.directory.registry import DirectoryRegistry
from gateway.directory.search import pathway

router = APIRouter(prefix="/console", include_in_schema=False)
PathwaysViewer = Annotated[Viewer, Depends(require(Page.PATHWAYS))]


@router.get("/pathways")
def pathways(request: Request, session: SessionDep, viewer: PathwaysViewer,
             area: Annotated[str, Query(max_length=100)] = "",
             profile: Annotated[str, Query(max_length=63)] = "") -> Response:
    """The pathway of the area and profile chosen (every area, every profile by default)."""
    registry: DirectoryRegistry = request.app.state.directory
    contracts: Contracts = request.app.state.contracts
    directory = registry.view(session)
    where = directory.areas.get(area)
    profiles = contracts.labels("profile")
    chosen = profile if profile in profiles else None
    types = contracts.labels("service-type")
    drawn = pathway(directory, area=where, profile=chosen, type_order=types)
    return page(request, "pathways.html", viewer=viewer, active=Page.PATHWAYS,
                areas=_area_choices(directory), area=where, profiles=profiles,
                profile=chosen, types=types, drawn=drawn,
                refused=sorted(registry.refusals, key=lambda r: r.at, reverse=True),
                conflicts=directory.conflicts)


def _area_choices(directory: Directory) -> list[tuple[Area, int]]:
    """Every area with its depth, each listed under the area it lies within."""
    def depth(area: Area) -> int:
        return len(directory.lineage(area.id)) - 1

    def key(area: Area) -> list[str]:
        return [a.name.casefold() for a in reversed(directory.lineage(area.id))]

    return [(a, depth(a)) for a in sorted(directory.areas.values(), key=key)]
