"""Data-subject requests in the console (auditor role): find a person's referrals by
identifier, export them for the person, restrict or erase them.

The identifiers travel only in POSTed forms, never in a URL (which a proxy may log), and
never reach the audit trail or a log line: the trail keeps the reason, the reference of
the request and how many identifiers were searched.
"""

import json
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import Page, Viewer, require
from gateway.console.render import (
    PRINT_HEADERS,
    Form,
    FormDep,
    check_csrf,
    page,
    printable,
)
from gateway.contracts import Contracts
from gateway.errors import ValidationProblem
from gateway.protection import subject_requests as requests
from gateway.protection.agreements import AgreementRegistry
from gateway.store.models import Referral, utcnow

router = APIRouter(prefix="/console", include_in_schema=False)
SubjectViewer = Annotated[Viewer, Depends(require(Page.SUBJECT_REQUESTS))]
ACTIONS = ("export-html", "export-json", "restrict", "erase")


@router.get("/subject-requests")
def request_form(request: Request, viewer: SubjectViewer) -> Response:
    """The form: identifiers, reason, reference."""
    return _page(request, viewer)


@router.post("/subject-requests/find")
def find(request: Request, form: FormDep, session: SessionDep,
         viewer: SubjectViewer) -> Response:
    """The person's referrals (the lookup is audited)."""
    check_csrf(form, viewer)
    try:
        why = _why(form, viewer)
        found = requests.find(session, identifiers=_lines(form), why=why)
    except ValidationProblem as problem:
        return _page(request, viewer, form=form, problem=problem)
    return _page(request, viewer, form=form, found=found)


@router.post("/subject-requests/act")
def act(request: Request, form: FormDep, session: SessionDep,
        viewer: SubjectViewer) -> Response:
    """Export, restrict or erase the chosen referrals of the person (each audited)."""
    check_csrf(form, viewer)
    action = form.get("action")
    contracts: Contracts = request.app.state.contracts
    agreements: AgreementRegistry = request.app.state.agreements
    try:
        if action not in ACTIONS:
            raise ValidationProblem("Choose what to do.", [])
        why = _why(form, viewer)
        if action in ("restrict", "erase") and form.get("confirm") != "yes":
            raise ValidationProblem("Tick the box to confirm that the agreement and the law "
                                    "allow it; nothing was changed.", [])
        found = requests.find(session, identifiers=_lines(form), why=why)
    except ValidationProblem as problem:
        return _page(request, viewer, form=form, problem=problem)
    chosen = requests.chosen(found, form.all("ids"))
    if action.startswith("export-"):
        form_name = action.removeprefix("export-")
        disclosures = requests.export(session, referrals=chosen, contracts=contracts,
                                      agreements=agreements, why=why, form=form_name)
        return _download(disclosures, why, form_name)
    results = []
    for referral in chosen:
        if action == "erase":
            results.append(requests.erase(session, contracts=contracts, agreements=agreements,
                                          referral=referral, why=why))
        else:
            results.append(requests.restrict(session, contracts=contracts, referral=referral,
                                             why=why))
    session.commit()
    return _page(request, viewer, form=form, found=found, results=results)


def _why(form: Form, viewer: Viewer) -> requests.Request:
    return requests.request(actor=viewer.actor, reason=form.get("reason"),
                            reference=form.get("reference").strip())


def _lines(form: Form) -> list[str]:
    return form.get("identifiers").splitlines()


def _download(disclosures: list[requests.Disclosure], why: requests.Request,
              form: str) -> Response:
    at = utcnow()
    name = (f"casebridge-subject-export-{re.sub(r'[^A-Za-z0-9._-]', '-', why.reference)}-"
            f"{at:%Y%m%dT%H%M%SZ}.{form}")
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if form == "json":
        body = json.dumps(requests.as_json(disclosures, why=why, at=at), indent=2,
                          ensure_ascii=False, default=str)
        return Response(body, media_type="application/json",
                        headers=disposition)
    html = printable("subject_export.html", disclosures=disclosures, why=why, at=at,
                     reason_text=requests.REASONS[why.reason])
    return Response(html, media_type="text/html; charset=utf-8",
                    headers={**PRINT_HEADERS, **disposition})


def _page(request: Request, viewer: Viewer, *, form: Form | None = None,
          problem: ValidationProblem | None = None, found: list[Referral] | None = None,
          results: list[requests.Stopped] | None = None) -> Response:
    return page(request, "subject_requests.html", viewer=viewer,
                active=Page.SUBJECT_REQUESTS, status=422 if problem else 200,
                error=problem.detail if problem else None,
                problems=[e.as_dict() for e in problem.errors] if problem else [],
                reasons=requests.REASONS, identifiers=form.get("identifiers") if form else "",
                reason=form.get("reason") if form else "", reference=form.get("reference")
                if form else "", found=found, results=results or [])
