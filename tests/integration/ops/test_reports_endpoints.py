"""The DPO's reports outside the console: the operations API (operator key), /metrics and
`casebridge report disclosures` / `agreements health`, on SQLite and PostgreSQL."""

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from fictional import find_personal
from gateway.store.db import make_engine, make_sessionmaker
from gateway.store.models import AuditEntry
from servers import LiveServer
from sharing import write_agreement

KEY = "ops-key-for-report-tests"


def test_the_register_and_agreement_health_for_the_operator_key_and_the_cli(
    settings, new_partner, make_referral, cli
) -> None:
    (sender, sender_key), (receiver, _) = (new_partner(agreement=False) for _ in range(2))
    ending = f"isp-ending-{uuid.uuid4().hex[:8]}"
    last_day = datetime.now(UTC).date() + timedelta(days=10)
    write_agreement(settings.agreements_dir, ending, [sender, receiver],
                    valid_to=last_day.isoformat(),
                    data_categories={"referral": ["identity", "demographics", "protection"],
                                     "transfer": ["identity"]})
    ops = settings.model_copy(update={"operator_key": KEY})
    with LiveServer(ops) as server:
        with httpx.Client(base_url=server.url, timeout=20,
                          headers={"Authorization": f"Bearer {sender_key}"}) as client:
            answer = client.post("/v1/referrals", json=make_referral(sender, receiver),
                                 headers={"Idempotency-Key": uuid.uuid4().hex})
            assert answer.status_code == 201, answer.text
        reports = httpx.Client(base_url=server.url, timeout=20,
                               headers={"Authorization": f"Bearer {KEY}"})
        with reports:
            unauthenticated = httpx.get(f"{server.url}/v1/reports/disclosures")
            assert unauthenticated.status_code == 401
            assert unauthenticated.headers["content-type"] == "application/problem+json"

            found = reports.get("/v1/reports/disclosures").json()
            row = next(r for r in found["rows"] if r["agreement"] == ending)
            assert (row["sender"], row["receiver"], row["referrals"]) == (sender, receiver, 1)
            assert row["categories_removed"]["by_agreement"]["risk"] == 1
            assert found["audit_head"]["seq"] > 0

            table = reports.get("/v1/reports/disclosures", headers={"Accept": "text/csv"})
            assert table.headers["content-type"].startswith("text/csv")
            lines = list(csv.DictReader(io.StringIO(table.text)))
            assert any(r["agreement"] == ending and r["sent_identity"] == "1" for r in lines)
            assert find_personal(table.text + json.dumps(found)) == set()

            bad = reports.get("/v1/reports/disclosures", params={"since": "yesterday-ish"})
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["pointer"] == "/since"

            health = reports.get("/v1/reports/agreement-health").json()
            mine = next(a for a in health["agreements"] if a["agreement"] == ending)
            assert (mine["standing"], mine["days_left"]) == ("ending", 10)
            assert {"agreement": ending, "sender": sender, "receiver": receiver, "sent": 1,
                    "refused_not_valid": 0, "days_left": 10} in health["sending"]
            assert {"agreement": ending, "category": "risk", "referrals": 1} in health[
                "categories_not_allowed"]

            metrics = httpx.get(f"{server.url}/metrics").text
            assert f'casebridge_agreement_days_to_expiry{{agreement="{ending}"}} 10.0' in metrics
            assert (f'casebridge_agreement_categories_not_allowed{{agreement="{ending}",'
                    'category="risk"} 1.0') in metrics

    env = {"database_url": settings.database_url, "agreements_dir": str(settings.agreements_dir)}
    text = cli("report", "disclosures", "--format", "csv", **env)
    assert text.exit_code == 0, text.output
    assert any(r["agreement"] == ending for r in csv.DictReader(io.StringIO(text.output)))
    people = cli("report", "disclosures", **env)
    assert people.exit_code == 0 and f"{ending}  {sender} -> {receiver}" in people.output
    wrong = cli("report", "disclosures", "--since", "soon", **env)
    assert wrong.exit_code == 2 and "--since" in wrong.output
    health = cli("agreements", "health", **env)
    assert health.exit_code == 0, health.output
    assert f"{ending}: ending (last day {last_day}, 10 days left)" in health.output
    assert f"{ending}: risk in 1 referral" in health.output

    sessions = make_sessionmaker(make_engine(settings.database_url))
    with sessions() as session:
        readers = session.scalars(select(AuditEntry.actor).where(
            AuditEntry.action == "report.disclosures")).all()
    assert "operator-api" in readers and any(r.endswith("@cli") for r in readers)
