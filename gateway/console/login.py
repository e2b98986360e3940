"""Logging in and out of the console; every attempt goes to the audit trail."""

import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console.access import AnyViewerDep, MaybeViewerDep, cookies_of
from gateway.console.render import FormDep, check_csrf, page, redirect, safe_next
from gateway.console.users import USERNAME, LoginRefused, authenticate_user
from gateway.protection import audit

log = structlog.get_logger()
router = APIRouter(prefix="/console", include_in_schema=False)

# Views are plain functions: FastAPI runs them on worker threads, so the scrypt check and
# the store never hold up the event loop.


@router.get("")
@router.get("/")
def home(viewer: MaybeViewerDep) -> Response:
    """The first page the user's role may open, or the login page."""
    return redirect(viewer.home if viewer else "/console/login")


@router.get("/login")
def login_form(request: Request, viewer: MaybeViewerDep, next: str | None = None) -> Response:
    """The login form (a logged-in user goes straight on)."""
    if viewer is not None:
        return redirect(safe_next(next) or viewer.home)
    return page(request, "login.html", viewer=None, next=safe_next(next) or "", failed=False,
                username="")


@router.post("/login")
def login(request: Request, form: FormDep, session: SessionDep) -> Response:
    """Check the username and password; on success open a session (a signed cookie)."""
    username = form.get("username").strip().lower()
    target = safe_next(form.get("next"))
    try:
        user = authenticate_user(session=session, username=username,
                                 password=form.get("password"))
    except LoginRefused as refused:
        known = refused.reason != "unknown_user"
        # An unknown name may be a password typed into the wrong field: it is never kept.
        actor = f"user:{username}" if known and USERNAME.match(username) else "user:?"
        audit.record(session, actor=actor, action="console.login",
                     detail={"ok": False, "reason": refused.reason})
        log.info("console_login_refused", user=username if known else None,
                 reason=refused.reason)
        return page(request, "login.html", viewer=None, status=401, next=target or "",
                    failed=True, username=username if known else "")
    audit.record(session, actor=f"user:{user.username}", action="console.login",
                 detail={"ok": True, "role": user.role})
    log.info("console_login", user=user.username, role=user.role)
    cookies = cookies_of(request)
    token, _ = cookies.issue(user)
    response = redirect(target or "/console/")
    cookies.set_cookie(response, token)
    return response


@router.post("/logout")
def logout(request: Request, form: FormDep, viewer: AnyViewerDep) -> Response:
    """End the session: the cookie is cleared."""
    check_csrf(form, viewer)
    log.info("console_logout", user=viewer.username)
    response = redirect("/console/login")
    cookies_of(request).clear_cookie(response)
    return response
