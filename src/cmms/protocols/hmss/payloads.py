"""HMSS wire payloads, vectorised with numpy (spec §A.1, §A.2; docs/API.md).

- EDP upload body: a serialized `FrequencyVector{repeated uint32 data = 1}` (packed varints).
- `AggregationPhaseInput`: the worker's share vector as little-endian uint32 plus the register count.
- `ShufflePhaseInput`: the sender's own seed plus the encrypted EDP seeds it holds.

Decoders reject truncated or malformed bytes with `PayloadDecodeError`, and values `>= q`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from google.protobuf.message import DecodeError

from cmms.api.internal.duchy.protocol.v1 import hmss_pb2
from cmms.crypto.prng import SEED_LENGTH
from cmms.crypto.ring import ring_dtype
from cmms.protocols.errors import InvalidProtocolInputError, PayloadDecodeError

_DATA_FIELD_PACKED = 0x0A  # field 1, wire type 2 (length-delimited)
_DATA_FIELD_VARINT = 0x08  # field 1, wire type 0 (an unpacked element; parsers must accept it)
_MAX_VARINT32_BYTES = 5

AggregationPhaseInput = hmss_pb2.HonestMajorityShareShuffle.AggregationPhaseInput
ShufflePhaseInput = hmss_pb2.HonestMajorityShareShuffle.ShufflePhaseInput


def encode_varints(values: np.ndarray) -> bytes:
    """Unsigned LEB128 varints of `values` (each `< 2**32`), concatenated."""
    array = np.asarray(values)
    if array.size == 0:
        return b""
    if array.dtype == np.uint8 and int(array.max()) < 0x80:
        return array.tobytes()
    wide = array.astype(np.uint64)
    if int(wide.max()) >= 1 << 32 or (
        np.issubdtype(array.dtype, np.signedinteger) and array.min() < 0
    ):
        raise InvalidProtocolInputError("frequency vector values must lie in [0, 2**32)")
    lengths = np.ones(wide.size, dtype=np.int64)
    for k in range(1, _MAX_VARINT32_BYTES):
        lengths += wide >= np.uint64(1 << (7 * k))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    for k in range(_MAX_VARINT32_BYTES):
        present = lengths > k
        chunk = ((wide[present] >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8)
        chunk[lengths[present] > k + 1] |= 0x80
        out[starts[present] + k] = chunk
    return out.tobytes()


def decode_varints(data: bytes | memoryview) -> np.ndarray:
    """The values of concatenated varints; `PayloadDecodeError` if truncated or too wide.

    When every varint is one byte (all values < 128, the usual case for q <= 128) the result is a
    read-only uint8 view of `data`; otherwise a new uint32 array.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size == 0:
        return np.empty(0, dtype=np.uint32)
    if int(raw.max()) < 0x80:
        return raw
    if raw[-1] >= 0x80:
        raise PayloadDecodeError(
            "packed varints are truncated (the last byte has its continuation bit)"
        )
    ends = np.flatnonzero(raw < 0x80)
    starts = np.empty_like(ends)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if int(lengths.max()) > _MAX_VARINT32_BYTES:
        raise PayloadDecodeError("a varint is longer than 5 bytes, which no uint32 needs")
    values = np.zeros(ends.size, dtype=np.uint64)
    for k in range(_MAX_VARINT32_BYTES):
        present = lengths > k
        values[present] |= (
            raw[starts[present] + k].astype(np.uint64) & np.uint64(0x7F)
        ) << np.uint64(7 * k)
    if int(values.max()) >= 1 << 32:
        raise PayloadDecodeError("a varint exceeds the uint32 range")
    return values.astype(np.uint32)


def encode_frequency_vector(values: np.ndarray) -> bytes:
    """A serialized `FrequencyVector` with `values` as one packed field (empty: no field)."""
    body = encode_varints(values)
    if not body:
        return b""
    return bytes([_DATA_FIELD_PACKED]) + _varint(len(body)) + body


