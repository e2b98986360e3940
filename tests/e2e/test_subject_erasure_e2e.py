"""A person's erasure request, end to end: `casebridge subject erase` empties the gateway's
copies, the receiving Primero is told through the outbox like a consent withdrawal, the
audit trail still verifies, and the disclosure register counts it all, with no person.
"""

import json
import sqlite3

from fictional import find_personal
from gateway.protection.identifiers import lookup_digests
from gateway.store.models import IdentifierDigest, Referral
from stack import SandboxSpec, Stack, wait_for

RECEIVER, SENDER = "primero-ssd", "sender-api"


def revoked_in_primero(stack: Stack, referral_id: str) -> bool:
    with sqlite3.connect(stack.folder / f"{RECEIVER}.db") as db:
        states = [row[0] for row in db.execute(
            "SELECT json_extract(t.data, '$.status') FROM transitions t JOIN cases c "
            "ON t.record_id = c.id WHERE json_extract(c.data, '$.casebridge_referral_id') = ?",
            (referral_id,))]
    return "revoked" in states


def test_an_erasure_empties_the_copies_tells_the_receiver_and_keeps_the_trail_verifiable(
    make_stack, make_referral, cli
) -> None:
    stack = make_stack([SandboxSpec(RECEIVER, "primero")], [SENDER])
    first = make_referral(SENDER, RECEIVER)
    person = first["subject"]["identifiers"][0]
    identifier = f"{person['system']}:{person['value']}"
    second = make_referral(SENDER, RECEIVER)
    second["subject"]["identifiers"] = [person]  # the same person, referred twice
    kept, delivered = stack.submit(SENDER, first), stack.submit(SENDER, second)
    wait_for(lambda: all(stack.history(r)[-1] == "delivered" for r in (kept, delivered)),
             timeout=60, what="both referrals delivered")

    env = {"database_url": stack.settings.database_url,
           "agreements_dir": str(stack.settings.agreements_dir)}
    found = cli("subject", "find", "--identifier", identifier, "--reason", "erasure_request",
                "--reference", "DSR-E2E-1", **env)
    assert found.exit_code == 0, found.output
    assert kept in found.output and delivered in found.output
    erased = cli("subject", "erase", "--identifier", identifier, "--referral", delivered,
                 "--reason", "erasure_request", "--reference", "DSR-E2E-1", "--yes", **env)
    assert erased.exit_code == 0, erased.output
    assert f"{delivered}\terased\treceiver told through the gateway" in erased.output
    assert kept not in erased.output  # only the referral chosen

    wait_for(lambda: revoked_in_primero(stack, delivered), timeout=60,
             what="the erased referral revoked in Primero")
    referral = stack.referral(delivered)
    assert referral.content == {} and referral.erased_at is not None
    assert [e.content for e in referral.events][:-1] == [{}] * (len(referral.events) - 1)
    assert "erase" in referral.events[-1].content.get("note", "")  # what Primero was told
    with stack.sessions() as session:
        digests = session.query(IdentifierDigest).filter(
            IdentifierDigest.digest.in_(lookup_digests(identifier))).all()
        assert [d.referral_id for d in digests] == [kept]
        assert session.get(Referral, kept).content["subject"]["given_name"] == "Zawadi"

    exported = cli("subject", "export", "--identifier", identifier, "--format", "json",
                   "--reason", "access_request", "--reference", "DSR-E2E-2", **env)
    assert exported.exit_code == 0, exported.output
    # The erased copy is no longer found by the identifier; the other is, whole.
    [only] = json.loads(exported.output[exported.output.index("{"):])["referrals"]
    assert only["referral_id"] == kept and only["received"]["subject"]["given_name"] == "Zawadi"

    verified = cli("audit", "verify", **env)
    assert verified.exit_code == 0 and "chain intact" in verified.output, verified.output
    register = cli("report", "disclosures", "--format", "json", **env)
    assert register.exit_code == 0, register.output
    row = next(r for r in json.loads(register.output)["rows"] if r["sender"] == SENDER)
    assert (row["referrals"], row["erasures"]) == (2, 1)
    assert row["receiver_told"]["told"] == 1
    assert row["receiver_told"]["max_seconds"] < 60
    assert find_personal(register.output) == set()
