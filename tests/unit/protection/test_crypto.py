"""The key ring: AES-GCM under keys by id, keyed hashes, and key text that never leaks."""

import base64
import os
import stat

import pytest

from gateway.errors import ConfigurationError
from gateway.protection.crypto import (
    DecryptionError,
    Keyring,
    key_file_path,
    key_id_of,
    new_key_line,
)
from gateway.settings import Settings

AAD = b"referrals.content"
SECRET = b'{"given_name":"Zawadi","family_name":"Fictionalson"}'


def ring(*ids: str, active: str | None = None) -> Keyring:
    return Keyring.parse("\n".join(new_key_line(i) for i in ids), active=active)


def test_a_value_encrypted_under_the_active_key_decrypts_to_the_same_bytes() -> None:
    keys = ring("k1", "k2")
    token = keys.encrypt(SECRET, aad=AAD)
    assert token.startswith("cb1:k2:") and key_id_of(token) == "k2"
    assert b"Zawadi" not in token.encode() and b"Zawadi" not in base64.b64decode(
        token.split(":")[2])
    assert keys.decrypt(token, aad=AAD) == SECRET


def test_the_same_value_encrypted_twice_gives_two_different_tokens() -> None:
    keys = ring("k1")
    assert keys.encrypt(SECRET, aad=AAD) != keys.encrypt(SECRET, aad=AAD)


def test_a_value_moved_to_another_column_does_not_open() -> None:
    keys = ring("k1")
    token = keys.encrypt(SECRET, aad=b"status_events.content")
    with pytest.raises(DecryptionError, match="'k1' fails authentication"):
        keys.decrypt(token, aad=AAD)


def test_an_altered_ciphertext_does_not_open() -> None:
    keys = ring("k1")
    prefix, key_id, encoded = keys.encrypt(SECRET, aad=AAD).split(":")
    raw = bytearray(base64.b64decode(encoded))
    raw[20] ^= 0x01
    altered = f"{prefix}:{key_id}:{base64.b64encode(bytes(raw)).decode()}"
    with pytest.raises(DecryptionError, match="altered"):
        keys.decrypt(altered, aad=AAD)


def test_a_value_under_a_key_not_in_the_ring_names_that_key() -> None:
    token = ring("old-key").encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="under key 'old-key', which is not in the key"):
        ring("new-key").decrypt(token, aad=AAD)


def test_every_key_of_the_ring_decrypts_and_only_the_active_one_encrypts() -> None:
    lines = [new_key_line("a"), new_key_line("b")]
    under_a = Keyring.parse(lines[0]).encrypt(SECRET, aad=AAD)
    both = Keyring.parse("\n".join(lines))
    assert both.active == "b"
    assert both.decrypt(under_a, aad=AAD) == SECRET
    assert Keyring.parse(",".join(lines), active="a").encrypt(SECRET, aad=AAD).startswith(
        "cb1:a:")


def test_plain_json_is_not_taken_for_an_encrypted_value() -> None:
    assert key_id_of('{"given_name": "Zawadi"}') is None
    assert key_id_of("cb2:k1:AAAA") is None
    with pytest.raises(DecryptionError, match="not in the encrypted format"):
        ring("k1").decrypt('{"a": 1}', aad=AAD)


def test_a_malformed_key_is_named_by_its_number_and_never_echoed() -> None:
    good = new_key_line("k1")
    short = base64.b64encode(os.urandom(16)).decode()
    not_base64 = "not*base64*at*all*" + "x" * 30
    for bad in (f"k2:{short}", f"k2:{not_base64}", f"bad id!:{good.split(':')[1]}"):
        with pytest.raises(ConfigurationError) as caught:
            Keyring.parse(f"# keys\n{good}\n{bad}\n", source="/etc/casebridge/keys")
        message = str(caught.value)
        assert message.startswith("/etc/casebridge/keys: key 2 must be")
        assert bad.split(":")[1] not in message and good.split(":")[1] not in message


def test_comment_lines_may_hold_commas() -> None:
    text = f"# production keys, rotated yearly\n{new_key_line('k1')}\n  # retired: k0, k00\n"
    assert list(Keyring.parse(text).keys) == ["k1"]


def test_a_key_id_given_twice_or_an_unknown_active_key_is_refused() -> None:
    line = new_key_line("k1")
    with pytest.raises(ConfigurationError, match="'k1' appears twice"):
        Keyring.parse(f"{line}\n{new_key_line('k1')}")
    with pytest.raises(ConfigurationError, match="active key 'k9' is not in the key ring"):
        Keyring.parse(line, active="k9")
    with pytest.raises(ConfigurationError, match="no key"):
        Keyring.parse("# nothing here\n\n")
    with pytest.raises(ConfigurationError, match="must be letters"):
        new_key_line("no spaces")


def test_identifier_digests_are_stable_per_key_and_listed_active_first() -> None:
    keys = ring("k1", "k2")
    old = Keyring.parse(f"k1:{base64.b64encode(keys.keys['k1']).decode()}")
    assert keys.digest("primero_case:CP-1") == keys.digests("primero_case:CP-1")[0]
    assert keys.digests("primero_case:CP-1")[1] == old.digest("primero_case:CP-1")
    assert keys.digest("primero_case:CP-1") != old.digest("primero_case:CP-1")
    assert keys.digest("primero_case:CP-1") != keys.digest("primero_case:CP-2")
    assert "CP-1" not in keys.digest("primero_case:CP-1")


def test_the_ring_comes_from_the_key_file_and_the_environment(tmp_path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(new_key_line("file-key") + "\n")
    from_env = new_key_line("env-key")
    both = Keyring.from_settings(Settings(key_file=key_file, keys=from_env))
    assert set(both.keys) == {"file-key", "env-key"} and both.active == "env-key"
    pinned = Keyring.from_settings(Settings(key_file=key_file, keys=from_env,
                                            active_key="file-key"))
    assert pinned.active == "file-key"


def test_no_key_or_an_unreadable_key_file_is_a_configuration_error(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match="personal data is never stored unencrypted"):
        Keyring.from_settings(Settings(key_file=None, keys=None))
    with pytest.raises(ConfigurationError, match="CASEBRIDGE_KEY_FILE .*missing"):
        Keyring.from_settings(Settings(key_file=tmp_path / "missing", keys=None))


def test_a_new_key_file_is_readable_by_its_owner_only(tmp_path) -> None:
    path = key_file_path(tmp_path / "secrets" / "keys")
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
