"""Field paths: what IM officers may write, and how values are read through them."""

from __future__ import annotations

import pytest

from gateway.mapping.paths import PathSyntaxError, Step, compile_getter, parse_path


def test_plain_nested_paths() -> None:
    path = parse_path("subject.contact.phone")
    assert path.steps == (Step("subject"), Step("contact"), Step("phone"))
    assert path.pointer() == "/subject/contact/phone" and not path.from_root


def test_list_items_by_position_and_by_key() -> None:
    assert parse_path("services[0].type").steps == (Step("services", index=0), Step("type"))
    path = parse_path("subject.identifiers[system=ndelius_crn].value")
    assert path.steps[1] == Step("identifiers", match=("system", "ndelius_crn"))
    assert path.pointer() == "/subject/identifiers/-/value"


def test_quoted_names_and_the_whole_record() -> None:
    path = parse_path('interventions[0]["individuals.progres_id"]')
    assert path.steps == (Step("interventions", index=0), Step("individuals.progres_id"))
    assert parse_path("$.referral.id").from_root


@pytest.mark.parametrize("text", ["", "a..b", ".a", "a.", "a[0][1]", "a b", "[0]", "$.", "a[x]"])
def test_what_is_not_a_path(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        parse_path(text)


def test_getters_read_through_objects_and_lists_and_give_none_when_missing() -> None:
    record = {"case": {"services": [{"type": "a"}, {"type": "b"}],
                       "ids": [{"system": "x", "value": "1"}, {"system": "y", "value": "2"}]},
              "name": "n"}
    item = record["case"]["services"][1]  # type: ignore[index]
    assert compile_getter(parse_path("case.services[1].type"))(record, record) == "b"
    assert compile_getter(parse_path("case.ids[system=y].value"))(record, record) == "2"
    assert compile_getter(parse_path("case.ids[system=z].value"))(record, record) is None
    assert compile_getter(parse_path("case.services[5].type"))(record, record) is None
    assert compile_getter(parse_path("name.first"))(record, record) is None
    assert compile_getter(parse_path("type"))(item, record) == "b"
    assert compile_getter(parse_path("$.name"))(item, record) == "n"
    assert compile_getter(parse_path("a.b.c.d"))({"a": {"b": {"c": {"d": 4}}}}, {}) == 4
