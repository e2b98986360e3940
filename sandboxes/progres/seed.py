"""What a fresh sandbox holds: reference data always, fictional demo records on request.

Reference data (business units, users, partners, intervention types) exists in every
environment, as configuration does in a real proGres. The demo records are obviously
fictional people ("Testa Fictionalia", "Demo Mockwell" …) with their registration groups,
cases, SGBV incident, BIAs, an LP intervention, interoperability referrals and Data
Transfer Requests in assorted states. Ids are stable (uuid5) so demos can name them.
"""

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from sandboxes.progres.schema import (
    BY_LOGICAL,
    CASE_TYPE,
    CONSENT_FORM,
    CONSENT_GIVEN_BY,
    DIRECTION,
    PARTNER_TYPE,
    PRIORITY,
    REFERRAL_REJECTION_REASON,
    REVIEW_DECISION,
    ROUTE_TO,
    SEX,
    SGBV_TYPE,
    URGENCY,
    ReferralStatus,
    TransferStatus,
)
from sandboxes.progres.store import Store

NAMESPACE = uuid.UUID("6f1b7c52-1f43-4c8e-9f55-2b8e1c0a7d10")
ORGANIZATION_ID = str(uuid.uuid5(NAMESPACE, "organization"))


def sid(name: str) -> str:
    """The stable id of a seeded record."""
    return str(uuid.uuid5(NAMESPACE, name))


ROOT_UNIT = sid("businessunit:root")
INTEGRATION_USER = sid("systemuser:casebridge")
DTP_USER = sid("systemuser:dtp")  # the integration layer's own account (DTP, see `dtp`)
CASEWORKER_USER = sid("systemuser:caseworker")
REVIEWER_USER = sid("systemuser:reviewer")

FEMALE, MALE, _, _ = tuple(SEX)
OUTGOING, INCOMING = tuple(DIRECTION)
TO_PARTNER, TO_UNIT, TO_USER, TO_SERVICE_PROVIDER = tuple(ROUTE_TO)
ROUTINE, URGENT, _ = tuple(URGENCY)
WRITTEN, VERBAL = tuple(CONSENT_FORM)

INTERVENTION_TYPES = (  # (code, description, enabled for interop) — the enabled four: [fact]
    ("ALTC", "Alternative Care", True),
    ("BIA", "Best Interests Assessment", True),
    ("BID", "Best Interests Determination", True),
    ("FTR", "Family Tracing and Reunification", True),
    ("BIDBIA", "BID / BIA conducted", False),
    ("ACC", "Accessibility", False),
    ("PSS", "Psychosocial support", False),
    ("LEGAL", "Legal aid", False),
)


def intervention_type_id(code: str) -> str:
    return sid(f"progres_interventiontype:{code}")


class Seeder:
    def __init__(self, store: Store, conn: Connection, *, office: str) -> None:
        self.store = store
        self.conn = conn
        self.office = office
        self.clock = datetime(2026, 10, 1, 8, 0, 0)

    def add(self, logical: str, name: str, values: dict[str, Any], *,
            statuscode: int | None = None, user: str = CASEWORKER_USER) -> str:
        entity = BY_LOGICAL[logical]
        self.clock += timedelta(minutes=7)
        if entity.autonumber and entity.autonumber[0] not in values:
            column, pattern = entity.autonumber
            n = self.store.next_value(self.conn, f"autonumber:{logical}")
            values[column] = pattern.format(office=self.office, yy=f"{self.clock:%y}", n=n)
        status = statuscode if statuscode is not None else entity.status.defaults[0]
        key = sid(f"{logical}:{name}")
        self.store.insert(self.conn, entity,
                          {**values, entity.key: key, "statuscode": status,
                           "statecode": entity.status.state_of(status),
                           "createdon": self.clock, "modifiedon": self.clock},
                          user_id=user, now=self.clock)
        return key


