"""Organisation look-ups and checks: providers, PDUs, teams, staff and who manages what."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandboxes.ndelius.codes import Code
from sandboxes.ndelius.errors import Conflict, NotFound, Unprocessable
from sandboxes.ndelius.models import Pdu, Provider, Staff, StaffTeam, Team


@dataclass
class Context:
    """One request's view of the sandbox: its session, who acts, and where it lives."""

    session: Session
    user: str
    client_id: str
    base_url: str
    provider: str  # the provider this instance stands in for


@dataclass(frozen=True)
class Manager:
    provider: str
    team: str
    staff: str


def pair(code: str | None, table: dict[str, Code]) -> dict[str, str] | None:
    """A stored code as `{code, description}`."""
    if code is None:
        return None
    known = table.get(code)
    return known.as_dict() if known else {"code": code, "description": code}


def checked_code(code: str | None, table: dict[str, Code], what: str) -> str | None:
    """`code` if the code set holds it (None passes), else a 422 naming the code set."""
    if code is not None and code not in table:
        raise Unprocessable(f"{what} code {code} is not valid", error_code="INVALID_CODE")
    return code


def provider(session: Session, code: str) -> Provider:
    found = session.get(Provider, code)
    if found is None:
        raise Unprocessable(f"Provider with code of {code} not found",
                            error_code="UNKNOWN_PROVIDER")
    return found


def pdu(session: Session, code: str) -> Pdu:
    found = session.get(Pdu, code)
    if found is None:
        raise Unprocessable(f"PDU with code of {code} not found", error_code="UNKNOWN_PDU")
    return found


def active_team(session: Session, code: str) -> Team:
    found = session.get(Team, code)
    if found is None:
        raise Unprocessable(f"Team with code of {code} not found", error_code="UNKNOWN_TEAM")
    if found.end_date is not None:
        raise Unprocessable(f"Team {code} is end-dated", error_code="TEAM_END_DATED")
    return found


def spoc_team(session: Session, pdu_code: str) -> Team:
    """The PDU's case-transfer single point of contact (what the National PDU locator finds)."""
    found = session.scalar(select(Team).where(Team.pdu_code == pdu_code,
                                              Team.transfer_spoc.is_(True),
                                              Team.end_date.is_(None)))
    if found is None:
        raise Unprocessable(f"PDU {pdu_code} has no case transfer SPOC team",
                            error_code="NO_SPOC_TEAM")
    return found


def staff_in_team(session: Session, team: Team, code: str | None) -> Staff:
    """The named staff member of `team`, or the team's unallocated staff when none is named."""
    code = code or f"{team.code}U"
    found = session.get(Staff, code)
    if found is None:
        raise Unprocessable(f"Staff with code of {code} not found", error_code="UNKNOWN_STAFF")
    if found.end_date is not None:
        raise Unprocessable(f"Staff {code} is end-dated", error_code="STAFF_END_DATED")
    if session.get(StaffTeam, (code, team.code)) is None:
        raise Unprocessable(f"Staff {code} is not a member of team {team.code}",
                            error_code="STAFF_NOT_IN_TEAM")
    return found


def resolve_manager(session: Session, *, team: str, staff: str | None,
                    provider_code: str | None = None) -> Manager:
    """Check a (provider, team, staff) reference and fill in the provider and staff."""
    found = active_team(session, team)
    if provider_code is not None and provider_code != found.provider_code:
        raise Unprocessable(f"Team {team} does not belong to provider {provider_code}",
                            error_code="TEAM_NOT_IN_PROVIDER")
    member = staff_in_team(session, found, staff)
    return Manager(provider=found.provider_code, team=found.code, staff=member.code)


def same_provider(current: str, new: str) -> None:
    """A direct allocation stays inside one provider; moving providers needs a transfer."""
    if current != new:
        raise Conflict(f"Cannot transfer from provider {current} to {new}",
                       error_code="CROSS_PROVIDER_ALLOCATION")


def manager_json(session: Session, manager: Manager) -> dict[str, Any]:
    """A manager as provider, PDU, team and staff `{code, description}` pairs."""
    prov = session.get(Provider, manager.provider)
    team = session.get(Team, manager.team)
    staff = session.get(Staff, manager.staff)
    pdu_row = session.get(Pdu, team.pdu_code) if team else None
    return {
        "provider": {"code": manager.provider,
                     "description": prov.description if prov else manager.provider},
        "pdu": {"code": pdu_row.code, "description": pdu_row.description} if pdu_row else None,
        "team": {"code": manager.team, "description": team.description if team else manager.team},
        "staff": {"code": manager.staff,
                  "name": {"forename": staff.forename, "surname": staff.surname} if staff else None,
                  "unallocated": manager.staff.endswith("U")},
    }


def providers_json(session: Session, *, home: str) -> list[dict[str, Any]]:
    """Every provider; `home` marks the one this instance stands in for."""
    return [{"code": p.code, "description": p.description, "home": p.code == home}
            for p in session.scalars(select(Provider).order_by(Provider.code))]


def provider_json(session: Session, code: str) -> dict[str, Any]:
    """A provider with its PDUs and their teams."""
    found = session.get(Provider, code)
    if found is None:
        raise NotFound("Provider", "code", code)
    pdus = session.scalars(select(Pdu).where(Pdu.provider_code == code).order_by(Pdu.code))
    return {"code": found.code, "description": found.description, "pdus": [
        {"code": p.code, "description": p.description, "teams": [
            _team_json(t) for t in session.scalars(
                select(Team).where(Team.pdu_code == p.code).order_by(Team.code))]}
        for p in pdus]}


def _team_json(team: Team) -> dict[str, Any]:
    return {"code": team.code, "description": team.description,
            "caseTransferSpoc": team.transfer_spoc,
            "endDate": team.end_date.isoformat() if team.end_date else None}


def team_json(session: Session, code: str) -> dict[str, Any]:
    """A team with its staff."""
    team = session.get(Team, code)
    if team is None:
        raise NotFound("Team", "code", code)
    staff = session.scalars(select(Staff).join(StaffTeam, StaffTeam.staff_code == Staff.code)
                            .where(StaffTeam.team_code == code).order_by(Staff.code))
    return {**_team_json(team), "provider": team.provider_code, "pdu": team.pdu_code,
            "district": team.district_code, "staff": [
                {"code": s.code, "name": {"forename": s.forename, "surname": s.surname},
                 "unallocated": s.unallocated,
                 "endDate": s.end_date.isoformat() if s.end_date else None} for s in staff]}
