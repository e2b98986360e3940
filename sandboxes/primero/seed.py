"""Fictional users, agencies, child-protection and GBV cases for a fresh sandbox.

Every person here is made up (family names such as Fictionalson and Madeupova say so).
All accounts share the password `SANDBOX_PASSWORD`. `casebridge` is the account the
gateway's adapter logs in with: it sees every case (`group_permission: all`), creates
the cases and transitions that arrive through CaseBridge, and receives the referrals
and transfers that caseworkers send out through CaseBridge.
"""

import random
import uuid
from typing import Any

from sqlalchemy import Connection

from sandboxes.primero.cases import create_case
from sandboxes.primero.lookups import MODULE_CP, MODULE_GBV
from sandboxes.primero.store import Store, hash_password
from sandboxes.primero.transitions import ACCEPTED, REFERRAL, create_transition, respond

SANDBOX_PASSWORD = "sandbox-passw0rd"
GATEWAY_USER = "casebridge"
GATEWAY_AGENCY = "agency-casebridge"
GBV_AGENCY = "agency-willow"

_WORKER = ["referral", "receive_referral", "transfer", "receive_transfer", "assign",
           "receive_assign", "consent_override", "flag"]
_GIVEN = ["Amani", "Nyabol", "Deng", "Achan", "Lual", "Abuk", "Kiden", "Ladu", "Jok", "Ayen"]
_FAMILY = ["Fictionalson", "Madeupova", "Testwell", "Notreal", "Sandboxdottir", "Placeholder"]
_CONCERNS = ["refugee", "migrant", "street_child", "caafag", "child_headed_household",
             "physically_or_mentally_abused", "mentally_distressed"]
_SERVICES = ["psychosocial_service", "family_seunification_service", "education_service",
             "health_medical_service", "legal_assistance_service"]


def seed(store: Store, *, instance: str, agency: str) -> None:
    """Fill an empty store with this instance's fictional users, agencies and cases."""
    rng = random.Random(instance)
    with store.writing() as db:
        _agencies(store, db, instance=instance, agency=agency)
        people = _users(store, db, instance=instance, agency=agency)
        _cases(store, db, rng=rng, people=people)


def _agencies(store: Store, db: Connection, *, instance: str, agency: str) -> None:
    rows = [(agency, "KITE", f"Kite Child Protection Network ({instance}, fictional)",
             ["child_protection_service", "family_seunification_service"]),
            (GBV_AGENCY, "WILLOW", "Willow Women's Centre (fictional)",
             ["psychosocial_service", "safehouse_service", "health_medical_service"]),
            (GATEWAY_AGENCY, "CASEBRIDGE", "CaseBridge referral gateway", [])]
    for n, (unique_id, code, name, services) in enumerate(rows, start=1):
        store.put_agency(db, {"id": n, "unique_id": unique_id, "agency_code": code,
                              "name": {"en": name}, "services": services, "disabled": False})


def _users(store: Store, db: Connection, *, instance: str, agency: str
           ) -> dict[str, dict[str, Any]]:
    group = f"usergroup-{instance}"
    rows = [
        ("cp_worker", "Amira Casefile (fictional)", agency, "self", [MODULE_CP], _WORKER),
        ("cp_worker_2", "Bol Notebook (fictional)", agency, "self", [MODULE_CP], _WORKER),
        ("cp_manager", "Grace Overseer (fictional)", agency, "agency", [MODULE_CP],
         [*_WORKER, "accept_or_reject_transfer"]),
        ("gbv_worker", "Hawa Safespace (fictional)", GBV_AGENCY, "self", [MODULE_GBV], _WORKER),
        (GATEWAY_USER, "CaseBridge gateway", GATEWAY_AGENCY, "all", [MODULE_CP, MODULE_GBV],
         [*_WORKER, "accept_or_reject_transfer", "sync_external"]),
    ]
    people: dict[str, dict[str, Any]] = {}
    for n, (name, full_name, agency_id, scope, modules, permissions) in enumerate(rows, 1):
        person = {"id": n, "user_name": name, "full_name": full_name, "agency_id": agency_id,
                  "group_permission": scope, "module_unique_ids": modules,
                  "user_group_unique_ids": [group], "permissions": permissions,
                  "role_unique_id": f"role-{name.replace('_', '-')}", "disabled": False,
                  "password_sha256": hash_password(SANDBOX_PASSWORD)}
        store.put_user(db, person)
        people[name] = person
    return people


def _cases(store: Store, db: Connection, *, rng: random.Random,
           people: dict[str, dict[str, Any]]) -> None:
    made: list[dict[str, Any]] = []
    for n in range(12):
        gbv = n % 4 == 3
        owner = "gbv_worker" if gbv else ("cp_worker" if n % 2 == 0 else "cp_worker_2")
        year = 2009 + rng.randrange(8) if not gbv else 1996 + rng.randrange(10)
        fields: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "module_id": MODULE_GBV if gbv else MODULE_CP,
            "name_first": rng.choice(_GIVEN), "name_last": rng.choice(_FAMILY),
            "sex": "female" if gbv else rng.choice(["male", "female"]),
            "date_of_birth": f"{year}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            "owned_by": owner,
            "risk_level": rng.choice(["high", "medium", "low"]),
            "protection_concerns": (["gbv_survivor"] if gbv
                                    else rng.sample(_CONCERNS, k=rng.randrange(1, 3))),
            # Two cases without consent, to show the consent rule refusing a transition.
            "consent_for_services": n not in (4, 7),
            "disclosure_other_orgs": n not in (4, 7),
            "consent_reporting": rng.choice([True, False]),
            "services_section": [{
                "unique_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "service_response_type": "service_provision",
                "service_type": rng.choice(_SERVICES),
                "service_response_timeframe": rng.choice(["1_day", "3_days"]),
            }],
        }
        made.append(create_case(store=store, db=db, user=people[owner], fields=fields))
    # Referrals between local users: one waiting for an answer, one accepted.
    for case, answer in ((made[0], None), (made[2], ACCEPTED)):
        row = case["services_section"][0]
        referral = create_transition(
            store=store, db=db, user=people["cp_worker"], case=case, kind=REFERRAL,
            params={"transitioned_to": "cp_worker_2", "service": row["service_type"],
                    "service_record_id": row["unique_id"], "notes": "Seeded referral."})
        if answer:
            respond(store=store, db=db, user=people["cp_worker_2"], case=case,
                    transition=referral, status=answer)
