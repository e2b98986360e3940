"""Mapping engine throughput on a realistic Primero case, beside a hand-written ceiling and JSONata.

What is measured
    One Primero v2 child-protection case with the referral raised on it (about 60 native
    fields: names, date of birth, sex, identifiers, location levels, protection concerns,
    consent tick boxes, four services_section rows, the transition's own fields, and the
    usual fields nobody maps) is translated to a canonical referral, over and over, by:

    engine        the shipped mappings/primero/case-to-referral.in.yaml, loaded, checked and
                  compiled once (closures), then run per record;
    hand-written  a Python function a careful programmer would write for the same mapping,
                  with the same code lists and the same rules for missing values: the ceiling;
    jsonata       jsonata-python evaluating an equivalent JSONata expression, parsed once.

    Before timing, the three outputs are asserted equal and valid against the referral
    contract, so all three do the same work.

Targets: engine ≥ 0.8 × hand-written (issue 13), and engine ≥ 10 × jsonata-python.
The last line printed is ``ratio: X`` = engine records/s / hand-written records/s.

    .venv/bin/python bench/mapping.py            # about 10 s
    .venv/bin/python bench/mapping.py --quick    # smoke run
"""

from __future__ import annotations

import copy
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jsonata  # noqa: E402

from common import arguments, machine_lines  # noqa: E402
from gateway.contracts import Contracts  # noqa: E402
from gateway.mapping.check import check_mapping_file  # noqa: E402
from gateway.mapping.compile import CompiledMapping, compile_mapping  # noqa: E402
from gateway.mapping.schema import SchemaView  # noqa: E402

MAPPING = ROOT / "mappings" / "primero" / "case-to-referral.in.yaml"

RECORD: dict[str, Any] = {
    "case": {
        "id": "6f1c2b7a-3d4e-4f5a-8b9c-0d1e2f3a4b5c",
        "enabled": True,
        "case_id": "5b2c9a34-1f7e-4c2a-9a55-0d6e6f0c1171",
        "unique_identifier": "5b2c9a34-1f7e-4c2a-9a55-0d6e6f0c1171",
        "short_id": "6f0c117",
        "case_id_display": "CP-GMB-2025-000117",
        "module_id": "primeromodule-cp",
        "status": "open",
        "registration_date": "2025-02-20",
        "owned_by": "cw.testuser",
        "owned_by_agency_id": "agency-irc-gambella",
        "assigned_user_names": ["cw.testuser", "cp.supervisor"],
        "name": "Amani Nyabol Testcase",
        "name_first": "Amani",
        "name_middle": "Nyabol",
        "name_last": "Testcase",
        "name_nickname": "Nyanya",
        "age": 11,
        "date_of_birth": "2013-06-01",
        "estimated": True,
        "sex": "female",
        "nationality": ["south_sudan"],
        "language": ["nuer", "arabic", "english"],
        "unhcr_individual_no": "ETH-25-000123",
        "unhcr_id_no": "GMB-25-00457",
        "telephone_current": " +251 900 000 000 ",
        "address_current": "Block C, house 14",
        "location_admin1": "Gambella",
        "location_admin2": "Agnewak",
        "location_admin3": "Gog",
        "location_current": "Fictional Camp 1",
        "risk_level": "high",
        "urgent_protection_concern": True,
        "protection_concerns": ["separated", "unaccompanied", "child_headed_household"],
        "consent_source": "caregiver",
        "consent_for_services": True,
        "disclosure_other_orgs": True,
        "consent_for_tracing": True,
        "consent_reporting": "true",
        "services_section": [
            {"unique_id": "7f6d2b1e-0c8a-4d4b-8a0e-3b2f1c0d9e11",
             "service_type": "family_seunification_service",
             "service_response_timeframe": "1_day", "service_appointment_date": "2025-03-17",
             "service_referral_notes": "Trace the mother, last seen in Fictional Camp 3.",
             "service_implementing_agency": "agency-unhcr-gambella",
             "service_status_referred": True},
            {"unique_id": "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f", "service_type": "bid_service",
             "service_response_timeframe": "3_days",
             "service_referral_notes": "BID panel on long-term care arrangement.",
             "service_status_referred": True},
            {"unique_id": "5e4d3c2b-1a0f-4e9d-8c7b-6a5f4e3d2c1b",
             "service_type": "psychosocial_service", "service_response_timeframe": "1_hour",
             "service_status_referred": True},
            {"unique_id": "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b",
             "service_type": "education_service", "service_response_timeframe": "3_days",
             "service_status_referred": False},
        ],
        "created_at": "2025-02-20T08:12:44.120Z",
        "last_updated_at": "2025-03-03T06:30:01.004Z",
    },
    "referral": {
        "id": "3d0c6f2e-8b1a-4f5e-9c7d-2a1b0c9d8e7f",
        "type": "Referral",
        "status": "in_progress",
        "record_id": "6f1c2b7a-3d4e-4f5a-8b9c-0d1e2f3a4b5c",
        "record_type": "case",
        "transitioned_by": "cw.testuser",
        "transitioned_by_user_agency": "agency-irc-gambella",
        "transitioned_to": "casebridge",
        "transitioned_to_remote": "cp.focal",
        "transitioned_to_agency": "agency-unhcr-gambella",
        "notes": "BIA completed; tracing and BID are UNHCR-led in this operation.",
        "consent_overridden": False,
        "created_at": "2025-03-03T06:30:00.000Z",
    },
}


