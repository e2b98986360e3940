"""The console mounted on the gateway's app: its pages, static files and error pages.

Kept apart from the package so that `casebridge users …` and other commands load only
what they use.
"""


from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from gateway.console import (
    deliveries,
    disclosures,
    login,
    mappings,
    overdue,
    overview,
    partners,
    pathways,
    referrals,
    reports,
    subject_requests,
    trail,
)
from gateway.console.access import ConsoleForbidden, LoginRequired
from gateway.console.render import page, redirect
from gateway.console.sessions import SessionCookies
from gateway.settings import Settings

STATIC = Path(__file__).resolve().parent / "static"


def install_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console under /console in `app`."""
    app.state.console_cookies = SessionCookies(
        lifetime=timedelta(hours=settings.console_session_hours),
        secure=settings.console_secure_cookie)
    for module in (login, overview, deliveries, referrals, overdue, partners, mappings,
                   pathways, trail, disclosures, subject_requests, reports):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _: LoginRequired) -> Response:
        cookies: SessionCookies = request.app.state.console_cookies
        if request.method in ("GET", "HEAD"):
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = redirect(f"/console/login?next={quote(here, safe='/')}")
        else:
            response = page(request, "error.html", viewer=None, status=401,
                            title="Session ended", message="Your session has ended: log in "
                            "again, then repeat what you were doing.")
        cookies.clear_cookie(response)
        return response

    @app.exception_handler(ConsoleForbidden)
    async def forbidden(request: Request, error: ConsoleForbidden) -> Response:
        return page(request, "error.html", viewer=error.viewer, status=403, title="Not allowed",
                    message=error.detail)