def seed_reference(store: Store, *, office: str) -> None:
    """Business units, users, partners and intervention types (idempotent)."""
    with store.writing() as conn:
        if not store.is_empty(conn, BY_LOGICAL["systemuser"]):
            return
        s = Seeder(store, conn, office=office)
        s.add("businessunit", "root", {"name": f"UNHCR Sandbox Office ({office})"})
        cp_unit = s.add("businessunit", "cp", {"name": "Child Protection Unit"})
        s.add("businessunit", "protection", {"name": "Protection Unit"})
        s.add("businessunit", "rsd", {"name": "RSD Unit"})
        unicef = s.add("progres_partner", "unicef", {
            "progres_organizationname": "UNICEF (sandbox)", "progres_acronym": "UNICEF",
            "progres_partnertype": tuple(PARTNER_TYPE)[1]})
        s.add("progres_partner", "legal", {
            "progres_organizationname": "Sandbox Legal Aid Partner", "progres_acronym": "SLAP",
            "progres_partnertype": tuple(PARTNER_TYPE)[0]})
        s.add("progres_partner", "health", {
            "progres_organizationname": "Sandbox Health Partner", "progres_acronym": "SHP",
            "progres_partnertype": tuple(PARTNER_TYPE)[3]})
        s.add("progres_partner", "probation", {
            "progres_organizationname": "Sandbox Probation Service", "progres_acronym": "SPS",
            "progres_partnertype": tuple(PARTNER_TYPE)[2]})
        s.add("systemuser", "casebridge", {
            "fullname": "# CaseBridge Integration", "applicationid": sid("app:casebridge"),
            "_businessunitid_value": ROOT_UNIT, "isdisabled": False})
        s.add("systemuser", "caseworker", {
            "fullname": "Sandbox Caseworker (fictional)", "title": "Protection Associate",
            "internalemailaddress": "caseworker@sandbox.invalid", "isdisabled": False,
            "_businessunitid_value": cp_unit})
        s.add("systemuser", "reviewer", {
            "fullname": "Sandbox Reviewer (fictional)", "title": "Protection Officer",
            "internalemailaddress": "reviewer@sandbox.invalid", "isdisabled": False,
            "_businessunitid_value": cp_unit})
        s.add("systemuser", "partner-focal-point", {
            "fullname": "Sandbox Partner Focal Point (fictional)", "isdisabled": False,
            "internalemailaddress": "focal.point@sandbox.invalid",
            "_businessunitid_value": ROOT_UNIT, "_progres_partner_value": unicef})
        for code, description, enabled in INTERVENTION_TYPES:
            s.add("progres_interventiontype", code, {
                "progres_code": code, "progres_description": description,
                "progres_interopenabled": enabled})
        s.add("systemuser", "dtp", {
            "fullname": "# UNHCR Data Transfer Platform", "applicationid": sid("app:dtp"),
            "_businessunitid_value": ROOT_UNIT, "isdisabled": False})


PEOPLE = (  # (key, given, family, birth date, sex, group)
    ("testa", "Testa", "Fictionalia", date(2014, 5, 14), FEMALE, "g1"),
    ("samplo", "Samplo", "Fictionalia", date(1985, 1, 1), MALE, "g1"),
    ("amani", "Amani", "Placeholder", date(2010, 9, 30), FEMALE, "g2"),
    ("kito", "Kito", "Placeholder", date(2015, 2, 11), MALE, "g2"),
    ("demo", "Demo", "Mockwell", date(1990, 7, 7), FEMALE, "g3"),
    ("exempla", "Exempla", "Mockwell", date(2013, 12, 24), FEMALE, "g3"),
    ("nemo", "Nemo", "Sandboxson", date(2009, 3, 3), MALE, "g3"),
)


PEOPLE_GROUP = {key: group for key, *_, group in PEOPLE}


def individual_id(key: str) -> str:
    return sid(f"progres_individual:{key}")