def count_fields(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_fields(v) for v in value.values())
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return sum(count_fields(v) for v in value)
    return 1


# --- the hand-written ceiling -------------------------------------------------------------------

def hand_written_for(tables: dict[str, dict[Any, Any]]) -> Callable[[dict[str, Any]], Any]:
    """What a programmer would write by hand for case-to-referral.in.yaml."""
    agency, sex, nationality = tables["agency"], tables["sex"], tables["nationality"]
    language, module, risk = tables["language"], tables["module"], tables["risk-level"]
    service, urgency, giver = tables["service-type"], tables["urgency"], tables["consent-giver"]
    estimated = tables["estimated"]

    def code(table: dict[Any, Any], value: Any, what: str) -> Any:
        try:
            return table[value]
        except KeyError:
            raise ValueError(f"unknown {what} code") from None

    def map_referral(record: dict[str, Any]) -> dict[str, Any]:
        case = record.get("case") or {}
        referral = record.get("referral") or {}
        out: dict[str, Any] = {"kind": "referral"}
        out["external_reference"] = referral["id"]
        out["requested_at"] = referral["created_at"]
        sender = {}
        if referral.get("transitioned_by_user_agency") in agency:
            sender["partner"] = agency[referral["transitioned_by_user_agency"]]
        if referral.get("transitioned_by"):
            sender["user"] = referral["transitioned_by"]
        out["sender"] = sender
        receiver = {"partner": code(agency, referral["transitioned_to_agency"], "agency")}
        if referral.get("transitioned_to_remote"):
            receiver["user"] = referral["transitioned_to_remote"]
        out["receiver"] = receiver
        if referral.get("notes"):
            out["reason"] = referral["notes"].strip()

        identifiers = [{"system": "primero_case", "value": case["case_id_display"]}]
        if case.get("unhcr_individual_no"):
            identifiers.append({"system": "progres_individual",
                                "value": case["unhcr_individual_no"]})
        if case.get("unhcr_id_no"):
            identifiers.append({"system": "progres_group", "value": case["unhcr_id_no"]})
        subject: dict[str, Any] = {"identifiers": identifiers, "given_name": case["name_first"]}
        for target, source in (("middle_name", "name_middle"), ("family_name", "name_last"),
                               ("other_names", "name_nickname"), ("birth_date", "date_of_birth")):
            if case.get(source):
                subject[target] = case[source]
        if case.get("estimated") is not None:
            subject["birth_date_precision"] = code(estimated, case["estimated"], "estimated")
        if case.get("age") is not None:  # is_minor is the gateway's, from age or birth date
            subject["age"] = {"years": case["age"], "as_of": datetime.fromisoformat(
                referral["created_at"]).strftime("%Y-%m-%d")}
        subject["sex"] = code(sex, case["sex"], "sex") if case.get("sex") else "unknown"
        if case.get("nationality"):
            country = nationality.get(case["nationality"][0])
            if country:
                subject["nationality"] = country
        if case.get("language"):
            spoken = [language[x] for x in case["language"] if x in language]
            if spoken:
                subject["languages"] = spoken
        contact: dict[str, Any] = {}
        if case.get("telephone_current"):
            contact["phone"] = case["telephone_current"].strip()
        if case.get("address_current"):
            contact["address"] = case["address_current"]
        location = {}
        for target, source in (("admin1", "location_admin1"), ("admin2", "location_admin2"),
                               ("admin3", "location_admin3"), ("settlement", "location_current")):
            if case.get(source):
                location[target] = case[source]
        if location:
            contact["location"] = location
        if contact:
            subject["contact"] = contact
        out["subject"] = subject

        parent = {"reference": case["case_id_display"],
                  "module": code(module, case["module_id"], "module")}
        if case.get("risk_level") in risk:
            parent["risk_level"] = risk[case["risk_level"]]
        if case.get("protection_concerns"):
            parent["protection_concerns"] = case["protection_concerns"]
        out["case"] = parent

        services = []
        for row in case.get("services_section") or []:
            if row.get("service_status_referred") is not True:
                continue
            item = {"type": code(service, row["service_type"], "service type")}
            if row.get("service_response_timeframe"):
                item["urgency"] = code(urgency, row["service_response_timeframe"], "urgency")
            if row.get("service_appointment_date"):
                item["due_date"] = row["service_appointment_date"]
            if row.get("service_referral_notes"):
                item["notes"] = row["service_referral_notes"]
            services.append(item)
        if not services:
            raise ValueError("no service referred")
        out["services"] = services

        scope: dict[str, Any] = {}
        if case.get("consent_for_services") is True:
            scope["purposes"] = ["referral"]
        scope["receivers"] = [code(agency, referral["transitioned_to_agency"], "agency")]
        if case.get("disclosure_other_orgs") is True:
            scope["data_categories"] = ["identity", "demographics", "contact", "protection"]
        out["consent"] = {
            "given_by": code(giver, case["consent_source"], "consent giver"),
            "form": "written",
            "date": datetime.fromisoformat(referral["created_at"]).strftime("%Y-%m-%d"),
            "scope": scope,
        }
        return out

    return map_referral


