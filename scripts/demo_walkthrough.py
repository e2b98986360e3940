"""Walk one fictional referral through the gateway's API and show what each step returns."""

import json
import sys
import uuid

import httpx

PRIMERO = {"Authorization": "Bearer demo-primero-key-not-for-production"}
PROGRES = {"Authorization": "Bearer demo-progres-key-not-for-production"}

REFERRAL = {
    "kind": "referral",
    "sender": {"partner": "primero-demo", "unit": "CP unit, Gambella"},
    "receiver": {"partner": "progres-demo"},
    "external_reference": "PRIMERO-REF-DEMO",
    "subject": {
        "identifiers": [{"system": "primero_case", "value": "CP-DEMO-0001"}],
        "given_name": "Amani", "family_name": "Demoperson",
        "birth_date": "2015-06-01", "sex": "female", "is_minor": True,
    },
    "case": {"reference": "CASE-DEMO-0001", "module": "child_protection", "risk_level": "high"},
    "source_record": {"type": "bia", "reference": "BIA-DEMO-0001"},
    "services": [{"type": "family_tracing_reunification", "urgency": "urgent"}],
    "consent": {
        "given_by": "caregiver", "form": "written", "date": "2026-11-01",
        "scope": {"purposes": ["referral"], "receivers": ["progres-demo"],
                  "data_categories": ["identity", "demographics", "protection"]},
        "child_assent": True, "bia_reference": "BIA-DEMO-0001",
    },
}


def show(title: str, response: httpx.Response) -> None:
    print(f"\n== {title}: HTTP {response.status_code}")
    body = response.json()
    if isinstance(body, dict):
        body.pop("content", None)  # the demo prints envelopes, not the person's data
    print(json.dumps(body, indent=2)[:1500])


def main(url: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        key = {"Idempotency-Key": str(uuid.uuid4())}
        created = client.post("/v1/referrals", json=REFERRAL, headers={**PRIMERO, **key})
        show("Primero submits a referral to proGres", created)
        replay = client.post("/v1/referrals", json=REFERRAL, headers={**PRIMERO, **key})
        print(f"\n== The same request retried with the same Idempotency-Key: HTTP "
              f"{replay.status_code}, same id: {replay.json()['id'] == created.json()['id']}")
        broken = {**REFERRAL, "services": [{"type": "unknown_service"}]}
        show("A referral with an unknown service code",
             client.post("/v1/referrals", json=broken,
                         headers={**PRIMERO, "Idempotency-Key": str(uuid.uuid4())}))
        referral_id = created.json()["id"]
        show("proGres accepts before delivery (the lifecycle refuses)",
             client.post(f"/v1/referrals/{referral_id}/events", json={"status": "accepted"},
                         headers=PROGRES))
        show("proGres lists what it has received",
             client.get("/v1/referrals", params={"limit": 3}, headers=PROGRES))


if __name__ == "__main__":
    main(sys.argv[1])
