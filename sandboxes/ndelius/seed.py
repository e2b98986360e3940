"""Seed data: national organisation reference data, and fictional people on probation.

Every instance holds the same national organisation (all providers, their PDUs, teams and
staff), as one national Delius does, so two instances standing in for two providers can name
each other's teams. People are seeded only for the instance's own provider.

Codes follow the shapes of §4: provider `N07`; PDU `N07A`; district (LDU) `N07A1`; team
`N07AOM` (6 characters); staff `N07AOM1` (team + 1), with `N07AOMU` the team's "unallocated"
staff. Each PDU has an offender-management team, a case-transfer SPOC team and an end-dated
team. CRNs are `<letter><provider digits><4 digits>`, e.g. `X070001` for provider N07.
All names are fictional.
"""

from datetime import date, datetime
from itertools import cycle

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandboxes.ndelius.models import (
    District,
    Offender,
    OffenderManager,
    Pdu,
    Provider,
    Staff,
    StaffTeam,
    Team,
)
from sandboxes.ndelius.store import now

# Fictional national provider list (codes in the real shape; not the real code-to-area map).
NATIONAL_PROVIDERS: dict[str, tuple[str, tuple[str, str]]] = {
    "N07": ("London", ("Camden and Islington", "Hackney and City")),
    "N03": ("Wales", ("Cardiff and the Vale", "Swansea Neath Port Talbot")),
    "N02": ("North East", ("County Durham", "Northumbria North")),
    "N04": ("Midlands", ("Birmingham Central", "Coventry")),
}
CRN_LETTERS = {"N07": "X", "N03": "W", "N02": "E", "N04": "M"}

_FORENAMES = ("Alex", "Robin", "Sam", "Jo", "Charlie", "Frankie", "Lee", "Kim")
_SURNAMES = ("Sampleton", "Fictionalson", "Placeholder", "Testwell", "Madeup", "Notreal",
             "Exampleby", "Pretendford")


def crn_for(provider: str, number: int) -> str:
    """The CRN of the `number`-th seeded person of `provider`."""
    digits = "".join(ch for ch in provider if ch.isdigit())[-2:].rjust(2, "0")
    letter = CRN_LETTERS.get(provider, provider[0].upper())
    return f"{letter}{digits}{number:04d}"


def seed_organisation(session: Session, providers: dict[str, tuple[str, tuple[str, str]]]) -> None:
    """Providers, PDUs, districts, teams and staff (idempotent)."""
    if session.scalar(select(Provider.code).limit(1)) is not None:
        return
    names = cycle(zip(_FORENAMES, reversed(_SURNAMES), strict=True))
    # Without ORM relationships between these tables, flush level by level so each row's
    # parent exists before it.
    for code, (description, pdu_names) in providers.items():
        session.add(Provider(code=code, description=description))
        session.flush()
        for letter, pdu_name in zip("AB", pdu_names, strict=True):
            pdu, district = f"{code}{letter}", f"{code}{letter}1"
            session.add(Pdu(code=pdu, description=pdu_name, provider_code=code))
            session.flush()
            session.add(District(code=district, description=f"{pdu_name} LDU", pdu_code=pdu))
            session.flush()
            members: list[tuple[str, str]] = []
            for suffix, label, spoc, ended in (("OM", "Offender Management", False, None),
                                               ("CT", "Case Transfer SPOC", True, None),
                                               ("XX", "Closed team", False, date(2021, 3, 31))):
                team = f"{pdu}{suffix}"
                session.add(Team(code=team, description=f"{pdu_name} {label}",
                                 district_code=district, pdu_code=pdu, provider_code=code,
                                 transfer_spoc=spoc, end_date=ended))
                session.add(Staff(code=f"{team}U", forename="Unallocated", surname="Staff",
                                  end_date=None))
                members.append((f"{team}U", team))
                for number in (1, 2):
                    forename, surname = next(names)
                    session.add(Staff(code=f"{team}{number}", forename=forename,
                                      surname=surname, end_date=ended))
                    members.append((f"{team}{number}", team))
            # A practitioner who has left: end-dated, still a member of the team.
            session.add(Staff(code=f"{pdu}OM9", forename="Former", surname="Leaverton",
                              end_date=date(2023, 6, 30)))
            members.append((f"{pdu}OM9", f"{pdu}OM"))
            session.flush()
            session.add_all(StaffTeam(staff_code=s, team_code=t) for s, t in members)
    session.flush()


_PEOPLE = (  # forename, surname, date of birth, gender, RoSH, MAPPA (category, level)
    ("Ashley", "Fictionalson", date(1988, 4, 12), "M", "M", None),
    ("Bailey", "Sampleton", date(1995, 11, 2), "F", "H", ("2", "2")),
    ("Casey", "Placeholder", date(1979, 1, 23), "M", "VH", ("1", "3")),
    ("Dana", "Madeup", date(2001, 7, 30), "F", "L", None),
    ("Ellis", "Notreal", date(1990, 9, 9), "N", "M", ("2", "1")),
    ("Morgan", "Testwell", date(1984, 2, 17), "M", "H", ("3", "2")),
)


def seed_people(session: Session, provider: str) -> None:
    """Six fictional people managed by `provider`'s first PDU (idempotent)."""
    if session.scalar(select(Offender.offender_id).limit(1)) is not None:
        return
    moment: datetime = now()
    for number, (forename, surname, born, gender, rosh, mappa) in enumerate(_PEOPLE, start=1):
        person = Offender(
            crn=crn_for(provider, number),
            noms_number=f"A{1000 + number}AA" if number % 2 else None,
            forename=forename, surname=surname, date_of_birth=born, gender_code=gender,
            pnc_number=f"2019/{number:07d}Z", rosh_level=rosh,
            mappa_category=mappa[0] if mappa else None, mappa_level=mappa[1] if mappa else None,
            created_datetime=moment)
        team = f"{provider}AOM"
        person.managers.append(OffenderManager(
            provider_code=provider, team_code=team, staff_code=f"{team}{1 + number % 2}",
            allocation_date=moment, allocation_reason="IN1", end_date=None, active_flag=True))
        session.add(person)
