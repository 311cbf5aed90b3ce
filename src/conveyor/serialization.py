"""The one codec for payloads and results: msgpack through msgspec, never pickle.

Pickle would let whoever can write to the broker run code on every worker. msgpack carries the
JSON types plus bytes, and msgspec adds datetimes, UUIDs, decimals, dataclasses and Structs on the
way out (they arrive as plain values, as with JSON).
"""

from __future__ import annotations

from typing import Any

import msgspec

from conveyor.errors import PayloadTooLarge, SerializationError

DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024

_encoder = msgspec.msgpack.Encoder()


def _refuse_ext(code: int, data: memoryview) -> Any:
    """Our encoder writes no extension types (timestamps, the one msgspec uses, are decoded
    before this hook): any other is a message we did not write, never a value for a task."""
    raise TypeError(f"msgpack extension type {code} is not a Conveyor payload value")


_payload_decoder = msgspec.msgpack.Decoder(tuple[tuple[Any, ...], dict[str, Any]],
                                           ext_hook=_refuse_ext)
_any_decoder = msgspec.msgpack.Decoder()


class PayloadDecodeError(Exception):
    """A stored payload cannot be decoded: the worker dead-letters the task with this message."""


def encode_payload(
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
) -> bytes:
    """Encode a task's arguments, refusing what cannot travel or is larger than ``max_bytes``."""
    if not all(isinstance(key, str) for key in kwargs):
        raise SerializationError(f"keyword argument names of task {name!r} must be strings")
    try:
        data = _encoder.encode((args, kwargs))
    except (TypeError, msgspec.EncodeError, OverflowError, RecursionError) as exc:
        raise SerializationError(
            f"arguments of task {name!r} cannot be serialized (msgpack): {exc}"
        ) from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"payload of task {name!r} is {len(data)} bytes, over the limit of {max_bytes}"
        )
    return data


def decode_payload(data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    try:
        return _payload_decoder.decode(data)
    except (
        msgspec.DecodeError, msgspec.ValidationError, TypeError, UnicodeDecodeError,
        RecursionError,
    ) as exc:
        raise PayloadDecodeError(f"malformed payload ({len(data)} bytes): {exc}") from exc


def encode_result(value: Any, max_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> bytes:
    """Encode a task's return value; raises :class:`SerializationError` when it cannot travel."""
    try:
        data = _encoder.encode(value)
    except (TypeError, msgspec.EncodeError, OverflowError, RecursionError) as exc:
        raise SerializationError(f"result cannot be serialized (msgpack): {exc}") from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"result is {len(data)} bytes, over the limit of {max_bytes}")
    return data


def decode_result(data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return _any_decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