def decode_frequency_vector(data: bytes, ring_modulus: int | None = None) -> np.ndarray:
    """The values of a serialized `FrequencyVector`, in `ring_dtype(q)` when `q` is given.

    Accepts several packed runs and unpacked elements, as any protobuf parser must. Unknown
    fields are an error here: an EDP body has nothing else.
    """
    view = memoryview(data)
    pieces: list[np.ndarray] = []
    position = 0
    while position < len(view):
        tag = view[position]
        position += 1
        if tag == _DATA_FIELD_PACKED:
            length, position = _read_varint(view, position)
            if position + length > len(view):
                raise PayloadDecodeError(
                    f"FrequencyVector is truncated: a packed run of {length} bytes at offset "
                    f"{position} overruns the {len(view)}-byte payload"
                )
            pieces.append(decode_varints(view[position : position + length]))
            position += length
        elif tag == _DATA_FIELD_VARINT:
            value, position = _read_varint(view, position)
            if value >= 1 << 32:
                raise PayloadDecodeError("a FrequencyVector element exceeds the uint32 range")
            pieces.append(np.array([value], dtype=np.uint32))
        else:
            raise PayloadDecodeError(f"unexpected field tag 0x{tag:02x} at offset {position - 1}")
    if len(pieces) == 1:
        values = pieces[0]
    else:
        values = np.concatenate(pieces) if pieces else np.empty(0, dtype=np.uint32)
    if ring_modulus is None:
        return values
    return _to_ring(values, ring_modulus, "FrequencyVector")


def _read_varint(view: memoryview, position: int) -> tuple[int, int]:
    value = 0
    for k in range(10):
        if position + k >= len(view):
            raise PayloadDecodeError("a varint is truncated at the end of the payload")
        byte = view[position + k]
        value |= (byte & 0x7F) << (7 * k)
        if byte < 0x80:
            return value, position + k + 1
    raise PayloadDecodeError(f"a varint at offset {position} is longer than 10 bytes")


def _to_ring(values: np.ndarray, ring_modulus: int, what: str) -> np.ndarray:
    if values.size and int(values.max()) >= ring_modulus:
        raise InvalidProtocolInputError(
            f"{what} value {int(values.max())} is not below the ring modulus {ring_modulus}"
        )
    return values.astype(ring_dtype(ring_modulus), copy=False)


_SHARE_VECTOR_TAG = 0x0A  # AggregationPhaseInput.share_vector: field 1, length-delimited
_REGISTER_COUNT_TAG = 0x10  # AggregationPhaseInput.register_count: field 2, varint


def encode_aggregation_phase_input(share_vector: np.ndarray, register_count: int) -> bytearray:
    """A serialized `AggregationPhaseInput` (little-endian uint32 values, then the register count).

    Written straight into one buffer: no intermediate copies of the 4-bytes-per-register vector.
    """
    values = np.asarray(share_vector)
    length = 4 * values.size
    header = bytes([_SHARE_VECTOR_TAG]) + _varint(length) if length else b""
    trailer = bytes([_REGISTER_COUNT_TAG]) + _varint(register_count) if register_count else b""
    out = bytearray(len(header) + length + len(trailer))
    out[: len(header)] = header
    np.frombuffer(out, dtype="<u4", count=values.size, offset=len(header))[:] = values
    out[len(header) + length :] = trailer
    return out


@dataclass(frozen=True, eq=False)
class DecodedAggregationInput:
    """A worker's share vector (ring dtype) and the register count it reported."""

    share_vector: np.ndarray
    register_count: int


