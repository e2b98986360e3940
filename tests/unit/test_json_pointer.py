"""JSON Pointer tokens escape `~` and `/` and read back to the same keys."""

from gateway.json_pointer import pointer, tokens


def test_keys_with_tilde_and_slash_round_trip() -> None:
    keys = ["a/b", "m~n", "~1", "plain", 0]
    assert pointer(keys) == "/a~1b/m~0n/~01/plain/0"
    assert tokens(pointer(keys)) == ["a/b", "m~n", "~1", "plain", "0"]
    assert tokens("") == [] and pointer([]) == ""