def seed_demo(store: Store, *, office: str) -> None:
    """Fictional people, groups, cases, child records, referrals and transfers (once)."""
    with store.writing() as conn:
        if not store.is_empty(conn, BY_LOGICAL["progres_individual"]):
            return
        s = Seeder(store, conn, office=office)
        groups = {g: s.add("progres_registrationgroup", g, {
            "progres_groupsize": size, "progres_registrationdate": date(2021, 3, i + 1),
            "progres_coalocationlevel6": "Sandbox Camp, Block " + "ABC"[i]})
            for i, (g, size) in enumerate((("g1", 2), ("g2", 2), ("g3", 3)))}
        people: dict[str, str] = {}
        for n, (key, given, family, born, sex, group) in enumerate(PEOPLE):
            people[key] = s.add("progres_individual", key, {
                "progres_givenname": given, "progres_familyname": family,
                "progres_dateofbirth": born, "progres_sex": sex,
                "progres_primaryphonenumber": f"+000-555-01{n:02d}",
                "_progres_registrationgroupid_value": groups[group]},
                statuscode=125080000 if n % 2 else 1)
        cp, sgbv, rsd = tuple(CASE_TYPE)[:3]
        low, medium, high, _ = tuple(PRIORITY)
        cases = {key: s.add("progres_case", key, {
            "progres_casetype": ctype, "progres_priority": priority,
            "progres_openeddate": date(2026, 6, 1),
            "progres_casedescription": "<p>Fictional case for the sandbox.</p>",
            "_progres_individualid_value": people[key],
            "_progres_registrationgroupid_value": groups[PEOPLE_GROUP[key]]})
            for key, ctype, priority in (("testa", cp, high), ("kito", cp, medium),
                                         ("demo", sgbv, high), ("samplo", rsd, low))}
        incident = s.add("progres_sgbvincident", "demo", {
            "progres_incidentdate": date(2026, 9, 2),
            "progres_incidenttype": tuple(SGBV_TYPE)[4],
            "progres_incidentdescription": "<p>Fictional incident recorded for the sandbox.</p>",
            "_progres_individualid_value": people["demo"],
            "_progres_caseid_value": cases["demo"]})
        bia = s.add("progres_bestinterestsassessment", "testa", {
            "progres_assessmentdate": date(2026, 9, 15), "progres_assessmenttype": 125080000,
            "progres_risklevel": 125080002,
            "progres_recommendations": "<p>Fictional: trace family members.</p>",
            "_progres_individualid_value": people["testa"],
            "_progres_caseid_value": cases["testa"]})
        s.add("progres_bestinterestsassessment", "kito", {
            "progres_assessmentdate": date(2026, 9, 20), "progres_assessmenttype": 125080000,
            "progres_risklevel": 125080001, "_progres_individualid_value": people["kito"],
            "_progres_caseid_value": cases["kito"]})
        s.add("progres_lpintervention", "testa-ftr", {
            "progres_interventionstartdate": datetime(2026, 9, 16, 9, 30),
            "progres_interventiondescription": "<p>Fictional: family tracing requested.</p>",
            "_progres_individual_value": people["testa"],
            "_progres_childprotectioncase_value": cases["testa"],
            "_progres_interventiontype2_value": intervention_type_id("FTR"),
            "_progres_interventionserviceprovider_value": sid("progres_partner:unicef"),
            "_progres_businessowner_value": CASEWORKER_USER})
        consent = {"progres_consentobtained": True, "progres_consentdate": date(2026, 9, 15),
                   "progres_consentgivenby": tuple(CONSENT_GIVEN_BY)[3],
                   "progres_consentform": WRITTEN, "progres_childassent": True}
        R = ReferralStatus
        # (key, person, status, route, partner, type, regarding, extra)
        referrals: tuple[tuple[str, str, int, int, str, str, tuple[str, str] | None,
                               dict[str, Any]], ...] = (
            ("testa-ftr", "testa", R.PENDING_ACKNOWLEDGEMENT, TO_PARTNER, "unicef", "FTR",
             ("progres_bestinterestsassessment", bia), {}),
            ("demo-health", "demo", R.PENDING_REVIEW, TO_SERVICE_PROVIDER, "health", "PSS",
             ("progres_sgbvincident", incident), {}),
            ("samplo-legal", "samplo", R.COMPLETED, TO_PARTNER, "legal", "LEGAL", None,
             {"progres_outcome": 125080000, "progres_reviewdecision": tuple(REVIEW_DECISION)[0],
              "_progres_reviewby_value": REVIEWER_USER}),
            ("amani-altc", "amani", R.REJECTED, TO_PARTNER, "unicef", "ALTC", None,
             {"progres_reviewdecision": tuple(REVIEW_DECISION)[1],
              "progres_interoperabiltyreferralrejectionreason":
                  tuple(REFERRAL_REJECTION_REASON)[1],
              "progres_interoperabilityreferralrejectionomment":
                  "Fictional: the UNHCR ID given does not match.",
              "_progres_reviewby_value": REVIEWER_USER}),
        )
        for key, person, status, route, partner, itype, regarding, extra in referrals:
            values: dict[str, Any] = {
                "progres_direction": OUTGOING,
                "progres_interoperabilityreferralrouteto": route,
                "_progres_partnerid_value": sid(f"progres_partner:{partner}"),
                "_progres_interventiontype_value": intervention_type_id(itype),
                "_progres_individualid_value": people[person],
                "_progres_registrationgroupid_value": groups[PEOPLE_GROUP[person]],
                "_progres_caseid_value": cases.get(person),
                "progres_urgency": URGENT if status == R.PENDING_ACKNOWLEDGEMENT else ROUTINE,
                "progres_referraldate": s.clock,
                "progres_duedate": date(2026, 12, 15),
                "progres_reasonforreferral": "<p>Fictional reason for the sandbox.</p>",
                **consent, **extra}
            if regarding:
                values["_regardingobjectid_value"] = regarding[1]
                values["_regardingobjectid_value_type"] = regarding[0]
            s.add("progres_interoperabilityreferral", key, values, statuscode=status)
        s.add("progres_interoperabilityreferral", "kito-bia-incoming", {
            "progres_direction": INCOMING, "progres_orgreferralid": "seed-referral-0001",
            "progres_interoperabilityreferralrouteto": TO_UNIT,
            "_progres_assignedunitid_value": sid("businessunit:cp"),
            "_progres_interventiontype_value": intervention_type_id("BIA"),
            "_progres_individualid_value": people["kito"],
            "progres_individualreference": None, "progres_givenname": "Kito",
            "progres_familyname": "Placeholder", "progres_dateofbirth": date(2015, 2, 11),
            "progres_sex": MALE, "progres_sendingorganization": "UNICEF (sandbox)",
            "progres_sendername": "Sandbox Sender (fictional)",
            "progres_acknowledgedon": s.clock, **consent},
            statuscode=R.PENDING_ACTION, user=INTEGRATION_USER)
        T = TransferStatus
        s.add("progres_datatransferrequest", "samplo-rsd", {
            "progres_direction": OUTGOING, "_progres_partnerid_value": sid("progres_partner:legal"),
            "_progres_individualid_value": people["samplo"], "_progres_caseid_value":
                cases["samplo"], "_progres_registrationgroupid_value": groups["g1"],
            "progres_transferreason": "<p>Fictional: the family moved to another area.</p>",
            "progres_requestdate": s.clock, "progres_duedate": date(2026, 12, 31),
            "progres_transferrelatedchildprotectioncases": False,
            "progres_transferrelatedrsdcases": True, "progres_transferrelatedfraudcases": False,
            **consent}, statuscode=T.PENDING_DECISION)
        s.add("progres_datatransferrequest", "nemo-draft", {
            "progres_direction": OUTGOING, "_progres_individualid_value": people["nemo"],
            "progres_transferrelatedchildprotectioncases": True}, statuscode=T.PENDING_SUBMISSION)
