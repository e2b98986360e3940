"""The partner API over real HTTP, against SQLite and PostgreSQL."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from gateway.casework import request_hash
from gateway.store.db import make_engine, make_sessionmaker, unit_of_work
from gateway.store.models import OutboxMessage, Referral, new_id, utcnow
from servers import assert_problem, gateway_marks_delivered, key, pointers


def test_submitted_referral_is_stored_with_its_first_event_and_an_outbox_row(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, _) = new_partner("primero"), new_partner("progres")
    client = client_for(sender_key)
    response = client.post("/v1/referrals", json=make_referral(sender, receiver), headers=key())
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"/v1/referrals/{created['id']}"
    assert created["status"] == "submitted"
    assert created["events"][0]["to_state"] == "submitted"
    assert created["next_states"]["sender"] == ["withdrawn"]

    again = client.get(f"/v1/referrals/{created['id']}").json()
    assert again["content"]["subject"]["given_name"] == "Zawadi"
    assert again["correlation_id"] == response.headers["X-Correlation-ID"]

    with make_sessionmaker(make_engine(settings.database_url))() as session:
        outbox = session.scalars(select(OutboxMessage).where(
            OutboxMessage.referral_id == created["id"])).all()
    assert [(m.message_type, m.routing_key) for m in outbox] == [("deliver", f"deliver.{receiver}")]
    assert "Zawadi" not in json.dumps(outbox[0].envelope)


def test_correlation_id_from_the_sender_is_kept(new_partner, client_for, make_referral) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    response = client_for(sender_key).post(
        "/v1/referrals", json=make_referral(sender, receiver),
        headers={**key(), "X-Correlation-ID": "corr-primero-123456"})
    assert response.json()["correlation_id"] == "corr-primero-123456"


def test_same_idempotency_key_and_body_returns_the_first_result(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    client, headers, document = client_for(sender_key), key(), make_referral(sender, receiver)
    first = client.post("/v1/referrals", json=document, headers=headers)
    second = client.post("/v1/referrals", json=document, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    listed = client.get("/v1/referrals", params={"partner": receiver}).json()["items"]
    assert len(listed) == 1


def test_same_idempotency_key_with_another_body_is_a_conflict(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    client, headers = client_for(sender_key), key()
    assert client.post("/v1/referrals", json=make_referral(sender, receiver),
                       headers=headers).status_code == 201
    other = make_referral(sender, receiver, reason="A different story.")
    body = assert_problem(client.post("/v1/referrals", json=other, headers=headers), 409,
                          "idempotency-conflict")
    assert "A different story" not in json.dumps(body)


def test_concurrent_retries_with_one_key_store_one_referral(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    client, headers, document = client_for(sender_key), key(), make_referral(sender, receiver)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/referrals", json=document,
                                                      headers=headers), range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        assert session.scalar(select(func.count()).select_from(Referral).where(
            Referral.sender_id == sender)) == 1


def test_missing_idempotency_key_is_refused(new_partner, client_for, make_referral) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    response = client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver))
    body = assert_problem(response, 400, "invalid-parameter")
    assert [(e["in"], e["pointer"], e["rule"]) for e in body["errors"]] == [
        ("header", "/idempotency-key", "missing")]


def test_malformed_json_names_line_and_column(new_partner, client_for) -> None:
    _, sender_key = new_partner()
    response = client_for(sender_key).post(
        "/v1/referrals", content=b'{"kind": "referral",\n "sender": }',
        headers={**key(), "Content-Type": "application/json"})
    body = assert_problem(response, 400, "malformed-request")
    assert "line 2 column" in body["detail"]
    assert pointers(body) == {("", "json-syntax")}


def test_unknown_code_names_the_field_without_echoing_the_value(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    document = make_referral(sender, receiver,
                             services=[{"type": "space_travel_for_zawadi"}])
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "validation-error")
    assert ("/services/0/type", "enum") in pointers(body)
    assert "space_travel" not in json.dumps(body)


def test_personal_values_never_appear_in_validation_errors(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    document = make_referral(sender, receiver)
    document["subject"]["birth_date"] = "Zawadi-2014-13-45"
    document["subject"]["given_name"] = "Zawadi" * 100
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "validation-error")
    expected = {("/subject/birth_date", "format"), ("/subject/given_name", "maxLength")}
    assert expected <= pointers(body)
    assert "Zawadi" not in json.dumps(body)


def test_missing_consent_block_is_refused_and_nothing_is_stored(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    document = make_referral(sender, receiver)
    del document["consent"]
    client = client_for(sender_key)
    # No consent at all is a consent problem (not a malformed referral): nothing leaves.
    body = assert_problem(client.post("/v1/referrals", json=document, headers=key()), 422,
                          "consent-required")
    assert ("/consent", "required") in pointers(body)
    assert client.get("/v1/referrals").json()["items"] == []


def test_consent_not_covering_the_receiver_is_refused(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, _), (other, _) = new_partner(), new_partner(), new_partner()
    document = make_referral(sender, receiver)
    document["consent"]["scope"]["receivers"] = [other]
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 422, "consent-required")
    assert pointers(body) == {("/consent/scope/receivers", "consent-receiver")}


def test_oversized_body_is_refused(new_partner, client_for, make_referral) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    document = make_referral(sender, receiver, padding="x" * (1024 * 1024))
    body = assert_problem(client_for(sender_key).post("/v1/referrals", json=document,
                                                      headers=key()), 413, "payload-too-large")
    assert body["limit_bytes"] == 1024 * 1024


def test_oversized_chunked_body_without_length_is_refused(new_partner, client_for) -> None:
    _, sender_key = new_partner()

    def chunks():
        for _ in range(40):
            yield b" " * 32768

    response = client_for(sender_key).post(
        "/v1/referrals", content=chunks(), headers={**key(), "Content-Type": "application/json"})
    assert_problem(response, 413, "payload-too-large")


def test_wrong_content_type_is_refused(new_partner, client_for, make_referral) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    response = client_for(sender_key).post(
        "/v1/referrals", content=json.dumps(make_referral(sender, receiver)),
        headers={**key(), "Content-Type": "text/plain"})
    body = assert_problem(response, 415, "unsupported-media-type")
    assert pointers(body) == {("", "content-type")}


def test_a_partner_cannot_submit_in_another_partners_name(
    new_partner, client_for, make_referral
) -> None:
    (sender, _), (receiver, _), (_, intruder_key) = new_partner(), new_partner(), new_partner()
    response = client_for(intruder_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                             headers=key())
    assert pointers(assert_problem(response, 403, "forbidden")) == {
        ("/sender/partner", "sender-is-caller")}


def test_unknown_receiver_is_refused(new_partner, client_for, make_referral) -> None:
    sender, sender_key = new_partner()
    response = client_for(sender_key).post("/v1/referrals",
                                           json=make_referral(sender, "nobody-here"), headers=key())
    assert pointers(assert_problem(response, 422, "validation-error")) == {
        ("/receiver/partner", "known-partner")}


def test_requests_without_a_valid_key_are_refused(gateway) -> None:
    with httpx.Client(base_url=gateway.url) as anonymous:
        assert_problem(anonymous.get("/v1/referrals"), 401, "not-authenticated")
        assert_problem(anonymous.get("/v1/referrals", headers={"X-API-Key": "cbk_wrong"}), 401,
                       "not-authenticated")


def test_a_partner_key_is_read_from_either_header_whatever_the_case_of_bearer(
        new_partner, gateway) -> None:
    _, api_key = new_partner()
    with httpx.Client(base_url=gateway.url) as anonymous:
        for headers in ({"Authorization": f"bearer {api_key}"}, {"X-API-Key": api_key},
                        {"Authorization": f"BEARER {api_key}"}):
            assert anonymous.get("/v1/referrals", headers=headers).status_code == 200, headers


def test_a_third_partner_cannot_see_the_referral(new_partner, client_for, make_referral) -> None:
    (sender, sender_key), (receiver, receiver_key), (_, third_key) = (
        new_partner(), new_partner(), new_partner())
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                          headers=key()).json()
    assert client_for(receiver_key).get(f"/v1/referrals/{created['id']}").status_code == 200
    assert_problem(client_for(third_key).get(f"/v1/referrals/{created['id']}"), 404, "not-found")
    assert client_for(third_key).get("/v1/referrals").json()["items"] == []
    response = client_for(third_key).post(f"/v1/referrals/{created['id']}/events",
                                          json={"status": "withdrawn"})
    assert_problem(response, 404, "not-found")


def test_event_before_delivery_names_current_and_allowed_states(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (receiver, receiver_key) = new_partner(), new_partner()
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                          headers=key()).json()
    response = client_for(receiver_key).post(f"/v1/referrals/{created['id']}/events",
                                             json={"status": "accepted"})
    body = assert_problem(response, 409, "lifecycle-violation")
    assert body["current_state"] == "submitted"
    assert body["requested_state"] == "accepted"
    assert body["allowed_next_states"] == ["delivered", "failed", "withdrawn"]
    assert pointers(body) == {("/status", "lifecycle")}


def test_only_the_receiver_may_accept(new_partner, client_for, make_referral, settings) -> None:
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                          headers=key()).json()
    gateway_marks_delivered(settings, created["id"])
    body = assert_problem(client_for(sender_key).post(
        f"/v1/referrals/{created['id']}/events", json={"status": "accepted"}), 409,
        "lifecycle-violation")
    assert "only the receiver" in body["detail"]
    assert body["allowed_next_states"] == ["withdrawn"]


def test_rejection_without_reason_is_refused(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, receiver_key) = new_partner(), new_partner()
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                          headers=key()).json()
    gateway_marks_delivered(settings, created["id"])
    response = client_for(receiver_key).post(f"/v1/referrals/{created['id']}/events",
                                             json={"status": "rejected"})
    assert ("/reason", "required") in pointers(assert_problem(response, 422, "validation-error"))


def test_referral_runs_its_lifecycle_and_repeats_are_idempotent(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, receiver_key) = new_partner(), new_partner()
    created = client_for(sender_key).post("/v1/referrals", json=make_referral(sender, receiver),
                                          headers=key()).json()
    gateway_marks_delivered(settings, created["id"])
    receiver_client = client_for(receiver_key)
    events = f"/v1/referrals/{created['id']}/events"
    for status in ("acknowledged", "accepted", "in_progress"):
        assert receiver_client.post(events, json={"status": status}).status_code == 201
    repeated = receiver_client.post(events, json={"status": "in_progress"})
    assert repeated.status_code == 200
    done = receiver_client.post(events, json={
        "status": "completed", "outcome": {"result": "successful", "service_implemented": True}})
    assert done.status_code == 201
    history = [(e["from_state"], e["to_state"], e["actor"]) for e in done.json()["events"]]
    assert history == [
        (None, "submitted", "sender"), ("submitted", "delivered", "gateway"),
        ("delivered", "acknowledged", "receiver"), ("acknowledged", "accepted", "receiver"),
        ("accepted", "in_progress", "receiver"), ("in_progress", "completed", "receiver"),
    ]
    assert done.json()["next_states"] == {"sender": [], "receiver": [], "gateway": []}
    assert_problem(client_for(sender_key).post(events, json={"status": "withdrawn"}), 409,
                   "lifecycle-violation")


def test_transfer_challenged_by_receiver_is_enforced_by_sender(
    new_partner, client_for, make_referral, settings
) -> None:
    (sender, sender_key), (receiver, receiver_key) = new_partner("ndelius"), new_partner("ndelius")
    created = client_for(sender_key).post(
        "/v1/referrals", json=make_referral(sender, receiver, kind="transfer"),
        headers=key()).json()
    assert created["kind"] == "transfer"
    gateway_marks_delivered(settings, created["id"])
    events = f"/v1/referrals/{created['id']}/events"
    receiver_client, sender_client = client_for(receiver_key), client_for(sender_key)
    assert receiver_client.post(events, json={"status": "accepted"}).status_code == 201
    challenged = receiver_client.post(events, json={
        "status": "challenged", "reason": {"code": "risk_concerns", "text": "Risk to a victim"}})
    assert challenged.status_code == 201
    assert challenged.json()["next_states"]["sender"] == ["accepted", "withdrawn"]
    assert sender_client.post(events, json={"status": "accepted"}).status_code == 201
    assert receiver_client.post(events, json={
        "status": "completed", "outcome": {"result": "successful"}}).json()["status"] == "completed"


def test_list_filters_and_pages_without_gaps_or_repeats(
    new_partner, client_for, make_referral
) -> None:
    (sender, sender_key), (a, _), (b, _) = new_partner(), new_partner(), new_partner()
    client = client_for(sender_key)
    made = {"a": [], "b": []}
    for i in range(7):
        receiver, kind = (a, "referral") if i % 2 == 0 else (b, "transfer")
        answer = client.post("/v1/referrals", json=make_referral(sender, receiver, kind=kind),
                             headers=key())
        made["a" if receiver == a else "b"].append(answer.json()["id"])
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/referrals", params=params)
        assert page.status_code == 200
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made["a"] + made["b"]) and len(seen) == 7
    only_b = client.get("/v1/referrals", params={"partner": b}).json()["items"]
    assert {i["id"] for i in only_b} == set(made["b"])
    transfers = client.get("/v1/referrals", params={"kind": "transfer"}).json()["items"]
    assert {i["kind"] for i in transfers} == {"transfer"} and len(transfers) == 3
    assert client.get("/v1/referrals", params={"status": "accepted"}).json()["items"] == []
    last = client.get(f"/v1/referrals/{made['a'][-1]}").json()["updated_at"]
    recent = client.get("/v1/referrals", params={"updated_since": last}).json()["items"]
    assert made["a"][-1] in {i["id"] for i in recent} and len(recent) < 7


def test_bad_filters_and_cursors_are_problems(new_partner, client_for) -> None:
    _, sender_key = new_partner()
    client = client_for(sender_key)
    body = assert_problem(client.get("/v1/referrals", params={"status": "lost"}), 400,
                          "invalid-parameter")
    assert body["errors"][0]["pointer"] == "/status" and body["errors"][0]["in"] == "query"
    body = assert_problem(client.get("/v1/referrals", params={"cursor": "not-a-cursor"}), 400,
                          "invalid-parameter")
    assert body["errors"][0]["pointer"] == "/cursor" and body["errors"][0]["in"] == "query"


def test_unknown_route_and_method_are_problems(gateway) -> None:
    with httpx.Client(base_url=gateway.url) as anonymous:
        assert_problem(anonymous.get("/v2/nothing"), 404, "not-found")
        assert_problem(anonymous.delete("/healthz"), 405, "method-not-allowed")


def test_a_key_used_before_referral_ids_were_derived_is_still_replayed(
    new_partner, client_for, make_referral, settings
) -> None:
    # A referral stored before ids came from sender and key (`referral_id_for`) has an id
    # the quick check by id does not find: the unique key constraint still does.
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    document, headers = make_referral(sender, receiver), key()
    now = utcnow()
    legacy_id = new_id()
    with unit_of_work(make_sessionmaker(make_engine(settings.database_url))) as session:
        session.add(Referral(
            id=legacy_id, kind="referral", sender_id=sender, receiver_id=receiver,
            status="submitted", correlation_id="corr-legacy", created_at=now, updated_at=now,
            idempotency_key=headers["Idempotency-Key"], request_hash=request_hash(document),
            content=document))
    client = client_for(sender_key)
    again = client.post("/v1/referrals", json=document, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == legacy_id
    other = make_referral(sender, receiver, reason="A different story.")
    assert_problem(client.post("/v1/referrals", json=other, headers=headers), 409,
                   "idempotency-conflict")


def test_repeats_sent_at_once_with_new_submissions_each_get_their_own_answer(
    new_partner, client_for, make_referral, settings
) -> None:
    # Submissions of one moment share a transaction, in which a repeat is found by the
    # store (its group splits and it is answered alone): each still gets its own answer,
    # a repeat its first one, a key with another body 409.
    (sender, sender_key), (receiver, _) = new_partner(), new_partner()
    client = client_for(sender_key)
    stored = [(key(), make_referral(sender, receiver)) for _ in range(3)]
    first = [client.post("/v1/referrals", json=document, headers=headers).json()["id"]
             for headers, document in stored]
    new = [(key(), make_referral(sender, receiver)) for _ in range(3)]
    other = (stored[0][0], make_referral(sender, receiver, reason="A different story."))
    calls = [*stored, *new, other]
    with ThreadPoolExecutor(len(calls)) as pool:
        answers = list(pool.map(lambda call: client.post("/v1/referrals", json=call[1],
                                                         headers=call[0]), calls))
    assert [a.status_code for a in answers] == [201] * 6 + [409]
    assert [a.json()["id"] for a in answers[:3]] == first
    assert [a.headers.get("Idempotent-Replayed") for a in answers[:6]] == ["true"] * 3 + [None] * 3
    with make_sessionmaker(make_engine(settings.database_url))() as session:
        assert session.scalar(select(func.count()).select_from(Referral).where(
            Referral.sender_id == sender)) == 6
