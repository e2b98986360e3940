"""IM officers' page: the mappings in force and the ones refused, with their problems."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.console.access import Page, Viewer, require
from gateway.console.render import page
from gateway.mapping.registry import MappingRegistry

router = APIRouter(prefix="/console", include_in_schema=False)
MappingsViewer = Annotated[Viewer, Depends(require(Page.MAPPINGS))]


@router.get("/mappings")
def mappings(request: Request, viewer: MappingsViewer) -> Response:
    """Checked now from the folder the workers read, as the operations API does."""
    registry: MappingRegistry = request.app.state.mappings
    registry.refresh()
    in_force = sorted(registry.loaded(), key=lambda m: (m.system, m.name))
    refused = sorted(registry.refusals, key=lambda r: r.at, reverse=True)
    return page(request, "mappings.html", viewer=viewer, active=Page.MAPPINGS,
                in_force=in_force, refused=refused)
