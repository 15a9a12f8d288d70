"""Property tests: the cipher and the credential schemas hold for any input, not just our examples."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hermes.adapters.crypto.aes_gcm import AesGcmCipher, parse_keyring
from hermes.domain.credentials import parse_credentials
from hermes.domain.errors import Invalid
from hermes.domain.platform import Platform
from tests.support import new_keyring

CIPHER = AesGcmCipher(parse_keyring(new_keyring("p1")))


@given(plaintext=st.binary(max_size=4096), context=st.binary(max_size=128))
def test_any_bytes_round_trip(plaintext: bytes, context: bytes) -> None:
    assert CIPHER.decrypt(CIPHER.encrypt(plaintext, context), context) == plaintext


@given(plaintext=st.binary(min_size=1, max_size=512), context=st.binary(max_size=64), data=st.data())
def test_any_flipped_bit_fails(plaintext: bytes, context: bytes, data: st.DataObject) -> None:
    sealed = bytearray(CIPHER.encrypt(plaintext, context))
    position = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[position // 8] ^= 1 << (position % 8)
    try:
        CIPHER.decrypt(bytes(sealed), context)
    except ValueError:
        return
    raise AssertionError(f"a flipped bit at {position} still decrypted")


@given(plaintext=st.binary(max_size=512), context=st.binary(max_size=64), data=st.data())
def test_any_truncation_fails(plaintext: bytes, context: bytes, data: st.DataObject) -> None:
    sealed = CIPHER.encrypt(plaintext, context)
    cut = data.draw(st.integers(0, len(sealed) - 1))
    try:
        CIPHER.decrypt(sealed[:cut], context)
    except ValueError:
        return
    raise AssertionError(f"a truncation to {cut} bytes still decrypted")


@given(plaintext=st.binary(max_size=512), context=st.binary(max_size=64), other=st.binary(max_size=64))
def test_swapped_associated_data_fails(plaintext: bytes, context: bytes, other: bytes) -> None:
    if other == context:
        return
    sealed = CIPHER.encrypt(plaintext, context)
    try:
        CIPHER.decrypt(sealed, other)
    except ValueError:
        return
    raise AssertionError("another context decrypted")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(platform=st.sampled_from(list(Platform)), data=st.data())
def test_any_body_is_accepted_or_refused_naming_fields(platform: Platform, data: st.DataObject) -> None:
    names = [f.name for f in platform.credentials.fields]
    keys = st.sampled_from([*names, "unexpected", "", "__proto__"]) | st.text(string.ascii_letters, max_size=8)
    body: Any = data.draw(st.dictionaries(keys, json_values, max_size=len(names) + 2) | json_values)
    refusal: Invalid | None = None
    try:
        parsed = parse_credentials(platform, body)
    except Invalid as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.fields, "a refusal must name at least one field"
        return
    # Accepted: every required field is there, nothing unknown slipped through.
    assert {f.name for f in platform.credentials.fields if f.required} <= set(parsed)
    assert set(parsed) <= set(names)
