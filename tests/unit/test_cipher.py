"""Pseudonym tokens: round trips, determinism, randomization, key rotation, tampering."""

import base64

import pytest

from lakehouse_ops.pseudo.cipher import Cipher, KeyMaterialError, Keyring, TokenError


@pytest.fixture(scope="module")
def keyring():
    return Keyring.generate()


def test_deterministic_round_trip_and_stability(keyring):
    cipher = Cipher(keyring)
    token = cipher.pseudonymize("WVWZZZ1JZXW000001")
    assert token == cipher.pseudonymize("WVWZZZ1JZXW000001")
    assert token == Cipher(Keyring.from_json(keyring.to_json())).pseudonymize("WVWZZZ1JZXW000001")
    assert token != cipher.pseudonymize("WVWZZZ1JZXW000002")
    assert "WVWZZZ" not in token
    assert cipher.reidentify(token) == "WVWZZZ1JZXW000001"


def test_randomized_tokens_differ_but_reidentify(keyring):
    cipher = Cipher(keyring)
    a, b = cipher.pseudonymize("alice@example.com", False), cipher.pseudonymize("alice@example.com", False)
    assert a != b
    assert cipher.reidentify(a) == cipher.reidentify(b) == "alice@example.com"


def test_unicode_and_empty_values(keyring):
    cipher = Cipher(keyring)
    for value in ("", "café ☕", "x" * 1000):
        assert cipher.reidentify(cipher.pseudonymize(value)) == value


def test_rotation_keeps_old_tokens_readable(keyring):
    old = Cipher(keyring).pseudonymize("customer-42")
    rotated = keyring.rotated()
    cipher = Cipher(rotated)
    new = cipher.pseudonymize("customer-42")
    assert new != old and base64.b64decode(new)[0] == rotated.current == keyring.current + 1
    assert cipher.reidentify(old) == cipher.reidentify(new) == "customer-42"
    with pytest.raises(TokenError, match="key version %d" % rotated.current):
        Cipher(keyring).reidentify(new)


def test_tampered_and_foreign_tokens_are_refused_without_revealing_values(keyring):
    cipher = Cipher(keyring)
    raw = bytearray(base64.b64decode(cipher.pseudonymize("secret-value")))
    raw[-1] ^= 1
    with pytest.raises(TokenError) as info:
        cipher.reidentify(base64.b64encode(bytes(raw)).decode())
    assert "secret-value" not in str(info.value)
    with pytest.raises(TokenError, match="bad base64"):
        cipher.reidentify("not*base64")
    with pytest.raises(TokenError, match="another|key version|authenticate"):
        Cipher(Keyring.generate()).reidentify(cipher.pseudonymize("x"))


def test_bad_key_material_is_named():
    with pytest.raises(KeyMaterialError, match="current"):
        Keyring.from_json('{"keys": {}}', source="secret pseudo/keys")
    with pytest.raises(KeyMaterialError, match="64"):
        Keyring(current=1, keys={1: b"short"})
    with pytest.raises(KeyMaterialError, match="current key version 3"):
        Keyring(current=3, keys={1: bytes(64)})


def test_vectorised_cipher_gives_exactly_the_per_value_tokens(keyring):
    import random

    import pyarrow as pa

    from lakehouse_ops.pseudo.vectorized import VectorCipher

    rotated = keyring.rotated()
    rng = random.Random(5)
    values = ["", "a", "café ☕", "x" * 15, "y" * 16, "z" * 17, "w" * 32, "WVWZZZ1JZXW000001"] + [
        "".join(rng.choice("abcé€0") for _ in range(rng.randrange(50))) for _ in range(500)
    ]
    per_value = [Cipher(rotated).pseudonymize(v) for v in values]
    assert VectorCipher(rotated).pseudonymize_array(pa.array(values)).to_pylist() == per_value
    # Tokens of both key versions and of both modes re-identify; randomized ones are handed back.
    old = Cipher(keyring).pseudonymize("issued before the rotation")
    randomized = Cipher(rotated).pseudonymize("r", deterministic=False)
    plain, others = VectorCipher(rotated).reidentify_array(pa.array(per_value + [old, randomized]))
    assert plain.to_pylist()[:-1] == values + ["issued before the rotation"] and others == [len(values) + 1]
    tampered = bytearray(base64.b64decode(per_value[5]))
    tampered[-1] ^= 1
    with pytest.raises(TokenError, match="do not authenticate"):
        VectorCipher(rotated).reidentify_array(pa.array([base64.b64encode(bytes(tampered)).decode()]))
