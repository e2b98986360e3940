"""Intake over the partner API (SQLite and PostgreSQL): no child missed, nothing refused for
a field the receiver would not get, and a consent that says nothing is a consent problem.
"""



from servers import assert_problem, gateway_marks_delivered, key, pointers
from sharing import audit_actions, two_partners

LONG_NOTE = "Fictional caseworker note. " * 2400  # about 62,000 characters: over any limit


def child_safeguards(new_partner, settings):
    """Sender and receiver whose agreement requires a BIA and the child's assent."""
    return two_partners(new_partner, settings, requires_bia_for_children=True,
                        requires_child_assent=True)


def without_bia(document):
    del document["consent"]["bia_reference"]
    return document


def test_a_child_known_only_by_age_gets_the_child_safeguards(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = child_safeguards(new_partner, settings)
    client = client_for(sender_key)
    document = without_bia(make_referral(sender, receiver))
    del document["subject"]["birth_date"], document["subject"]["is_minor"]
    # Fifteen two years before the referral: seventeen now, still a child.
    document["subject"]["age"] = {"years": 15, "as_of": "2024-11-01"}
    document["requested_at"] = "2026-11-02T09:00:00+03:00"
    body = assert_problem(client.post("/v1/referrals", json=document, headers=key()), 422,
                          "child-safeguard-required")
    assert pointers(body) == {("/consent/bia_reference", "bia-required")}
    document["consent"]["bia_reference"] = "BIA-2026-0042"
    created = client.post("/v1/referrals", json=document, headers=key())
    assert created.status_code == 201, created.text
    copy = client_for(receiver_key).get(f"/v1/referrals/{created.json()['id']}").json()
    assert copy["content"]["subject"]["is_minor"] is True


def test_an_age_aged_forward_past_eighteen_is_an_adult(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = child_safeguards(new_partner, settings)
    document = without_bia(make_referral(sender, receiver, case={"module": "protection"}))
    del document["subject"]["birth_date"], document["subject"]["is_minor"]
    document["subject"]["age"] = {"years": 17, "as_of": "2023-01-15"}
    document["requested_at"] = "2026-11-02T09:00:00Z"
    created = client_for(sender_key).post("/v1/referrals", json=document, headers=key())
    assert created.status_code == 201, created.text
    assert created.json()["content"]["subject"]["is_minor"] is False


def test_a_child_protection_case_that_says_nothing_of_age_is_a_childs(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = child_safeguards(new_partner, settings)
    document = without_bia(make_referral(sender, receiver))
    del document["subject"]["birth_date"], document["subject"]["is_minor"]
    assert document["case"]["module"] == "child_protection"
    assert_problem(client_for(sender_key).post("/v1/referrals", json=document, headers=key()),
                   422, "child-safeguard-required")


def test_is_minor_false_against_a_child_birth_date_is_treated_as_a_child_and_audited(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = child_safeguards(new_partner, settings)
    client = client_for(sender_key)
    document = without_bia(make_referral(sender, receiver))
    document["subject"]["is_minor"] = False  # birth date 2014-03-09: a child
    assert_problem(client.post("/v1/referrals", json=document, headers=key()), 422,
                   "child-safeguard-required")
    document["consent"]["bia_reference"] = "BIA-2026-0042"
    created = client.post("/v1/referrals", json=document, headers=key())
    assert created.status_code == 201, created.text
    assert created.json()["content"]["subject"]["is_minor"] is True
    [(_, detail)] = [(a, d) for a, d in audit_actions(settings, sender)
                     if a == "referral.create"]
    assert detail["minor_contradicted"] == ["/subject/is_minor", "/subject/birth_date"]


def test_a_birthday_is_counted_where_the_referral_was_made(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = child_safeguards(new_partner, settings)
    client = client_for(sender_key)
    document = without_bia(make_referral(sender, receiver, case={"module": "protection"}))
    del document["subject"]["is_minor"]
    document["subject"]["birth_date"] = "2008-11-02"
    # 23:30 on 1 November at UTC-1 is already 2 November in UTC: still seventeen there.
    document["requested_at"] = "2026-11-01T23:30:00-01:00"
    assert_problem(client.post("/v1/referrals", json=document, headers=key()), 422,
                   "child-safeguard-required")
    document["requested_at"] = "2026-11-02T00:30:00+02:00"  # eighteen that day
    assert client.post("/v1/referrals", json=document, headers=key()).status_code == 201


def test_an_over_long_note_the_receiver_would_not_get_is_removed_not_refused(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(
        new_partner, settings, data_categories={
            "referral": ["identity", "demographics", "protection", "risk"]},
        purposes=["referral"])
    document = make_referral(sender, receiver, reason=LONG_NOTE)
    document["services"][0]["notes"] = LONG_NOTE
    document["subject"]["contact"] = {"phone": "+211 " + "9" * 60}  # not consented: goes
    created = client_for(sender_key).post("/v1/referrals", json=document, headers=key())
    assert created.status_code == 201, created.text
    assert {"/reason", "/services/0/notes", "/subject/contact"} <= set(
        created.json()["withheld"])
    copy = client_for(receiver_key).get(f"/v1/referrals/{created.json()['id']}").json()
    assert "reason" not in copy["content"] and "notes" not in copy["content"]["services"][0]


def test_a_long_note_the_receiver_gets_passes_and_one_over_the_limit_is_refused_by_pointer(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, receiver_key = two_partners(new_partner, settings)
    client = client_for(sender_key)
    note = "Fictional caseworker note. " * 185  # about 5,000 characters
    created = client.post("/v1/referrals", json=make_referral(sender, receiver, reason=note),
                          headers=key())
    assert created.status_code == 201, created.text
    copy = client_for(receiver_key).get(f"/v1/referrals/{created.json()['id']}").json()
    assert copy["content"]["reason"] == note
    body = assert_problem(client.post("/v1/referrals", json=make_referral(
        sender, receiver, reason=LONG_NOTE), headers=key()), 422, "validation-error")
    assert pointers(body) == {("/reason", "maxLength")}


def test_a_missing_structure_is_refused_before_anything_else(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(new_partner, settings, agree=False)
    document = make_referral(sender, receiver, reason=LONG_NOTE)
    del document["subject"]["given_name"]
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "validation-error")
    assert pointers(body) == {("/subject/given_name", "required")}


def test_a_consent_that_covers_nothing_is_a_consent_problem_naming_what_is_missing(
    new_partner, client_for, make_referral, settings
) -> None:
    sender, sender_key, receiver, _ = two_partners(new_partner, settings)
    document = make_referral(sender, receiver)
    del document["consent"]["scope"]["purposes"]
    document["consent"]["scope"]["data_categories"] = []
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "consent-required")
    assert pointers(body) == {("/consent/scope/purposes", "required"),
                              ("/consent/scope/data_categories", "minItems")}
    assert "Zawadi" not in str(body)


def test_an_over_long_status_note_the_other_side_would_not_get_is_removed_not_refused(
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
        "status": "acknowledged", "note": LONG_NOTE})
    assert answer.status_code == 201, answer.text
    last = client_for(sender_key).get(path).json()["events"][-1]
    assert (last["to_state"], last["details"]) == ("acknowledged", {})
    # A broken value the other side would get is still refused, naming it.
    refused = assert_problem(client_for(receiver_key).post(f"{path}/events", json={
        "status": "accepted", "reason": {"code": "not-a-code"}}), 422, "validation-error")
    assert ("/reason/code", "enum") in pointers(refused)
