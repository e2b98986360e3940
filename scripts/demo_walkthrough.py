"""Walk one fictional child's referral from a caseworker app to proGres and back."""

import json
import sys
import time
import uuid
from typing import Any

import httpx

APP = {"Authorization": "Bearer demo-caseworker-key-not-for-production"}
ODATA = "/api/data/v9.2"

REFERRAL: dict[str, Any] = {
    "kind": "referral",
    "sender": {"partner": "caseworker-app", "unit": "CP unit, Gambella"},
    "receiver": {"partner": "progres-eth"},
    "external_reference": "APP-REF-DEMO",
    "subject": {
        "identifiers": [{"system": "primero_case", "value": "CP-DEMO-0001"}],
        "given_name": "Amani", "family_name": "Demoperson",
        "birth_date": "2015-06-01", "sex": "female", "is_minor": True,
    },
    "case": {"reference": "CASE-DEMO-0001", "module": "child_protection", "risk_level": "high"},
    "source_record": {"type": "bia", "reference": "BIA-DEMO-0001"},
    "services": [{"type": "family_tracing_reunification", "urgency": "urgent"}],
    "reason": "Separated from her mother at the border; needs family tracing.",
    "consent": {
        "given_by": "caregiver", "form": "written", "date": "2026-11-01",
        "scope": {"purposes": ["referral"], "receivers": ["progres-eth"],
                  "data_categories": ["identity", "demographics", "protection"]},
        "child_assent": True, "bia_reference": "BIA-DEMO-0001",
    },
}


def say(text: str) -> None:
    print(f"\n== {text}")


def show(body: Any) -> None:
    print(json.dumps(body, indent=2)[:1200])


def wait(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise SystemExit(f"demo: {what} did not happen within {timeout} s; see var/demo-*.log")


def progres_staff(base: str) -> httpx.Client:
    token = httpx.post(f"{base}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": "progres-reviewer",
        "client_secret": "reviewer-secret", "scope": f"{base}/.default"}).json()
    return httpx.Client(base_url=base + ODATA, timeout=10, headers={
        "Authorization": f"Bearer {token['access_token']}", "OData-Version": "4.0",
        "Prefer": 'odata.include-annotations="*"'})


def main(gateway: str, progres: str) -> None:
    with httpx.Client(base_url=gateway, timeout=10, headers=APP) as app:
        say("A caseworker app submits a referral to UNHCR proGres (canonical JSON)")
        created = app.post("/v1/referrals", json=REFERRAL,
                           headers={"Idempotency-Key": str(uuid.uuid4())})
        referral_id = created.json()["id"]
        print(f"HTTP {created.status_code}: referral {referral_id}, status "
              f"{created.json()['status']}, under agreement {created.json()['agreement_id']}")
        print("need-to-know: the consent covers identity, demographics and protection, so "
              "these were removed before anything was stored: "
              + ", ".join(created.json()["withheld"]))

        say("The same child without a Best Interests Assessment reference: the agreement "
            "requires one, nothing is stored")
        no_bia = {**REFERRAL, "consent": {k: v for k, v in REFERRAL["consent"].items()
                                          if k != "bia_reference"}}
        show(app.post("/v1/referrals", json=no_bia,
                      headers={"Idempotency-Key": str(uuid.uuid4())}).json()["errors"])

        say("A referral with an unknown service code is refused with problem+json")
        broken = {**REFERRAL, "services": [{"type": "unknown_service"}]}
        show(app.post("/v1/referrals", json=broken,
                      headers={"Idempotency-Key": str(uuid.uuid4())}).json())

        say("The service directory: who traces families for a girl of 11 in Nguenyyiel camp?")
        found = app.get("/v1/directory/services", params={
            "service_type": "family_tracing_reunification", "area": "Nguenyyiel", "age": 11,
            "sex": "female"}).json()
        for rank, service in enumerate(found["items"], 1):
            where = {"same": "serves the camp", "wider": "serves an area including the camp",
                     "part": "serves part of it"}[service["area_match"]]
            print(f"  {rank}. [{service['availability']['status']}] {service['name']} - "
                  f"{service['organization']['name']} (partner "
                  f"{service['organization']['partner']}; {where})")

        say("The same child referred to proGres for a safe shelter, which neither UNHCR nor "
            "its partners offer in Gambella: refused, with the alternatives the directory "
            "lists")
        shelter = {**REFERRAL, "services": [{"type": "safe_shelter", "urgency": "emergency"}],
                   "subject": {**REFERRAL["subject"], "contact": {"location": {
                       "admin1": "Gambella", "settlement": "Nguenyyiel"}}}}
        refused = app.post("/v1/referrals", json=shelter,
                           headers={"Idempotency-Key": str(uuid.uuid4())}).json()
        print(f"{refused['status']} {refused['type'].rsplit('/', 1)[1]}: "
              f"{refused['errors'][0]['detail']}")
        for alternative in refused["alternatives"]:
            contact = ", ".join(v for v in (alternative["contact"] or {}).values())
            print(f"  alternative: {alternative['name']} - {alternative['organization_name']} "
                  f"[{alternative['availability']}] {contact}")

        say("Relay → RabbitMQ → worker → proGres mapping → proGres adapter")
        wait("delivery", lambda: app.get(f"/v1/referrals/{referral_id}").json()["status"]
             == "delivered")
        print("status in the gateway: delivered")

        with progres_staff(progres) as staff:
            rows = staff.get("/progres_interoperabilityreferrals", params={
                "$filter": f"progres_orgreferralid eq '{referral_id}'",
                "$select": "progres_interoperabilityreferralid,statuscode,progres_duedate"}
            ).json()["value"]
            row = rows[0]
            say("In proGres, the referral waits for a reviewer, in proGres's own words")
            show({k: v for k, v in row.items() if not k.startswith("@odata.etag")})
            guid = row["progres_interoperabilityreferralid"]
            for code, words in ((125080003, "Pending Action"), (125080004, "Accepted")):
                staff.patch(f"/progres_interoperabilityreferrals({guid})",
                            json={"statuscode": code}).raise_for_status()
                print(f"proGres reviewer sets the referral to {words} ({code})")
                time.sleep(2.5)

        say("The poller brings proGres's answers back as canonical status events")
        wait("status sync", lambda: app.get(f"/v1/referrals/{referral_id}").json()["status"]
             == "accepted")
        history = app.get(f"/v1/referrals/{referral_id}").json()["events"]
        for event in history:
            inferred = " (inferred)" if event["details"].get("inferred") else ""
            print(f"  {event['seq']}. {event['from_state'] or '-':>12} → {event['to_state']:<12}"
                  f" by {event['actor']}{inferred}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
