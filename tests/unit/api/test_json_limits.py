"""The JSON reader refuses what a body within the size limit can still hide, naming the
limit and, where it can, the place."""

import json

import pytest

from gateway.api.body import JsonLimits, parse_json
from gateway.errors import CaseBridgeError

LIMITS = JsonLimits(max_depth=8, max_string=100, max_items=5)


def refusal(body: bytes, limits: JsonLimits = LIMITS) -> CaseBridgeError:
    with pytest.raises(CaseBridgeError) as raised:
        parse_json(body, limits)
    return raised.value


def test_a_document_within_the_limits_is_read_as_is() -> None:
    document = {"subject": {"names": ["Zawadi", "Amani"], "age": 12, "score": 1.5},
                "note": "[[[[[[[[[[ brackets in a string do not nest {{{{{{{{{{"}
    assert parse_json(json.dumps(document).encode(), LIMITS) == document


def test_two_hundred_thousand_nested_brackets_are_refused_400_not_a_crash() -> None:
    error = refusal(b"[" * 200_000 + b"]" * 200_000,
                    JsonLimits(max_depth=32, max_string=65536, max_items=1000))
    assert error.status == 400 and error.slug == "json-limit"
    assert error.extensions["limit"] == {"name": "json_max_depth", "value": 32}
    assert "200000 levels" in error.detail


def test_nesting_one_level_too_deep_is_refused_and_escaped_quotes_do_not_fool_the_count(
) -> None:
    assert parse_json(b'{"a": "\\"[[[[", "b": ' + b"[" * 7 + b"]" * 7 + b"}", LIMITS)
    error = refusal(b'{"a": "\\"", "b": ' + b"[" * 8 + b"]" * 8 + b"}")
    assert error.extensions["limit"]["name"] == "json_max_depth"


def test_a_long_string_is_refused_413_naming_its_pointer() -> None:
    error = refusal(json.dumps({"subject": {"given_name": "Z" * 101}}).encode())
    assert error.status == 413
    assert error.extensions["limit"] == {"name": "json_max_string", "value": 100}
    assert error.extensions["errors"][0]["pointer"] == "/subject/given_name"
    assert "ZZZ" not in error.detail


def test_a_long_member_name_is_refused_like_a_long_value() -> None:
    error = refusal(json.dumps({"a/b": {"k" * 101: 1}}).encode())
    assert error.extensions["errors"][0]["pointer"] == "/a~1b/" + "k" * 101


def test_a_long_array_is_refused_413_naming_its_pointer() -> None:
    error = refusal(json.dumps({"services": [[1, 2, 3, 4, 5, 6]]}).encode())
    assert error.status == 413
    assert error.extensions["limit"] == {"name": "json_max_items", "value": 5}
    assert error.extensions["errors"][0]["pointer"] == "/services/0"


@pytest.mark.parametrize("number", [b"1" * 5000, b"1e999", b"-1e999", b"NaN", b"Infinity",
                                    b"0." + b"1" * 100])
def test_numbers_no_store_can_hold_are_refused_400(number: bytes) -> None:
    error = refusal(b'{"age": ' + number + b"}")
    assert error.status == 400
    assert error.extensions["errors"][0]["rule"] == "json-number"


def test_a_lone_surrogate_is_refused_naming_where() -> None:
    error = refusal(b'{"reason": ["fine", "\\ud800 alone"]}')
    assert error.status == 400
    assert error.extensions["errors"] == [{"pointer": "/reason/1", "rule": "unicode",
                                           "detail": error.extensions["errors"][0]["detail"]}]
    # a surrogate pair is a character
    assert parse_json(b'{"reason": "\\ud83d\\ude00"}', LIMITS) == {"reason": "\U0001f600"}


def test_syntax_errors_name_line_and_column_and_bad_encoding_is_named() -> None:
    assert "line 2 column" in refusal(b'{"a": 1,\n "b": }').detail
    assert refusal(b'{"a": "\xff"}').extensions["errors"][0]["rule"] == "encoding"