# --- JSONata ------------------------------------------------------------------------------------

JSONATA = """(
  $code := function($table, $value) { $lookup($table, $string($value)) };
  {
    "kind": "referral",
    "external_reference": referral.id,
    "requested_at": referral.created_at,
    "sender": {"partner": $code($agency, referral.transitioned_by_user_agency),
               "user": referral.transitioned_by},
    "receiver": {"partner": $code($agency, referral.transitioned_to_agency),
                 "user": referral.transitioned_to_remote},
    "reason": $trim(referral.notes),
    "subject": {
      "identifiers": [
        {"system": "primero_case", "value": case.case_id_display},
        case.unhcr_individual_no ? {"system": "progres_individual",
                                    "value": case.unhcr_individual_no},
        case.unhcr_id_no ? {"system": "progres_group", "value": case.unhcr_id_no}
      ],
      "given_name": case.name_first,
      "middle_name": case.name_middle,
      "family_name": case.name_last,
      "other_names": case.name_nickname,
      "birth_date": case.date_of_birth,
      "birth_date_precision": $code($estimated, case.estimated),
      "age": $exists(case.age) ? {"years": case.age,
                                  "as_of": $substring(referral.created_at, 0, 10)},
      "sex": $exists($code($sex, case.sex)) ? $code($sex, case.sex) : "unknown",
      "nationality": $code($nationality, case.nationality[0]),
      "languages": [$map(case.language, function($l) { $code($language, $l) })],
      "contact": {
        "phone": $trim(case.telephone_current),
        "address": case.address_current,
        "location": {"admin1": case.location_admin1, "admin2": case.location_admin2,
                     "admin3": case.location_admin3, "settlement": case.location_current}
      }
    },
    "case": {
      "reference": case.case_id_display,
      "module": $code($module, case.module_id),
      "risk_level": $code($risk, case.risk_level),
      "protection_concerns": case.protection_concerns
    },
    "services": [case.services_section[service_status_referred = true].{
      "type": $code($service, service_type),
      "urgency": $exists($code($urgency, service_response_timeframe))
                 ? $code($urgency, service_response_timeframe) : "routine",
      "due_date": service_appointment_date,
      "notes": service_referral_notes
    }],
    "consent": {
      "given_by": $code($giver, case.consent_source),
      "form": "written",
      "date": $substring(referral.created_at, 0, 10),
      "scope": {
        "purposes": case.consent_for_services = true ? ["referral"],
        "receivers": [$code($agency, referral.transitioned_to_agency)],
        "data_categories": case.disclosure_other_orgs = true
                           ? ["identity", "demographics", "contact", "protection"]
      }
    }
  }
)"""