def decode_aggregation_phase_input(
    data: bytes | bytearray, ring_modulus: int
) -> DecodedAggregationInput:
    """Parse and check an `AggregationPhaseInput` (whole uint32s, values `< q`, N >= 1, L >= N).

    Fields are read in place from `data`; a repeated field keeps its last value, as protobuf does.
    """
    view = memoryview(data)
    share = view[0:0]
    register_count = 0
    position = 0
    while position < len(view):
        key, position = _read_varint(view, position)
        if key == _SHARE_VECTOR_TAG:
            length, position = _read_varint(view, position)
            if position + length > len(view):
                raise PayloadDecodeError(
                    f"AggregationPhaseInput does not parse: its share vector of {length} bytes "
                    f"overruns the {len(view)}-byte payload"
                )
            share, position = view[position : position + length], position + length
        elif key == _REGISTER_COUNT_TAG:
            register_count, position = _read_varint(view, position)
            if register_count >= 1 << 63:
                register_count -= 1 << 64  # int64 on the wire
        else:
            raise PayloadDecodeError(
                f"AggregationPhaseInput does not parse: unexpected field key {key} at offset "
                f"{position}"
            )
    if len(share) % 4:
        raise PayloadDecodeError(
            f"AggregationPhaseInput share vector has {len(share)} bytes, not a multiple of 4"
        )
    if register_count < 1:
        raise PayloadDecodeError(
            f"AggregationPhaseInput register count must be at least 1, got {register_count}"
        )
    values = np.frombuffer(share, dtype="<u4")
    if values.size < register_count:
        raise PayloadDecodeError(
            f"AggregationPhaseInput holds {values.size} registers, fewer than its register count "
            f"{register_count}"
        )
    return DecodedAggregationInput(
        _to_ring(values, ring_modulus, "AggregationPhaseInput"), register_count
    )


@dataclass(frozen=True)
class SecretSeed:
    """An EDP seed held by the sending worker, encrypted to the receiving worker."""

    requisition_id: str
    secret_seed_ciphertext: bytes
    register_count: int
    data_provider_certificate: str


@dataclass(frozen=True)
class ShufflePhaseInputContent:
    """The sender's own 48-byte seed and one `SecretSeed` per requisition fulfilled at the sender."""

    peer_random_seed: bytes
    secret_seeds: tuple[SecretSeed, ...]

    def __post_init__(self) -> None:
        if len(self.peer_random_seed) != SEED_LENGTH:
            raise InvalidProtocolInputError(
                f"peer random seed must be {SEED_LENGTH} bytes, got {len(self.peer_random_seed)}"
            )
        for seed in self.secret_seeds:
            if not seed.secret_seed_ciphertext:
                raise InvalidProtocolInputError(
                    f"requisition {seed.requisition_id!r} has an empty secret seed ciphertext"
                )
            if seed.register_count < 1:
                raise InvalidProtocolInputError(
                    f"requisition {seed.requisition_id!r} reports register count "
                    f"{seed.register_count}"
                )


def encode_shuffle_phase_input(content: ShufflePhaseInputContent) -> bytes:
    """A serialized `ShufflePhaseInput`."""
    message = ShufflePhaseInput(peer_random_seed=content.peer_random_seed)
    for seed in content.secret_seeds:
        message.secret_seeds.add(
            requisition_id=seed.requisition_id,
            secret_seed_ciphertext=seed.secret_seed_ciphertext,
            register_count=seed.register_count,
            data_provider_certificate=seed.data_provider_certificate,
        )
    return message.SerializeToString()


def decode_shuffle_phase_input(data: bytes) -> ShufflePhaseInputContent:
    """Parse and check a `ShufflePhaseInput`."""
    message = ShufflePhaseInput()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise PayloadDecodeError(f"ShufflePhaseInput does not parse: {error}") from error
    seeds = tuple(
        SecretSeed(
            s.requisition_id,
            s.secret_seed_ciphertext,
            s.register_count,
            s.data_provider_certificate,
        )
        for s in message.secret_seeds
    )
    try:
        return ShufflePhaseInputContent(message.peer_random_seed, seeds)
    except InvalidProtocolInputError as error:
        raise PayloadDecodeError(f"ShufflePhaseInput is invalid: {error}") from error


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
