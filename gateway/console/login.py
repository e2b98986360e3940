"""Logging in and out of the console; every attempt goes to the audit trail."""

import math

import structlog
from fastapi import APIRouter, Request
from starlette.responses import Response

from gateway.api.deps import SessionDep
from gateway.console import throttle
from gateway.console.access import AnyViewerDep, MaybeViewerDep, cookies_of
from gateway.console.render import FormDep, check_csrf, page, redirect, safe_next
from gateway.console.users import USERNAME, LoginRefused, authenticate_user
from gateway.protection import audit
from gateway.store.models import ConsoleUser, utcnow

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
                username="", held=None, seconds=0, counted=None,
                policy=throttle.Policy.of(request.app.state.settings))


@router.post("/login")
def login(request: Request, form: FormDep, session: SessionDep) -> Response:
    """Check the username and password; on success open a session (a signed cookie).

    Throttled (gateway.console.throttle): an attempt held back is refused before its
    password is checked; every failure is counted, audited and shown to the user.
    """
    username = form.get("username").strip().lower()
    target = safe_next(form.get("next"))
    address = request.client.host if request.client else "unknown"
    policy = throttle.Policy.of(request.app.state.settings)
    now = utcnow()
    wait = throttle.held(session, username=username, address=address, now=now, policy=policy)
    if wait is not None:
        known = USERNAME.match(username) is not None and \
            session.get(ConsoleUser, username) is not None
        audit.record(session, actor=_actor(username, known), action="console.login",
                     detail={"ok": False, "reason": "held", "scope": wait.scope,
                             "address": address, "until": wait.until.isoformat()})
        log.info("console_login_held", user=username if known else None, scope=wait.scope,
                 locked=wait.locked)
        response = page(request, "login.html", viewer=None, status=429, next=target or "",
                        failed=False, username=username if known else "", held=wait,
                        seconds=wait.seconds(now), counted=None, policy=policy)
        response.headers["Retry-After"] = str(wait.seconds(now))
        return response
    try:
        user = authenticate_user(session=session, username=username,
                                 password=form.get("password"))
    except LoginRefused as refused:
        known = refused.reason != "unknown_user"
        counted = throttle.failed(session, username=username, known=known, address=address,
                                  now=now, policy=policy)
        audit.record(session, actor=_actor(username, known), action="console.login",
                     detail={"ok": False, "reason": refused.reason,
                             "failures": counted.failures})
        for lock in counted.locked:
            audit.record(session, actor=_actor(username, known and lock.scope != "address"),
                         action="console.lockout",
                         detail={"scope": lock.scope, "address": address,
                                 "until": lock.until.isoformat()})
            log.warning("console_login_locked", user=username if known else None,
                        scope=lock.scope)
        log.info("console_login_refused", user=username if known else None,
                 reason=refused.reason, failures=counted.failures)
        return page(request, "login.html", viewer=None, status=401, next=target or "",
                    failed=True, username=username if known else "", held=None,
                    seconds=math.ceil(counted.wait.total_seconds()), counted=counted,
                    policy=policy)
    throttle.succeeded(session, username=user.username, address=address)
    audit.record(session, actor=f"user:{user.username}", action="console.login",
                 detail={"ok": True, "role": user.role})
    log.info("console_login", user=user.username, role=user.role)
    cookies = cookies_of(request)
    token, _ = cookies.issue(user)
    signed_in = redirect(target or "/console/")
    cookies.set_cookie(signed_in, token)
    return signed_in


def _actor(username: str, known: bool) -> str:
    """How the trail names who tried: an unknown name may be a password typed into the
    wrong field, so it is never kept."""
    return f"user:{username}" if known and USERNAME.match(username) else "user:?"


@router.post("/logout")
def logout(request: Request, form: FormDep, viewer: AnyViewerDep) -> Response:
    """End the session: the cookie is cleared."""
    check_csrf(form, viewer)
    log.info("console_logout", user=viewer.username)
    response = redirect("/console/login")
    cookies_of(request).clear_cookie(response)
    return response