def jsonata_for(tables: dict[str, dict[Any, Any]]) -> Callable[[dict[str, Any]], Any]:
    expression = jsonata.Jsonata(JSONATA)
    names = {"agency": "agency", "sex": "sex", "nationality": "nationality",
             "language": "language", "module": "module", "risk": "risk-level",
             "service": "service-type", "urgency": "urgency", "giver": "consent-giver",
             "estimated": "estimated"}
    bindings = {name: {_text(k): v for k, v in tables[table].items()}
                for name, table in names.items()}
    return lambda record: expression.evaluate(record, bindings)


def _text(key: Any) -> str:
    return json.dumps(key) if isinstance(key, bool) else str(key)


# --- the run ------------------------------------------------------------------------------------

def load_engine() -> CompiledMapping:
    view = SchemaView(Contracts(ROOT / "contracts"))
    checked = check_mapping_file(MAPPING, view)
    if not checked.ok:
        raise SystemExit("\n".join(map(str, checked.problems)))
    return compile_mapping(checked)


def rates(functions: dict[str, Callable[[dict[str, Any]], Any]], records: list[dict[str, Any]],
          seconds: float) -> dict[str, float]:
    """Records per second of each function: the best of many short slices, taken in turn.

    The functions take turns slice by slice, so that whatever else the machine is doing
    falls on all of them alike; the best slice of each is its speed when left alone.
    """
    best = dict.fromkeys(functions, 0.0)
    slices = {name: max(1, len(records)) for name in functions}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name, function in functions.items():
            batch = records[:slices[name]]
            started = time.perf_counter()
            for record in batch:
                function(record)
            elapsed = time.perf_counter() - started
            best[name] = max(best[name], len(batch) / elapsed)
            if elapsed > 0.05 and slices[name] > 1:
                slices[name] = max(1, slices[name] // 2)
    return best


def main() -> None:
    args = arguments(__doc__, quick="short smoke run").parse_args()
    seconds = 0.6 if args.quick else 3.0

    engine = load_engine()
    tables = {name: codes.inbound_table() for name, codes in engine.code_lists.items()}
    hand = hand_written_for(tables)
    via_jsonata = jsonata_for(tables)
    records = [copy.deepcopy(RECORD) for _ in range(100)]

    expected = hand(RECORD)
    assert engine.inbound(RECORD) == expected, "engine and hand-written differ"
    assert via_jsonata(RECORD) == expected, "jsonata and hand-written differ"
    broken = Contracts(ROOT / "contracts").validate("referral", expected)
    assert not broken, broken

    for line in machine_lines(f"jsonata-python {version('jsonata-python')}"):
        print(line)
    print(f"record: {count_fields(RECORD)} native fields → {count_fields(expected)} canonical "
          f"fields; mapping {MAPPING.relative_to(ROOT)} {engine.content_hash[:19]}")
    measured = rates({"engine": engine.inbound, "hand": hand}, records, seconds)
    engine_rate, hand_rate = measured["engine"], measured["hand"]
    jsonata_rate = rates({"jsonata": via_jsonata}, records[:5], seconds / 3)["jsonata"]
    print(f"engine:        {engine_rate:>10,.0f} records/s")
    print(f"hand-written:  {hand_rate:>10,.0f} records/s")
    print(f"jsonata:       {jsonata_rate:>10,.0f} records/s")
    vs_hand, vs_jsonata = engine_rate / hand_rate, engine_rate / jsonata_rate
    print(f"engine / jsonata: {vs_jsonata:.1f}x (target ≥ 10x: "
          f"{'met' if vs_jsonata >= 10 else 'NOT met'})")
    print(f"engine / hand-written: {vs_hand:.2f} (target ≥ 0.8: "
          f"{'met' if vs_hand >= 0.8 else 'NOT met'})")
    print(f"ratio: {vs_hand:.2f}")


if __name__ == "__main__":
    main()
