"""The consent gate, agreements and need-to-know over the partner API (SQLite and PostgreSQL).

Each refusal is a problem+json naming what is missing, stores nothing for the receiver,
and leaves an audit entry; what passes reaches the receiver filtered.
"""

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from sqlalchemy import text

from gateway.protection import audit
from gateway.store.db import make_engine, make_sessionmaker
from servers import assert_problem, gateway_marks_delivered, key, pointers
from sharing import audit_actions, two_partners


def test_without_an_agreement_nothing_leaves_and_the_refusal_is_audited(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(new_partner, settings, agree=False)
    client = client_for(sender_key)
    body = assert_problem(client.post("/v1/referrals", json=make_referral(sender, receiver),
                                      headers=key()), 422, "no-agreement")
    assert ("/receiver/partner", "agreement-parties") in pointers(body)
    assert client.get("/v1/referrals").json()["items"] == []
    assert audit_actions(settings, sender)[:1] == [
        ("referral.refuse", {"problem": "no-agreement", "rules": ["agreement-parties"],
                             "receiver": receiver})]


def test_withdrawn_consent_and_consent_for_another_purpose_are_refused(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(new_partner, settings)
    document = make_referral(sender, receiver)
    document["consent"].update(withdrawn=True, withdrawn_date="2026-11-02")
    document["consent"]["scope"]["purposes"] = ["transfer"]
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "consent-required")
    assert pointers(body) == {("/consent/withdrawn", "consent-withdrawn"),
                              ("/consent/scope/purposes", "consent-purpose")}


def test_consent_dated_in_the_future_is_refused(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(new_partner, settings)
    document = make_referral(sender, receiver)
    document["consent"]["date"] = (date.today() + timedelta(days=3)).isoformat()
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "consent-required")
    assert pointers(body) == {("/consent/date", "consent-date")}


def test_fields_outside_the_consent_are_removed_before_anything_is_stored(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(new_partner, settings)
    document = make_referral(sender, receiver)
    document["consent"]["scope"]["data_categories"] = ["identity", "demographics"]
    created = client_for(sender_key).post("/v1/referrals", json=document, headers=key())
    assert created.status_code == 201, created.text
    body = created.json()
    # risk, case-notes and protection were not consented to: gone, and named by pointer.
    assert {"/case/risk_level", "/reason", "/consent/bia_reference"} <= set(body["withheld"])
    copy = client_for(receiver_key).get(f"/v1/referrals/{body['id']}").json()["content"]
    assert "risk_level" not in copy["case"] and "reason" not in copy
    assert copy["subject"]["given_name"] == "Zawadi"  # identity was consented to


def test_an_agreement_that_refuses_fields_outside_consent_names_each_of_them(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(new_partner, settings,
                                                   outside_consent="refuse")
    document = make_referral(sender, receiver)
    document["consent"]["scope"]["data_categories"] = ["identity", "demographics",
                                                       "protection"]
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "consent-required")
    assert pointers(body) == {("/case/risk_level", "consent-category"),
                              ("/reason", "consent-category")}


def test_the_agreement_limits_categories_even_where_consent_allows_them(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(
        new_partner, settings, data_categories={
            "referral": ["identity", "demographics"],
            "transfer": ["identity", "demographics", "protection", "risk", "case-notes"]})
    referral = client_for(sender_key).post("/v1/referrals", json=make_referral(
        sender, receiver), headers=key()).json()
    assert {"/case/risk_level", "/reason"} <= set(referral["withheld"])
    assert "reason" not in referral["content"]
    transfer = client_for(sender_key).post("/v1/referrals", json=make_referral(
        sender, receiver, kind="transfer"), headers=key()).json()
    assert transfer["withheld"] == []  # a transfer carries more, as this agreement says
    assert transfer["content"]["reason"]


def test_a_child_without_the_bia_or_assent_the_agreement_requires_is_refused(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(
        new_partner, settings, requires_bia_for_children=True, requires_child_assent=True)
    client = client_for(sender_key)
    document = make_referral(sender, receiver)
    del document["consent"]["bia_reference"]
    document["consent"]["child_assent"] = False
    body = assert_problem(client.post("/v1/referrals", json=document, headers=key()), 422,
                          "child-safeguard-required")
    assert pointers(body) == {("/consent/bia_reference", "bia-required"),
                              ("/consent/child_assent", "child-assent-required")}
    # An adult needs neither; the same child with both passes.
    adult = make_referral(sender, receiver)
    del adult["consent"]["bia_reference"]
    adult["subject"].update(is_minor=False, birth_date="1990-01-01")
    assert client.post("/v1/referrals", json=adult, headers=key()).status_code == 201
    assert client.post("/v1/referrals", json=make_referral(sender, receiver),
                       headers=key()).status_code == 201


def test_a_referral_that_could_not_say_who_it_is_about_is_refused(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(
        new_partner, settings, data_categories={"referral": ["demographics", "protection"]},
        purposes=["referral"])
    body = assert_problem(client_for(sender_key).post(
        "/v1/referrals", json=make_referral(sender, receiver), headers=key()), 422,
        "consent-required")
    assert {("/subject/given_name", "needed-category"),
            ("/subject/identifiers", "needed-category")} <= pointers(body)
    assert "Zawadi" not in str(body)


def test_a_third_partner_cannot_read_a_referral_and_the_attempt_is_audited(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, receiver_key), (third, third_key) = (
        new_partner(), new_partner(), new_partner())
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(
        sender, receiver), headers=key()).json()
    path = f"/v1/referrals/{created['id']}"
    assert_problem(client_for(third_key).get(path), 404, "not-found")
    assert_problem(client_for(third_key).post(f"{path}/events", json={"status": "accepted"}),
                   404, "not-found")
    assert client_for(receiver_key).get(path).status_code == 200
    # A name where an id belongs is refused too, and stays off the record.
    assert_problem(client_for(third_key).get("/v1/referrals/Zawadi-Fictionalson"), 404,
                   "not-found")
    denied = [(a, d) for a, d in audit_actions(settings, third)]
    assert [a for a, _ in denied] == ["referral.deny"] * 3
    assert "Zawadi" not in str(denied) and denied[-1][1] == {"why": "not a referral id"}
    reads = [a for a, _ in audit_actions(settings, receiver)]
    assert reads == ["referral.read"]
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        assert audit.verify(session).ok


def test_referrals_are_found_by_an_identifier_stored_only_as_a_keyed_hash(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, receiver_key) = new_partner(), new_partner()
    document = make_referral(sender, receiver)
    case_number = document["subject"]["identifiers"][0]["value"]
    created = client_for(sender_key).post("/v1/referrals", json=document, headers=key()).json()
    found = client_for(receiver_key).get("/v1/referrals", params={
        "identifier": f"primero_case:{case_number}"}).json()["items"]
    assert [r["id"] for r in found] == [created["id"]]
    assert client_for(receiver_key).get("/v1/referrals", params={
        "identifier": "primero_case:CP-000000"}).json()["items"] == []
    with make_engine(settings.database_url).connect() as connection:
        dump = " ".join(str(row) for table in ("referrals", "identifier_digests",
                                               "status_events", "audit_log")
                        for row in connection.execute(text(f"SELECT * FROM {table}")))
    assert case_number not in dump and "Zawadi" not in dump and "Fictionalson" not in dump


def test_status_events_carry_only_what_the_referral_may_share(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(
        new_partner, settings, data_categories={
            "referral": ["identity", "demographics", "protection"]}, purposes=["referral"])
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(
        sender, receiver), headers=key()).json()
    path = f"/v1/referrals/{created['id']}"
    gateway_marks_delivered(settings, created["id"])
    answer = client_for(receiver_key).post(f"{path}/events", json={
        "status": "rejected", "note": "Spoke with her aunt about the family.",
        "reason": {"code": "lack_of_capacity", "text": "No tracing caseworker free."}})
    assert answer.status_code == 201, answer.text
    last = client_for(sender_key).get(path).json()["events"][-1]
    # The code travels; free text (case-notes) is not shared under this agreement.
    assert (last["to_state"], last["reason_code"]) == ("rejected", "lack_of_capacity")
    assert last["details"] == {"reason": {"code": "lack_of_capacity"}}


def test_the_senders_notes_stay_within_the_consent_the_receivers_within_the_agreement(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(new_partner, settings)
    document = make_referral(sender, receiver)
    document["consent"]["scope"]["data_categories"] = ["identity", "demographics"]
    created = client_for(sender_key).post("/v1/referrals", json=document, headers=key()).json()
    path = f"/v1/referrals/{created['id']}"
    gateway_marks_delivered(settings, created["id"])
    client_for(receiver_key).post(f"{path}/events", json={
        "status": "acknowledged", "note": "Caseworker assigned; first visit on Monday."})
    client_for(sender_key).post(f"{path}/events", json={
        "status": "withdrawn", "note": "Family moved to a fictional town."})
    events = client_for(receiver_key).get(path).json()["events"]
    assert [(e["to_state"], e["details"]) for e in events[-2:]] == [
        ("acknowledged", {"note": "Caseworker assigned; first visit on Monday."}),
        ("withdrawn", {})]


def test_a_bad_consent_withdrawal_is_refused_and_changes_nothing(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(new_partner, settings)
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(
        sender, receiver), headers=key()).json()
    path = f"/v1/referrals/{created['id']}/consent-withdrawal"
    client = client_for(sender_key)
    for body, rule in (({}, "format"), ({"withdrawn_date": "20-11-2026"}, "format"),
                       ({"withdrawn_date": (date.today() + timedelta(days=3)).isoformat()},
                        "not-future")):
        problem = assert_problem(client.post(path, json=body), 422, "validation-error")
        assert pointers(problem) == {("/withdrawn_date", rule)}
    refused = assert_problem(client_for(receiver_key).post(path, json={
        "withdrawn_date": "2026-11-20"}), 403, "forbidden")
    assert pointers(refused) == {("", "sender-only")}
    after = client.get(f"/v1/referrals/{created['id']}").json()
    assert after["status"] == "submitted" and after["consent_withdrawn_at"] is None
    assert after["content"]["consent"].get("withdrawn") is not True


def test_refusals_and_acceptances_sent_at_once_each_get_their_own_answer_and_entry(
    new_partner, client_for, make_referral, settings
) -> None:
    # Submissions of one moment are written in one transaction (a group commit): a refusal
    # among them must still be answered alone, keep its audit entry, and take nothing of
    # the others with it (nor they of it).
    sender, sender_key, receiver, _ = two_partners(new_partner, settings)
    client = client_for(sender_key)
    withdrawn = make_referral(sender, receiver)
    withdrawn["consent"].update(withdrawn=True, withdrawn_date="2026-11-02")
    documents = [make_referral(sender, receiver) if n % 2 else withdrawn for n in range(12)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda d: client.post("/v1/referrals", json=d, headers=key()),
                                documents))
    assert [a.status_code for a in answers] == [422, 201] * 6
    assert {a.json()["type"].rsplit("/", 1)[-1] for a in answers[::2]} == {"consent-required"}
    stored = {item["id"] for item in client.get("/v1/referrals").json()["items"]}
    assert stored == {a.json()["id"] for a in answers[1::2]} and len(stored) == 6
    actions = [action for action, _ in audit_actions(settings, sender)]
    assert actions.count("referral.refuse") == 6 and actions.count("referral.create") == 6
