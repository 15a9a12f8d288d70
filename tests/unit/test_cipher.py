"""AES-256-GCM envelopes: binding, key rotation, and keyring errors that say how to fix them."""

from __future__ import annotations

import pytest

from hermes.adapters.crypto.aes_gcm import AesGcmCipher, KeyringError, parse_keyring
from hermes.adapters.memory.inbound import InMemoryCallbackStore
from hermes.adapters.memory.stores import InMemoryCredentialStore
from hermes.application.credential_vault import CredentialVault
from hermes.application.use_cases.rotate_encryption_keys import RotateEncryptionKeys
from hermes.domain.platform import Platform
from tests.support import new_keyring


def cipher(keys: str) -> AesGcmCipher:
    return AesGcmCipher(parse_keyring(keys))


def test_round_trip_with_fresh_nonces() -> None:
    c = cipher(new_keyring())
    first, second = c.encrypt(b"secret", b"ctx"), c.encrypt(b"secret", b"ctx")
    assert first != second
    assert c.decrypt(first, b"ctx") == c.decrypt(second, b"ctx") == b"secret"
    assert b"secret" not in first


def test_other_context_tampering_and_truncation_fail() -> None:
    c = cipher(new_keyring())
    sealed = c.encrypt(b"secret", b"hermes:creds:cust_a:whatsapp")
    with pytest.raises(ValueError, match="does not authenticate"):
        c.decrypt(sealed, b"hermes:creds:cust_b:whatsapp")
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(ValueError, match="does not authenticate"):
        c.decrypt(bytes(flipped), b"hermes:creds:cust_a:whatsapp")
    with pytest.raises(ValueError, match=r"truncated|authenticate"):
        c.decrypt(sealed[:10], b"hermes:creds:cust_a:whatsapp")


def test_envelope_names_its_key_and_old_keys_still_decrypt() -> None:
    old_ring = new_keyring("old")
    new_ring = new_keyring("new") + "," + old_ring
    sealed = cipher(old_ring).encrypt(b"x", b"c")
    rotated = cipher(new_ring)
    assert rotated.decrypt(sealed, b"c") == b"x"
    assert not rotated.is_current(sealed)
    assert rotated.is_current(rotated.encrypt(b"x", b"c"))
    with pytest.raises(ValueError, match="unknown key id"):
        cipher(new_keyring("other")).decrypt(sealed, b"c")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "not set"),
        ("", "not set"),
        ("nokid", "key id"),
        ("k1:not base64!", "base64"),
        ("k1:" + "QUFB", "32"),
        ("k1:" + "A" * 43 + "=,k1:" + "B" * 43 + "=", "twice"),
    ],
)
def test_bad_keyrings_are_refused_with_a_fix(value: str | None, message: str) -> None:
    with pytest.raises(KeyringError, match=message) as caught:
        parse_keyring(value)
    assert "HERMES_ENCRYPTION_KEYS" in str(caught.value)


async def test_rotation_reencrypts_everything_once_and_can_be_rerun() -> None:
    store = InMemoryCredentialStore()
    old_ring = new_keyring("old")
    old = CredentialVault(cipher(old_ring), store)
    for i in range(5):
        await old.save(f"cust_{i}", Platform.TELEGRAM, {"botToken": f"t{i}"})
    new_cipher = cipher(new_keyring("new") + "," + old_ring)

    first = await RotateEncryptionKeys(new_cipher, store, InMemoryCallbackStore())()
    again = await RotateEncryptionKeys(new_cipher, store, InMemoryCallbackStore())()

    assert (first.rotated, first.already_current) == (5, 0)
    assert (again.rotated, again.already_current) == (0, 5)
    vault = CredentialVault(new_cipher, store)
    assert [await vault.load(f"cust_{i}", Platform.TELEGRAM) for i in range(5)] == [
        {"botToken": f"t{i}"} for i in range(5)
    ]
    assert all(new_cipher.is_current(e) for e in store.envelopes.values())


async def test_rotation_counts_unreadable_envelopes_and_leaves_them() -> None:
    store = InMemoryCredentialStore()
    await CredentialVault(cipher(new_keyring("lost")), store).save("cust_x", Platform.EMAIL, {"password": "p"})
    report = await RotateEncryptionKeys(cipher(new_keyring("new")), store, InMemoryCallbackStore())()
    assert report.unreadable == 1
    assert len(store.envelopes) == 1


async def test_rotation_reseals_callback_signing_secrets_without_touching_delivery_state() -> None:
    from datetime import UTC, datetime

    from hermes.application.use_cases.register_callback import callback_context
    from hermes.domain.callbacks import Callback

    old_ring = new_keyring("old")
    old_cipher, new_cipher = cipher(old_ring), cipher(new_keyring("new") + "," + old_ring)
    callbacks = InMemoryCallbackStore()
    sealed = old_cipher.encrypt(b"signing-secret", callback_context("cust_cb"))
    await callbacks.put(
        Callback("cust_cb", "https://example.com/hook", sealed, "reg-1", datetime.now(UTC), cursor="5-0", failures=1)
    )

    report = await RotateEncryptionKeys(new_cipher, InMemoryCredentialStore(), callbacks)()
    again = await RotateEncryptionKeys(new_cipher, InMemoryCredentialStore(), callbacks)()

    assert (report.callback_secrets_rotated, again.callback_secrets_rotated) == (1, 0)
    stored = callbacks.callbacks["cust_cb"]
    assert new_cipher.is_current(stored.secret_envelope)
    assert new_cipher.decrypt(stored.secret_envelope, callback_context("cust_cb")) == b"signing-secret"
    assert (stored.cursor, stored.failures, stored.registration) == ("5-0", 1, "reg-1")
