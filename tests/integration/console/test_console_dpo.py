"""The data-protection officer's console pages over a real server, on SQLite and PostgreSQL:
a person's export holds exactly what each partner received; restriction and erasure;
the disclosure register and agreement health hold no person.
"""

import json
import re
import uuid
from typing import Any

import httpx
from console_testkit import csrf_of
from sqlalchemy import select

from fictional import find_personal
from gateway.protection import audit
from gateway.store.models import AuditEntry, OutboxMessage, Referral
from sharing import write_agreement

NARROW = ["identity", "demographics", "protection"]  # no risk, no case notes


def api(console, key: str) -> httpx.Client:
    return httpx.Client(base_url=console.url, timeout=20,
                        headers={"Authorization": f"Bearer {key}"})


def submit(console, key: str, document: dict[str, Any]) -> str:
    with api(console, key) as client:
        answer = client.post("/v1/referrals", json=document,
                             headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def read(console, key: str, referral_id: str) -> dict[str, Any]:
    with api(console, key) as client:
        answer = client.get(f"/v1/referrals/{referral_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_persons_export_holds_exactly_what_each_partner_received_and_erasure_empties_it(
    console, login, users, sessions, settings, new_partner, make_referral
) -> None:
    (sender, sender_key), (wide, wide_key), (narrow, narrow_key) = (
        new_partner(agreement=False) for _ in range(3))
    tag = uuid.uuid4().hex[:8]
    write_agreement(settings.agreements_dir, f"isp-wide-{tag}", [sender, wide])
    write_agreement(settings.agreements_dir, f"isp-narrow-{tag}", [sender, narrow],
                    data_categories={"referral": NARROW, "transfer": NARROW})
    to_wide = make_referral(sender, wide)
    person = to_wide["subject"]["identifiers"][0]
    identifier = f"{person['system']}:{person['value']}"
    to_narrow = make_referral(sender, narrow)
    to_narrow["subject"]["identifiers"] = [person]
    ids = {wide: submit(console, sender_key, to_wide),
           narrow: submit(console, sender_key, to_narrow)}
    someone_else = submit(console, sender_key, make_referral(sender, wide))
    received = {wide: read(console, wide_key, ids[wide])["content"],
                narrow: read(console, narrow_key, ids[narrow])["content"]}
    assert "risk_level" in received[wide]["case"]
    assert "risk_level" not in received[narrow].get("case", {})

    auditor = login(users.auditor)
    token = csrf_of(auditor.get("/console/subject-requests"))
    request = {"csrf": token, "identifiers": identifier, "reason": "access_request",
               "reference": f"DSR-{tag}"}
    found = auditor.post("/console/subject-requests/find", data=request)
    assert found.status_code == 200, found.text
    assert ids[wide] in found.text and ids[narrow] in found.text
    assert someone_else not in found.text

    exported = auditor.post("/console/subject-requests/act",
                            data={**request, "action": "export-json"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-disposition"].startswith("attachment;")
    document = exported.json()
    by_receiver = {r["receiver"]["id"]: r for r in document["referrals"]}
    assert set(by_receiver) == {wide, narrow}
    for receiver, copy in received.items():
        assert by_receiver[receiver]["received"] == copy  # exactly what it was given
        assert by_receiver[receiver]["referral_id"] == ids[receiver]
        assert by_receiver[receiver]["agreement"]["id"].startswith("isp-")
        assert by_receiver[receiver]["consent"] == copy["consent"]
    assert set(by_receiver[narrow]["categories_received"]) <= set(NARROW)
    assert {"risk", "case-notes"} <= set(by_receiver[wide]["categories_received"])
    removed = {w["category"] for w in by_receiver[narrow]["withheld"]}
    assert {"risk", "case-notes"} <= removed

    printable = auditor.post("/console/subject-requests/act",
                             data={**request, "action": "export-html"})
    assert printable.status_code == 200
    assert "style-src 'unsafe-inline'" in printable.headers["content-security-policy"]
    assert "script" not in printable.headers["content-security-policy"]
    assert "Zawadi" in printable.text and "<script" not in printable.text  # the person's own

    # Erase the narrow receiver's copy only; unconfirmed, nothing happens.
    erase = {**request, "reason": "erasure_request", "action": "erase", "ids": ids[narrow]}
    refused = auditor.post("/console/subject-requests/act", data=erase)
    assert refused.status_code == 422 and "nothing was changed" in refused.text
    assert read(console, sender_key, ids[narrow])["content"] != {}
    done = auditor.post("/console/subject-requests/act", data={**erase, "confirm": "yes"})
    assert done.status_code == 200, done.text
    assert re.search(rf"{ids[narrow]}</td><td>erased", done.text)
    after = read(console, sender_key, ids[narrow])
    assert after["content"] == {} and after["erased_at"] and after["status"] == "withdrawn"
    assert find_personal(json.dumps(after)) == set()
    assert read(console, wide_key, ids[wide])["content"] == received[wide]
    again = auditor.post("/console/subject-requests/find", data=request)
    assert ids[narrow] not in again.text  # its identifier hashes are gone with it

    # Restrict the other: kept, but no partner and no IM officer sees its content any more.
    restrict = {**request, "reason": "restriction_request", "action": "restrict",
                "ids": ids[wide], "confirm": "yes"}
    assert auditor.post("/console/subject-requests/act", data=restrict).status_code == 200
    frozen = read(console, wide_key, ids[wide])
    assert frozen["content"] == {} and frozen["restricted_at"]
    # Both receivers are on the API: each reads there that its referral was withdrawn.
    assert frozen["status"] == "withdrawn"
    assert read(console, narrow_key, ids[narrow])["status"] == "withdrawn"
    assert all(e["details"] == {} for e in frozen["events"])
    assert login(users.im_officer).get(
        f"/console/referrals/{ids[wide]}/content").status_code == 403

    with sessions() as session:
        told = session.scalars(select(OutboxMessage.routing_key).where(
            OutboxMessage.referral_id.in_(list(ids.values())),
            OutboxMessage.message_type == "status")).all()
        assert told == []  # and nothing waits in the broker for them
        kept = session.get_one(Referral, ids[wide])
        assert kept.content["subject"]["given_name"] == "Zawadi"  # frozen, not gone
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action.like(
            "subject.%"), AuditEntry.actor == f"user:{users.auditor}")).all()
        assert {e.action for e in entries} == {"subject.lookup", "subject.export",
                                               "subject.erase", "subject.restrict"}
        assert all(e.detail["reference"] == f"DSR-{tag}" for e in entries)
        assert person["value"] not in json.dumps([e.detail for e in entries])
        assert audit.verify(session).ok


def test_the_register_and_agreement_health_are_for_auditors_and_hold_no_person(
    console, login, users, settings, new_partner, make_referral
) -> None:
    (sender, key), (receiver, _) = new_partner(), new_partner()
    submit(console, key, make_referral(sender, receiver))
    auditor = login(users.auditor)
    page = auditor.get("/console/disclosures")
    assert page.status_code == 200 and sender in page.text
    assert find_personal(page.text) == set()
    agreement = re.search(r'/console/disclosures/agreements/([^?"]+)\?', page.text)
    assert agreement, "the page links each agreement's printable summary"
    summary = auditor.get(agreement.group(0)[:-1])
    assert summary.status_code == 200 and "Disclosures under agreement" in summary.text
    assert find_personal(summary.text) == set()
    table = auditor.get("/console/disclosures/export", params={"format": "csv"})
    assert table.status_code == 200 and table.text.startswith("agreement,sender,receiver")
    assert find_personal(table.text) == set()
    bad = auditor.get("/console/disclosures", params={"since": "someday"})
    assert bad.status_code == 400 and "cannot be read" in bad.text
    for role, status in (("auditor", 200), ("im_officer", 200), ("operator", 403)):
        assert login(getattr(users, role)).get("/console/agreements").status_code == status
    assert login(users.operator).get("/console/disclosures").status_code == 403
    assert login(users.im_officer).get("/console/subject-requests").status_code == 403
