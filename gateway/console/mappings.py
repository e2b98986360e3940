"""IM officers' page: the mappings in force and the ones refused, with their problems, and a
preview box: paste a native record, pick a mapping, see the canonical result (with the line
of the rule that made each field) or what stopped it, as file:line.

The pasted record is the officer's own to see: it is sent in the form's body (never in an
address), translated in memory, shown back on the answer, and neither stored nor logged.
"""

import json
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.console.access import Page, Viewer, require
from gateway.console.render import FormDep, check_csrf, page
from gateway.contracts import Contracts
from gateway.errors import FieldError, MappingError
from gateway.mapping.model import Direction
from gateway.mapping.preview import Origin, origins
from gateway.mapping.registry import MappingRegistry

router = APIRouter(prefix="/console", include_in_schema=False)
MappingsViewer = Annotated[Viewer, Depends(require(Page.MAPPINGS))]
MAX_RECORD = 60_000  # characters: one record, not a batch


@dataclass
class Preview:
    """What a preview found: the output and each field's rule, or why there is none."""

    choice: str = ""
    record: str = ""
    output: str | None = None
    origins: list[Origin] = field(default_factory=list)
    file: str = ""
    problems: list[str] = field(default_factory=list)
    contract_errors: list[FieldError] = field(default_factory=list)


def choices(registry: MappingRegistry) -> list[tuple[str, str]]:
    """(value, label) of each mapping in force and direction it can run, by system."""
    found = []
    for m in sorted(registry.loaded(), key=lambda m: (m.system, m.name)):
        for direction in m.directions:
            what = "native → canonical" if direction == "inbound" else "canonical → native"
            found.append((f"{m.system}/{m.name}:{direction}",
                          f"{m.system}/{m.name} ({what})"))
    return found


def run_preview(registry: MappingRegistry, contracts: Contracts, *, choice: str,
                record: str) -> Preview:
    """Translate one pasted record with the chosen mapping in force."""
    preview = Preview(choice=choice, record=record)
    mapping_id, _, direction = choice.rpartition(":")
    compiled = next((m for m in registry.loaded() if f"{m.system}/{m.name}" == mapping_id
                     and direction in m.directions), None)
    if compiled is None:
        preview.problems.append("Pick a mapping in force.")
        return preview
    preview.file = compiled.file
    if len(record) > MAX_RECORD:
        preview.problems.append(f"The record is longer than {MAX_RECORD} characters: paste "
                                "one record.")
        return preview
    try:
        data = json.loads(record)
    except json.JSONDecodeError as error:
        preview.problems.append(f"The record is not JSON: {error.msg} at line {error.lineno}, "
                                f"column {error.colno} of what you pasted.")
        return preview
    chosen: Direction = "inbound" if direction == "inbound" else "outbound"
    try:
        output = compiled.run(chosen, data)
    except MappingError as error:
        preview.problems.append(error.detail)
        return preview
    preview.output = json.dumps(output, indent=2, ensure_ascii=False)
    preview.origins = origins(compiled.mapping.blocks[chosen].rules, data, output)
    if chosen == "inbound" and compiled.contract:
        preview.contract_errors = contracts.validate(compiled.contract, output)
    return preview


def _page(request: Request, viewer: Viewer, preview: Preview, status: int = 200) -> Response:
    registry: MappingRegistry = request.app.state.mappings
    registry.refresh()
    in_force = sorted(registry.loaded(), key=lambda m: (m.system, m.name))
    refused = sorted(registry.refusals, key=lambda r: r.at, reverse=True)
    return page(request, "mappings.html", viewer=viewer, active=Page.MAPPINGS, status=status,
                in_force=in_force, refused=refused, choices=choices(registry),
                preview=preview)


@router.get("/mappings")
def mappings(request: Request, viewer: MappingsViewer) -> Response:
    """Checked now from the folder the workers read, as the operations API does."""
    return _page(request, viewer, Preview())


@router.post("/mappings/preview")
def preview(request: Request, form: FormDep, viewer: MappingsViewer) -> Response:
    """Translate the pasted record; the answer shows the result or the problems."""
    check_csrf(form, viewer)
    registry: MappingRegistry = request.app.state.mappings
    registry.refresh()
    contracts: Contracts = request.app.state.contracts
    found = run_preview(registry, contracts, choice=form.get("mapping"),
                        record=form.get("record"))
    return _page(request, viewer, found, status=422 if found.problems else 200)
