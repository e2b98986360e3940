"""Who may open what: the one table of roles and pages, and the dependencies enforcing it.

Every console route names its page; the dependency loads the logged-in user from the
session cookie and the store, and refuses a role the table does not list. The navigation
is built from the same table, so it never offers a page the role cannot open.
"""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request

from gateway.api.deps import SessionDep
from gateway.console.sessions import COOKIE, SessionCookies, password_stamp
from gateway.console.users import Role
from gateway.errors import Forbidden, NotAuthenticated
from gateway.store.models import ConsoleUser


class Page(StrEnum):
    OVERVIEW = "overview"
    DELIVERIES = "deliveries"
    DEAD_LETTERS = "dead_letters"
    REFERRALS = "referrals"
    REFERRAL_CONTENT = "referral_content"
    MAPPINGS = "mappings"
    PATHWAYS = "pathways"
    AUDIT = "audit"
    DISCLOSURES = "disclosures"
    AGREEMENTS = "agreements"
    SUBJECT_REQUESTS = "subject_requests"
    REPORTS = "reports"
    OVERDUE = "overdue"
    PARTNERS = "partners"


_OPERATIONS = frozenset({Page.OVERVIEW, Page.DELIVERIES, Page.DEAD_LETTERS, Page.REFERRALS,
                         Page.OVERDUE, Page.PARTNERS, Page.PATHWAYS})

# Need to know: operators run delivery and never see a person; IM officers also keep the
# mappings and agreements and may open a referral's content (each opening audited);
# auditors (the data-protection officer) read the audit trail, the disclosure register
# and agreement health, and answer a person's requests about their data (each audited,
# with its reason). Every role reads the reports: aggregates, never a person.
PAGES: dict[Role, frozenset[Page]] = {
    Role.OPERATOR: _OPERATIONS | {Page.REPORTS},
    Role.IM_OFFICER: _OPERATIONS | {Page.MAPPINGS, Page.REFERRAL_CONTENT, Page.AGREEMENTS,
                                    Page.REPORTS},
    Role.AUDITOR: frozenset({Page.AUDIT, Page.DISCLOSURES, Page.AGREEMENTS,
                             Page.SUBJECT_REQUESTS, Page.REPORTS}),
}

ROLE_LABELS = {Role.OPERATOR: "operator", Role.IM_OFFICER: "IM officer",
               Role.AUDITOR: "auditor"}


@dataclass(frozen=True)
class NavItem:
    page: Page
    label: str
    path: str


NAV = (
    NavItem(Page.OVERVIEW, "Overview", "/console/overview"),
    NavItem(Page.DELIVERIES, "Deliveries", "/console/deliveries"),
    NavItem(Page.DEAD_LETTERS, "Dead letters", "/console/dead-letters"),
    NavItem(Page.REFERRALS, "Referrals", "/console/referrals"),
    NavItem(Page.OVERDUE, "Overdue", "/console/overdue"),
    NavItem(Page.PARTNERS, "Partners", "/console/partners"),
    NavItem(Page.MAPPINGS, "Mappings", "/console/mappings"),
    NavItem(Page.PATHWAYS, "Pathways", "/console/pathways"),
    NavItem(Page.AUDIT, "Audit trail", "/console/audit"),
    NavItem(Page.DISCLOSURES, "Disclosures", "/console/disclosures"),
    NavItem(Page.AGREEMENTS, "Agreements", "/console/agreements"),
    NavItem(Page.SUBJECT_REQUESTS, "Data-subject requests", "/console/subject-requests"),
    NavItem(Page.REPORTS, "Reports", "/console/reports"),
)


@dataclass(frozen=True)
class Viewer:
    """The logged-in console user of this request."""

    username: str
    role: Role
    csrf: str

    @property
    def actor(self) -> str:
        """How the audit trail and dead letters name this user."""
        return f"user:{self.username}"

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def nav(self) -> list[NavItem]:
        return [item for item in NAV if self.may(item.page)]

    @property
    def home(self) -> str:
        return self.nav[0].path

    def may(self, page: Page) -> bool:
        return page in PAGES[self.role]


class LoginRequired(NotAuthenticated):
    """No valid session: the console answers with its login page."""

    def __init__(self) -> None:
        super().__init__("Log in to the console.")


class ConsoleForbidden(Forbidden):
    """Refused: the console answers with a page saying why."""

    def __init__(self, detail: str, viewer: Viewer | None) -> None:
        super().__init__(detail)
        self.viewer = viewer


class RoleForbidden(ConsoleForbidden):
    """The user's role may not open this page."""

    def __init__(self, viewer: Viewer, page: Page) -> None:
        super().__init__(f"The role {viewer.role_label} may not open this page.", viewer)
        self.page = page


def cookies_of(request: Request) -> SessionCookies:
    cookies: SessionCookies = request.app.state.console_cookies
    return cookies


def current_viewer(request: Request, session: SessionDep) -> Viewer | None:
    """The user the session cookie names, if it is valid and the user still active."""
    found = cookies_of(request).read(request.cookies.get(COOKIE))
    if found is None:
        return None
    user = session.get(ConsoleUser, found.username)
    if user is None or not user.active or password_stamp(user) != found.stamp:
        return None
    try:
        role = Role(user.role)
    except ValueError:
        return None
    return Viewer(user.username, role, found.csrf)


MaybeViewerDep = Annotated[Viewer | None, Depends(current_viewer)]


def require(page: Page) -> Callable[[MaybeViewerDep], Viewer]:
    """A dependency letting through only users whose role may open `page`."""

    def allowed(viewer: MaybeViewerDep) -> Viewer:
        if viewer is None:
            raise LoginRequired()
        if not viewer.may(page):
            raise RoleForbidden(viewer, page)
        return viewer

    return allowed


def any_role(viewer: MaybeViewerDep) -> Viewer:
    """Any logged-in user."""
    if viewer is None:
        raise LoginRequired()
    return viewer


AnyViewerDep = Annotated[Viewer, Depends(any_role)]
