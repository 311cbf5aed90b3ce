"""The payload codec: msgpack both ways, a size guard, and errors that never escape as anything
but ours (a malformed row must dead-letter its task, not crash a worker)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor import PayloadTooLarge, SerializationError
from conveyor.serialization import (
    PayloadDecodeError,
    decode_payload,
    decode_result,
    encode_payload,
    encode_result,
)


def roundtrip(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    return decode_payload(encode_payload("tests.t", args, kwargs))


def test_plain_values_roundtrip() -> None:
    args = (1, -2, 2**64 - 1, -(2**63), 1.5, "text", "", None, True, False, [1, [2, "x"]])
    kwargs = {"d": {"a": 1, "b": [None]}, "empty": {}, "ü": "ünïcode"}
    assert roundtrip(args, kwargs) == (args, kwargs)


def test_bytes_roundtrip_as_bytes() -> None:
    (args, kwargs) = roundtrip((b"\x00\xff" * 10, b""), {"blob": bytearray(b"ab")})
    assert args == (b"\x00\xff" * 10, b"")
    assert kwargs == {"blob": b"ab"}
    assert type(args[0]) is bytes


def test_aware_datetimes_roundtrip() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    elsewhere = datetime(2024, 5, 6, 9, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    (args, kwargs) = roundtrip((moment,), {"at": elsewhere})
    assert args == (moment,)
    assert kwargs["at"] == elsewhere
    assert isinstance(args[0], datetime) and args[0].tzinfo is not None


def test_rich_values_arrive_as_plain_ones() -> None:
    """As with JSON: tuples and sets become lists, UUIDs and decimals strings."""
    uid = UUID("12345678-1234-5678-1234-567812345678")
    (args, _) = roundtrip(((1, 2), {3}, uid, Decimal("1.25")), {})
    assert args == ([1, 2], [3], str(uid), "1.25")


def test_args_come_back_as_a_tuple_and_kwargs_as_a_dict() -> None:
    args, kwargs = roundtrip((), {})
    assert (args, kwargs) == ((), {})
    assert type(args) is tuple and type(kwargs) is dict


@pytest.mark.parametrize(
    "value", [object(), lambda: None, 2**64, -(2**63) - 1, [object()], {"k": object()}],
    ids=["object", "function", "too-big-int", "too-small-int", "nested", "in-dict"],
)
def test_unserializable_arguments_are_refused(value: Any) -> None:
    with pytest.raises(SerializationError, match=r"tests\.t"):
        encode_payload("tests.t", (value,), {})
    with pytest.raises(SerializationError):
        encode_payload("tests.t", (), {"k": value})


def test_keyword_names_must_be_strings() -> None:
    """A payload a worker could not decode must be refused at enqueue, not dead-lettered."""
    with pytest.raises(SerializationError):
        encode_payload("tests.t", (), {1: "x"})  # type: ignore[dict-item]


def test_deeply_nested_arguments_are_refused_cleanly() -> None:
    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(SerializationError):
        encode_payload("tests.t", (nested,), {})
    with pytest.raises(SerializationError):
        encode_result(nested)


def test_oversized_payload_is_refused() -> None:
    encode_payload("tests.t", ("x" * 900,), {}, max_bytes=1000)
    with pytest.raises(PayloadTooLarge, match="over the limit of 1000"):
        encode_payload("tests.t", ("x" * 1000,), {}, max_bytes=1000)


def test_oversized_result_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        encode_result("x" * 100, max_bytes=50)


@pytest.mark.parametrize(
    "data",
    [
        b"", b"\xc1", b"\x92\x90", b"\x92\x90\x80\x00", b"not msgpack at all",
        msgspec.msgpack.encode([[1], {}, 3]),
        msgspec.msgpack.encode({"args": [], "kwargs": {}}),
        msgspec.msgpack.encode([1, {}]),
        msgspec.msgpack.encode([[], {1: 2}]),
        msgspec.msgpack.encode([[], []]),
        b"\x92" + b"\x91" * 100_000 + b"\xc0" + b"\x80",
        b"\x92\x91\xd4\x05\x00\x80",
    ],
    ids=["empty", "reserved-byte", "truncated", "trailing", "text", "triple", "map", "args-int",
         "int-key", "kwargs-list", "deep-nesting", "extension-type"],
)
def test_malformed_payloads_raise_payload_decode_error(data: bytes) -> None:
    with pytest.raises(PayloadDecodeError, match="malformed payload"):
        decode_payload(data)


def test_results_roundtrip() -> None:
    for value in (None, 3, "x", [1, {"a": b"b"}], {"n": 1.5}):
        assert decode_result(encode_result(value)) == value
    assert decode_result(None) is None


def test_malformed_results_read_as_none() -> None:
    assert decode_result(b"\xc1") is None
    assert decode_result(b"\x91" * 100_000 + b"\xc0") is None


# -- properties ------------------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(args=st.lists(_values, max_size=6), kwargs=st.dictionaries(st.text(), _values, max_size=6))
def test_any_msgpack_value_roundtrips(args: list[Any], kwargs: dict[str, Any]) -> None:
    assert roundtrip(tuple(args), kwargs) == (tuple(args), kwargs)


@settings(max_examples=300, deadline=None)
@given(value=_values)
def test_any_msgpack_result_roundtrips(value: Any) -> None:
    assert decode_result(encode_result(value)) == value


_PAYLOAD_STARTS = st.sampled_from([b"", b"\x92", b"\x92\x91", b"\x92\x90\x81\xa1k"])
"""Openings a real payload has (an [args, kwargs] pair), so garbage gets past the outer check."""


def _decodes_to_a_pair_or_our_error(data: bytes) -> None:
    try:
        args, kwargs = decode_payload(data)
    except PayloadDecodeError:
        return
    assert isinstance(args, tuple)
    assert isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)


@settings(max_examples=1000, deadline=None)
@given(prefix=_PAYLOAD_STARTS, data=st.binary(max_size=200))
def test_decode_of_arbitrary_bytes_returns_a_pair_or_our_error(prefix: bytes, data: bytes) -> None:
    _decodes_to_a_pair_or_our_error(prefix + data)


@settings(max_examples=300, deadline=None)
@given(prefix=_PAYLOAD_STARTS | st.binary(max_size=8), depth=st.integers(0, 5000),
       tail=st.binary(max_size=20))
def test_decode_of_nested_garbage_returns_a_pair_or_our_error(
    prefix: bytes, depth: int, tail: bytes
) -> None:
    _decodes_to_a_pair_or_our_error(prefix + b"\x91" * depth + tail)


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=200))
def test_decode_result_of_arbitrary_bytes_never_raises(data: bytes) -> None:
    decode_result(data)


def test_invalid_utf8_is_a_decode_error() -> None:
    with pytest.raises(PayloadDecodeError):
        decode_payload(b"\x92\x91\xa2\xff\xfe\x80")
    assert decode_result(b"\xa2\xff\xfe") is None


def test_nan_and_infinity_survive() -> None:
    (args, _) = roundtrip((math.inf, -math.inf, math.nan), {})
    assert args[0] == math.inf and args[1] == -math.inf and math.isnan(args[2])
