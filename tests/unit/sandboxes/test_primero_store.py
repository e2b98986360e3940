"""The Primero sandbox's store keeps users in memory: never stale, never shared, never
uncommitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandboxes.primero.store import Store


def fictional_user(name: str = "cp_tester", **fields: object) -> dict[str, object]:
    return {"user_name": name, "full_name": "Tess Fixture (fictional)", "agency_id": "agency-a",
            "user_group_unique_ids": ["group-a"], "permissions": ["referral"], **fields}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    made = Store(tmp_path / "primero.db")
    with made.writing() as db:
        made.put_user(db, fictional_user())
    return made


def test_a_changed_user_is_read_back_changed(store: Store) -> None:
    with store.reading() as db:
        assert store.user(db, "cp_tester")["agency_id"] == "agency-a"  # now remembered
    with store.writing() as db:
        store.put_user(db, fictional_user(agency_id="agency-b"))
    with store.reading() as db:
        assert store.user(db, "cp_tester")["agency_id"] == "agency-b"


def test_a_user_changed_in_a_transaction_that_fails_is_read_as_committed(store: Store) -> None:
    with pytest.raises(RuntimeError), store.writing() as db:
        store.put_user(db, fictional_user(disabled=True))
        assert store.user(db, "cp_tester")["disabled"] is True  # seen inside it
        raise RuntimeError("the request failed")
    with store.reading() as db:
        assert "disabled" not in store.user(db, "cp_tester")


def test_each_caller_gets_its_own_copy_of_a_user(store: Store) -> None:
    with store.reading() as db:
        first = store.user(db, "cp_tester")
        first["permissions"].append("assign")
        first["agency_id"] = "changed in place"
        again = store.user(db, "cp_tester")
    assert again["permissions"] == ["referral"] and again["agency_id"] == "agency-a"


def test_an_unknown_user_is_none_and_found_once_added(store: Store) -> None:
    with store.reading() as db:
        assert store.user(db, "cp_nobody") is None
    with store.writing() as db:
        store.put_user(db, fictional_user("cp_nobody"))
    with store.reading() as db:
        assert store.user(db, "cp_nobody")["user_name"] == "cp_nobody"
