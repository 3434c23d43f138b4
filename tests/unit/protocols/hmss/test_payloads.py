"""HMSS payload codecs: protobuf compatibility, malformed and out-of-range input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.api.public.v1.frequency_vector_pb2 import FrequencyVector
from cmms.protocols.errors import InvalidProtocolInputError, PayloadDecodeError
from cmms.protocols.hmss.payloads import (
    AggregationPhaseInput,
    SecretSeed,
    ShufflePhaseInput,
    ShufflePhaseInputContent,
    decode_aggregation_phase_input,
    decode_frequency_vector,
    decode_shuffle_phase_input,
    encode_aggregation_phase_input,
    encode_frequency_vector,
    encode_shuffle_phase_input,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=40))
def test_frequency_vector_matches_protobuf(values: list[int]) -> None:
    array = np.array(values, dtype=np.uint32)
    encoded = encode_frequency_vector(array)
    assert encoded == FrequencyVector(data=values).SerializeToString()
    assert decode_frequency_vector(encoded).tolist() == values


def test_decoder_accepts_split_packed_runs_and_unpacked_elements() -> None:
    data = encode_frequency_vector(np.array([1, 300])) + encode_frequency_vector(np.array([5]))
    data += b"\x08\x07"  # one unpacked element, 7
    assert decode_frequency_vector(data).tolist() == [1, 300, 5, 7]
    parsed = FrequencyVector()
    parsed.ParseFromString(data)
    assert list(parsed.data) == [1, 300, 5, 7]


def test_uint8_fast_path_and_ring_dtype() -> None:
    values = np.arange(127, dtype=np.uint8)
    decoded = decode_frequency_vector(encode_frequency_vector(values), 127)
    assert decoded.dtype == np.uint8
    assert decoded.tolist() == values.tolist()


@pytest.mark.parametrize(
    "data",
    [
        b"\x0a\x05\x01\x02",  # packed run longer than the payload
        b"\x0a\x02\x01\x81",  # last varint of the run continues past it
        b"\x0a",  # length missing
        b"\x12\x00",  # field 2: not part of a FrequencyVector
        b"\x0a\x06\xff\xff\xff\xff\xff\x01",  # 6-byte varint
        b"\x0a\x05\xff\xff\xff\xff\x1f",  # 2**35 - 1 > uint32
    ],
)
def test_malformed_frequency_vectors(data: bytes) -> None:
    with pytest.raises(PayloadDecodeError):
        decode_frequency_vector(data)


def test_frequency_vector_value_at_modulus() -> None:
    with pytest.raises(InvalidProtocolInputError, match="127"):
        decode_frequency_vector(encode_frequency_vector(np.array([3, 127])), 127)


def test_aggregation_input_round_trip() -> None:
    share = np.array([0, 5, 126, 9], dtype=np.uint8)
    encoded = encode_aggregation_phase_input(share, 3)
    message = AggregationPhaseInput()
    message.ParseFromString(encoded)
    assert message.share_vector == b"\x00\x00\x00\x00\x05\x00\x00\x00~\x00\x00\x00\t\x00\x00\x00"
    decoded = decode_aggregation_phase_input(encoded, 127)
    assert decoded.register_count == 3
    assert decoded.share_vector.tolist() == share.tolist()


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda b: b[:-3], PayloadDecodeError, "does not parse"),
        (lambda b: b"\x0f" + b[1:], PayloadDecodeError, "does not parse"),
        (
            lambda b: AggregationPhaseInput(
                share_vector=b"\x01\x00\x00", register_count=1
            ).SerializeToString(),
            PayloadDecodeError,
            "multiple of 4",
        ),
        (
            lambda b: AggregationPhaseInput(
                share_vector=b"\x01\x00\x00\x00", register_count=2
            ).SerializeToString(),
            PayloadDecodeError,
            "fewer than its register count",
        ),
        (
            lambda b: AggregationPhaseInput(
                share_vector=b"\x7f\x00\x00\x00", register_count=1
            ).SerializeToString(),
            InvalidProtocolInputError,
            "127",
        ),
    ],
)
def test_bad_aggregation_inputs(mutate, error: type[Exception], match: str) -> None:  # type: ignore[no-untyped-def]
    encoded = encode_aggregation_phase_input(np.array([1, 2, 3], dtype=np.uint8), 3)
    with pytest.raises(error, match=match):
        decode_aggregation_phase_input(mutate(encoded), 127)


def test_shuffle_phase_input_round_trip_and_checks() -> None:
    content = ShufflePhaseInputContent(
        b"s" * 48, (SecretSeed("r1", b"ciphertext", 10, "dataProviders/a/certificates/b"),)
    )
    assert decode_shuffle_phase_input(encode_shuffle_phase_input(content)) == content
    with pytest.raises(PayloadDecodeError, match="48 bytes"):
        decode_shuffle_phase_input(
            ShufflePhaseInput(peer_random_seed=b"s" * 47).SerializeToString()
        )
    with pytest.raises(InvalidProtocolInputError, match="empty secret seed"):
        ShufflePhaseInputContent(b"s" * 48, (SecretSeed("r1", b"", 10, "c"),))
    with pytest.raises(PayloadDecodeError):
        decode_shuffle_phase_input(b"\x0a\x30" + b"s" * 10)
