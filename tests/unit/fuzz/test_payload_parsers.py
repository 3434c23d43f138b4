"""Bounded fuzzing of every parser that reads bytes another party controls.

Each parser must either accept its input or raise its module's own error; any other exception
(IndexError, KeyError, OverflowError, a numpy error, ...) fails the test, and so does a parser
whose output disagrees with the protobuf runtime on bytes both accept. Inputs are random bytes and
mutations (byte changes, truncation, extension, a point overwritten with random or zero bytes) of
valid payloads built by the real encoders, so most examples reach deep into the decoders.

Every test has a fixed `max_examples` and no deadline: the whole module runs in seconds in CI.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import requisition_fulfillment_pb2
from cmms.api.public.v1.frequency_vector_pb2 import FrequencyVector
from cmms.api.system.v1 import computation_control_pb2, computations_pb2
from cmms.common.grpc import StatusError
from cmms.crypto import elgamal
from cmms.crypto.elgamal import PublicKey
from cmms.crypto.envelope import DataEncryptionKey
from cmms.crypto.errors import CryptoError
from cmms.crypto.keystore import aead_from_cleartext_keyset, generate_kek_keyset
from cmms.crypto.randomness import SeededRandomSource
from cmms.crypto.sharing import split
from cmms.duchy.control.headers import HeaderError, parse_header, parse_stage_name
from cmms.duchy.fulfillment.verification import parse_requisition_name, protocol_details
from cmms.duchy.internal_api.continuation_tokens import (
    MalformedContinuationTokenError,
    decode_continuation_token,
)
from cmms.kingdom.ids import MAX_EXTERNAL_ID
from cmms.kingdom.system.stream_token import decode_token
from cmms.protocols.errors import InvalidProtocolInputError, PayloadDecodeError
from cmms.protocols.hmss.payloads import (
    AggregationPhaseInput,
    SecretSeed,
    ShufflePhaseInputContent,
    decode_aggregation_phase_input,
    decode_frequency_vector,
    decode_shuffle_phase_input,
    decode_varints,
    encode_aggregation_phase_input,
    encode_frequency_vector,
    encode_shuffle_phase_input,
)
from cmms.protocols.liquid_legions.errors import LiquidLegionsError
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.llv2.execution_phase_one import (
    ExecutionPhaseOneRequest,
    execution_phase_one_aggregator,
    execution_phase_one_non_aggregator,
)
from cmms.protocols.llv2.execution_phase_three import (
    ExecutionPhaseThreeRequest,
    execution_phase_three_aggregator,
    execution_phase_three_non_aggregator,
)
from cmms.protocols.llv2.execution_phase_two import (
    ExecutionPhaseTwoRequest,
    execution_phase_two_aggregator,
    execution_phase_two_non_aggregator,
)
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.protocols.llv2.simulation import duchy_key_pairs, ring
from cmms.protocols.measurement import MeasurementType, NoiseMechanism
from cmms.protocols.reach_only_llv2.execution_phase import (
    ExecutionPhaseRequest,
    execution_phase_aggregator,
    execution_phase_non_aggregator,
)
from cmms.protocols.reach_only_llv2.setup_phase import SetupPhaseRequest as RoSetupPhaseRequest
from cmms.protocols.reach_only_llv2.setup_phase import setup_phase as ro_setup_phase
from cmms.protocols.stages import ProtocolType
from cmms.protocols.trustee.computing import ComputingRequest, TrusTeeParams, run_computing_stage
from cmms.sketch import LiquidLegionsParams, LiquidLegionsSketch, ReachOnlyLiquidLegionsSketch
from cmms.sketch.encryption import encrypt_reach_only_sketch, encrypt_sketch

Q = 127
POINT = 33
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
CHEAP_FUZZ = settings(max_examples=300, deadline=None, derandomize=True)


# ------------------------------------------------------------------------------ mutations


@st.composite
def _mutation(draw: st.DrawFn, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["byte", "truncate", "extend", "random point", "zero point"]))
        if kind == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "extend":
            data += draw(st.binary(min_size=1, max_size=70))
        elif not data:
            continue
        elif kind == "byte":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        else:
            start = draw(st.integers(0, max(0, len(data) - POINT)))
            end = min(len(data), start + POINT)
            filler = draw(st.binary(min_size=end - start, max_size=end - start))
            data[start:end] = filler if kind == "random point" else bytes(end - start)
    return bytes(data)


def mutations_of(payload: bytes) -> st.SearchStrategy[bytes]:
    """Random bytes, or the valid `payload` with a few mutations."""
    return st.one_of(st.binary(max_size=2 * len(payload) + 8), _mutation(payload))


def accepted_or_refused(run: Callable[[], object], *errors: type[Exception]) -> object | None:
    """The parser's output, or None when it refused with one of `errors`; anything else raises."""
    try:
        accepted = run()
    except errors as error:
        event(f"refused: {type(error).__name__}")
        return None
    event("accepted")
    return accepted


# ------------------------------------------------------------------------------ Liquid Legions

LL_ERRORS = (LiquidLegionsError, CryptoError)
MAX_FREQUENCY = 3
LL_PARAMETERS = ReachAndFrequencyParameters(
    decay_rate=12, max_size=1000, duchies=3, requisitions=1, max_frequency=MAX_FREQUENCY
)
RO_PARAMETERS = LiquidLegionsParameters(decay_rate=12, max_size=1000, duchies=3, requisitions=1)


@dataclass(frozen=True)
class LiquidLegionsPayloads:
    """Valid inputs of every Liquid Legions stage, from one small honest run."""

    keys: list[DuchyKeys]
    requisition: bytes
    phase_one: bytes
    phase_two: bytes
    phase_three: bytes
    reach_only_requisition: bytes
    reach_only_execution: bytes


@functools.cache
def ll_payloads() -> LiquidLegionsPayloads:
    random = SeededRandomSource("fuzz/liquid-legions")
    pairs = duchy_key_pairs(3, random)
    keys = ring(pairs)
    full = PublicKey(elgamal.combine_public_keys([p.public for p in pairs]))
    vids = np.array([1, 2, 2, 3, 3, 3, 40, 41, 41, 500])
    requisition = encrypt_sketch(
        LiquidLegionsSketch.from_vids(vids, LiquidLegionsParams(12, 1000, 5)),
        full,
        MAX_FREQUENCY,
        random,
    )
    registers = setup_phase(SetupPhaseRequest(LL_PARAMETERS, keys[2], (requisition,)), random)
    payload = registers.registers
    for k in keys[:2]:
        payload = execution_phase_one_non_aggregator(
            ExecutionPhaseOneRequest(LL_PARAMETERS, k, payload), random
        ).payload
    phase_one = payload
    tuples = execution_phase_one_aggregator(
        ExecutionPhaseOneRequest(LL_PARAMETERS, keys[2], phase_one), random
    ).payload
    two = execution_phase_two_aggregator(
        ExecutionPhaseTwoRequest(
            LL_PARAMETERS,
            keys[2],
            execution_phase_two_non_aggregator(
                ExecutionPhaseTwoRequest(
                    LL_PARAMETERS,
                    keys[1],
                    execution_phase_two_non_aggregator(
                        ExecutionPhaseTwoRequest(LL_PARAMETERS, keys[0], tuples), random
                    ).tuples,
                ),
                random,
            ).tuples,
        ),
        random,
    )
    ro_requisition = encrypt_reach_only_sketch(
        ReachOnlyLiquidLegionsSketch.from_vids(vids, 12, 1000), full, random
    )
    ro_setup = ro_setup_phase(
        RoSetupPhaseRequest(RO_PARAMETERS, keys[0], (ro_requisition,)), random
    ).payload
    return LiquidLegionsPayloads(
        keys, requisition, phase_one, tuples, two.ska_matrix, ro_requisition, ro_setup
    )


def test_the_valid_payloads_are_accepted() -> None:
    """The mutations start from inputs each stage accepts as they are."""
    p = ll_payloads()
    keys = p.keys
    random = SeededRandomSource("fuzz/valid")
    execution_phase_one_aggregator(
        ExecutionPhaseOneRequest(LL_PARAMETERS, keys[2], p.phase_one), random
    )
    execution_phase_two_non_aggregator(
        ExecutionPhaseTwoRequest(LL_PARAMETERS, keys[0], p.phase_two), random
    )
    execution_phase_three_non_aggregator(
        ExecutionPhaseThreeRequest(LL_PARAMETERS, keys[0], p.phase_three)
    )
    execution_phase_non_aggregator(
        ExecutionPhaseRequest(RO_PARAMETERS, keys[1], p.reach_only_execution), random
    )
    assert len(p.phase_two) % 264 == 0 and len(p.phase_three) % 66 == 0


LL_STAGES: dict[str, tuple[Callable[[LiquidLegionsPayloads], bytes], Callable[..., object]]] = {
    "setup (requisition)": (
        lambda p: p.requisition,
        lambda p, data, r: setup_phase(SetupPhaseRequest(LL_PARAMETERS, p.keys[0], (data,)), r),
    ),
    "phase one, worker": (
        lambda p: p.phase_one,
        lambda p, data, r: execution_phase_one_non_aggregator(
            ExecutionPhaseOneRequest(LL_PARAMETERS, p.keys[0], data), r
        ),
    ),
    "phase one, aggregator": (
        lambda p: p.phase_one,
        lambda p, data, r: execution_phase_one_aggregator(
            ExecutionPhaseOneRequest(LL_PARAMETERS, p.keys[2], data), r
        ),
    ),
    "phase two, worker": (
        lambda p: p.phase_two,
        lambda p, data, r: execution_phase_two_non_aggregator(
            ExecutionPhaseTwoRequest(LL_PARAMETERS, p.keys[0], data), r
        ),
    ),
    "phase two, aggregator": (
        lambda p: p.phase_two,
        lambda p, data, r: execution_phase_two_aggregator(
            ExecutionPhaseTwoRequest(LL_PARAMETERS, p.keys[2], data), r
        ),
    ),
    "phase three, worker": (
        lambda p: p.phase_three,
        lambda p, data, r: execution_phase_three_non_aggregator(
            ExecutionPhaseThreeRequest(LL_PARAMETERS, p.keys[0], data)
        ),
    ),
    "phase three, aggregator": (
        lambda p: p.phase_three,
        lambda p, data, r: execution_phase_three_aggregator(
            ExecutionPhaseThreeRequest(LL_PARAMETERS, p.keys[2], data)
        ),
    ),
    "reach-only setup at the aggregator (received)": (
        lambda p: p.reach_only_execution,
        lambda p, data, r: ro_setup_phase(
            RoSetupPhaseRequest(RO_PARAMETERS, p.keys[2], (p.reach_only_requisition,), (data,)), r
        ),
    ),
    "reach-only execution, worker": (
        lambda p: p.reach_only_execution,
        lambda p, data, r: execution_phase_non_aggregator(
            ExecutionPhaseRequest(RO_PARAMETERS, p.keys[1], data), r
        ),
    ),
    "reach-only execution, aggregator": (
        lambda p: p.reach_only_execution,
        lambda p, data, r: execution_phase_aggregator(
            ExecutionPhaseRequest(RO_PARAMETERS, p.keys[2], data)
        ),
    ),
}


@pytest.mark.parametrize("stage", list(LL_STAGES))
@FUZZ
@given(data=st.data())
def test_liquid_legions_stages_accept_or_refuse_with_their_own_errors(
    stage: str, data: st.DataObject
) -> None:
    payloads = ll_payloads()
    valid_of, run = LL_STAGES[stage]
    fuzzed = data.draw(mutations_of(valid_of(payloads)), label="payload")
    accepted_or_refused(lambda: run(payloads, fuzzed, SeededRandomSource("fuzz/stage")), *LL_ERRORS)


# ------------------------------------------------------------------------------ HMSS

VALID_VECTOR = encode_frequency_vector(np.array([0, 1, 2, 3, 126, 5, 0, 0, 9, 100] * 3))
VALID_WIDE_VECTOR = encode_frequency_vector(np.array([0, 300, 70_000, 2**32 - 1, 1]))


@CHEAP_FUZZ
@given(
    st.one_of(
        mutations_of(VALID_VECTOR),
        mutations_of(VALID_WIDE_VECTOR),
        st.lists(st.integers(0, 2**32 - 1) | st.integers(0, Q), max_size=12).map(
            lambda values: FrequencyVector(data=values).SerializeToString()
        ),
    )
)
def test_frequency_vector_decoder_agrees_with_protobuf(data: bytes) -> None:
    values = accepted_or_refused(lambda: decode_frequency_vector(data), PayloadDecodeError)
    if values is None:
        return
    assert isinstance(values, np.ndarray)
    # What this decoder accepts, the protobuf runtime reads as the same values.
    assert list(FrequencyVector.FromString(data).data) == values.tolist()
    in_ring = accepted_or_refused(
        lambda: decode_frequency_vector(data, Q), InvalidProtocolInputError
    )
    if in_ring is None:
        assert values.size and int(values.max()) >= Q
    else:
        assert isinstance(in_ring, np.ndarray)
        assert in_ring.tolist() == values.tolist()


@CHEAP_FUZZ
@given(st.binary(max_size=40))
def test_varint_decoder_accepts_or_refuses(data: bytes) -> None:
    values = accepted_or_refused(lambda: decode_varints(data), PayloadDecodeError)
    if values is not None and data:
        assert isinstance(values, np.ndarray)
        # The same bytes as one packed field: protobuf reads the same values.
        packed = b"\x0a" + encode_varint_length(len(data)) + data
        assert list(FrequencyVector.FromString(packed).data) == values.tolist()


def encode_varint_length(length: int) -> bytes:
    out = bytearray()
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    return bytes([*out, length])


VALID_SHARES = bytes(
    encode_aggregation_phase_input(split(np.array([0, 1, 2, 3, 0, 1, 1, 4]), Q, b"s" * 48), 8)
)


@st.composite
def _share_messages(draw: st.DrawFn) -> bytes:
    """Well-formed messages whose contents may break the rules (lengths, counts, values)."""
    values = draw(st.lists(st.integers(0, Q - 1) | st.integers(0, 2**32 - 1), max_size=12))
    share = b"".join(v.to_bytes(4, "little") for v in values)
    if draw(st.booleans()):
        share = share[: draw(st.integers(max(0, len(share) - 3), len(share)))]
    count = draw(st.integers(1, max(1, len(values))) | st.integers(-(2**63), 2**63 - 1))
    return AggregationPhaseInput(share_vector=share, register_count=count).SerializeToString()


@CHEAP_FUZZ
@given(st.one_of(mutations_of(VALID_SHARES), _share_messages()))
def test_share_vector_decoder_agrees_with_protobuf(data: bytes) -> None:
    decoded = accepted_or_refused(
        lambda: decode_aggregation_phase_input(data, Q), InvalidProtocolInputError
    )
    if decoded is None:
        return
    parsed = AggregationPhaseInput.FromString(data)
    share = np.frombuffer(parsed.share_vector, dtype="<u4")
    assert decoded.share_vector.tolist() == share.tolist()  # type: ignore[attr-defined]
    assert decoded.register_count == parsed.register_count  # type: ignore[attr-defined]
    assert 1 <= parsed.register_count <= share.size
    assert int(share.max()) < Q


VALID_SHUFFLE_INPUT = encode_shuffle_phase_input(
    ShufflePhaseInputContent(
        b"r" * 48, (SecretSeed("req-1", b"sealed seed", 8, "dataProviders/e/certificates/c"),)
    )
)


@CHEAP_FUZZ
@given(mutations_of(VALID_SHUFFLE_INPUT))
def test_shuffle_phase_input_decoder_accepts_or_refuses(data: bytes) -> None:
    content = accepted_or_refused(lambda: decode_shuffle_phase_input(data), PayloadDecodeError)
    if content is not None:
        assert isinstance(content, ShufflePhaseInputContent)
        assert len(content.peer_random_seed) == 48
        assert all(s.register_count >= 1 and s.secret_seed_ciphertext for s in content.secret_seeds)


# ------------------------------------------------------------------------------ TrusTee

TRUSTEE = TrusTeeParams(MeasurementType.REACH_AND_FREQUENCY, 4, 1.0, NoiseMechanism.NONE)


@CHEAP_FUZZ
@given(
    st.one_of(
        st.lists(st.binary(max_size=24), min_size=0, max_size=3),
        st.integers(1, 24).flatmap(
            lambda size: st.lists(
                st.lists(st.integers(0, 127), min_size=size, max_size=size).map(bytes),
                min_size=1,
                max_size=3,
            )
        ),
    )
)
def test_trustee_frequency_vectors_are_aggregated_or_refused(vectors: list[bytes]) -> None:
    outcome = accepted_or_refused(
        lambda: run_computing_stage(
            ComputingRequest(TRUSTEE, tuple(vectors)), SeededRandomSource("fuzz")
        ),
        InvalidProtocolInputError,
    )
    if outcome is None:
        return
    # Accepted vectors are equally long bytes in 0..127; the reach counts nonzero registers.
    size = len(vectors[0])
    assert all(len(v) == size and max(v) <= 127 for v in vectors)
    expected = sum(1 for i in range(size) if any(v[i] for v in vectors))
    assert outcome.reach == expected  # type: ignore[attr-defined]


@functools.cache
def trustee_envelope() -> tuple[DataEncryptionKey, bytes, bytes, bytes]:
    """A DEK, a ciphertext of a frequency vector under it, the plaintext, the DEK sealed by a KEK."""
    kek = aead_from_cleartext_keyset(generate_kek_keyset())
    dek = DataEncryptionKey.generate()
    plaintext = bytes(range(100)) * 3
    ciphertext = b"".join(dek.encrypt_chunks([plaintext]))
    return dek, ciphertext, plaintext, dek.wrap(kek)


@FUZZ
@given(data=st.data())
def test_trustee_envelope_opens_unchanged_or_not_at_all(data: st.DataObject) -> None:
    dek, ciphertext, plaintext, _ = trustee_envelope()
    fuzzed = data.draw(_mutation(ciphertext), label="ciphertext")
    opened = accepted_or_refused(lambda: b"".join(dek.decrypt_chunks([fuzzed])), CryptoError)
    # Authenticated encryption: a changed ciphertext never yields a different frequency vector.
    assert opened is None or (opened == plaintext and fuzzed == ciphertext)


@FUZZ
@given(data=st.data())
def test_trustee_sealed_dek_unwraps_or_is_refused(data: st.DataObject) -> None:
    _, _, _, sealed = trustee_envelope()
    fuzzed = data.draw(_mutation(sealed), label="sealed DEK")
    kek = aead_from_cleartext_keyset(generate_kek_keyset())
    assert accepted_or_refused(lambda: DataEncryptionKey.unwrap(fuzzed, kek), CryptoError) is None


FulfillmentHeader = requisition_fulfillment_pb2.FulfillRequisitionRequest.Header
VALID_TRUSTEE_HEADER = FulfillmentHeader(
    name="dataProviders/edp1/requisitions/r1",
    nonce=5,
    trus_tee=FulfillmentHeader.TrusTee(
        data_format=FulfillmentHeader.TrusTee.FREQUENCY_VECTOR, population_spec_fingerprint=3
    ),
).SerializeToString()


@CHEAP_FUZZ
@given(mutations_of(VALID_TRUSTEE_HEADER), st.sampled_from(list(ProtocolType)[1:]))
def test_fulfilment_headers_are_recorded_or_invalid(data: bytes, protocol: ProtocolType) -> None:
    try:
        header = FulfillmentHeader.FromString(data)
    except DecodeError:
        return  # gRPC refuses the message before any handler runs
    details = computation_details_pb2.RequisitionDetails(external_fulfilling_duchy_id="aggregator")
    try:
        parse_requisition_name(header.name)
        protocol_details(int(protocol), header, details, "aggregator")
    except StatusError as error:
        assert error.code in (
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.FAILED_PRECONDITION,
        )


# ------------------------------------------------------------------------------ continuation tokens

_BASE64URL_TEXT = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=40
)


@st.composite
def _encoded_tokens(draw: st.DrawFn) -> str:
    message = computations_pb2.StreamActiveComputationsContinuationToken(
        last_seen_external_computation_id=draw(st.integers(0, 2**64 - 1))
    )
    message.last_seen_update_time.seconds = draw(
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(0, 2 * 10**9))
    )
    message.last_seen_update_time.nanos = draw(
        st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(0, 999_999_999))
    )
    encoded = base64.urlsafe_b64encode(message.SerializeToString()).decode()
    return encoded if draw(st.booleans()) else encoded.rstrip("=")


TOKENS = st.one_of(_encoded_tokens(), _BASE64URL_TEXT, st.text(max_size=20))


@CHEAP_FUZZ
@given(TOKENS)
def test_duchy_continuation_tokens_decode_to_a_usable_time_or_are_malformed(token: str) -> None:
    message = accepted_or_refused(
        lambda: decode_continuation_token(token), MalformedContinuationTokenError
    )
    if message is not None:
        # The servicer reads the time next; that must not fail for an accepted token.
        message.last_seen_update_time.ToDatetime()  # type: ignore[attr-defined]


@CHEAP_FUZZ
@given(TOKENS)
def test_kingdom_stream_tokens_decode_to_a_position_the_database_can_hold(token: str) -> None:
    position = accepted_or_refused(lambda: decode_token(token), ValueError)
    if position is None:
        return
    assert 0 <= position.computation_id <= MAX_EXTERNAL_ID  # type: ignore[attr-defined]
    assert -(2**63) <= position.update_time_us < 2**63  # type: ignore[attr-defined]


def test_out_of_range_tokens_are_malformed_at_both_ends() -> None:
    """Regression: these decoded, then failed later as unclassified errors (gRPC UNKNOWN)."""
    message = computations_pb2.StreamActiveComputationsContinuationToken(
        last_seen_external_computation_id=2**64 - 1
    )
    message.last_seen_update_time.seconds = 10**15
    token = base64.urlsafe_b64encode(message.SerializeToString()).decode().rstrip("=")
    with pytest.raises(MalformedContinuationTokenError):
        decode_continuation_token(token)
    with pytest.raises(ValueError, match="malformed"):
        decode_token(token)
    message.last_seen_update_time.seconds = 1
    token = base64.urlsafe_b64encode(message.SerializeToString()).decode().rstrip("=")
    with pytest.raises(ValueError, match="computation id"):
        decode_token(token)


# ------------------------------------------------------------------------------ AdvanceComputation

AdvanceHeader = computation_control_pb2.AdvanceComputationRequest.Header
VALID_HEADER = AdvanceHeader(
    name="computations/c-1",
    liquid_legions_v2=AdvanceHeader.LiquidLegionsV2(
        description=AdvanceHeader.LiquidLegionsV2.SETUP_PHASE_INPUT
    ),
).SerializeToString()


@CHEAP_FUZZ
@given(mutations_of(VALID_HEADER))
def test_advance_computation_headers_are_parsed_or_invalid(data: bytes) -> None:
    try:
        header = AdvanceHeader.FromString(data)
    except DecodeError:
        return  # gRPC refuses the message before any handler runs
    announced = accepted_or_refused(lambda: parse_header(header), HeaderError)
    if announced is not None:
        assert header.name == f"computations/{announced.global_computation_id}"  # type: ignore[attr-defined]


@CHEAP_FUZZ
@given(
    st.one_of(
        st.text(max_size=30).map(lambda s: "computations/" + s),
        st.from_regex(r"computations/[A-Za-z0-9_\-=.~+]{1,8}", fullmatch=True),
    ),
    st.sampled_from(
        ["liquid_legions_v2", "reach_only_liquid_legions_v2", "honest_majority_share_shuffle", None]
    ),
    st.integers(-(2**31), 2**31 - 1) | st.integers(0, 5),
)
def test_structured_headers_are_parsed_or_invalid(
    name: str, member: str | None, description: int
) -> None:
    header = AdvanceHeader(name=name)
    if member is not None:
        getattr(header, member).description = description
    accepted_or_refused(lambda: parse_header(header), HeaderError)


@CHEAP_FUZZ
@given(
    st.one_of(
        st.text(max_size=60),
        st.from_regex(r"computations/[a-z0-9]{1,5}/participants/.{0,8}/computationStage"),
    )
)
def test_stage_names_are_parsed_or_invalid(name: str) -> None:
    parsed = accepted_or_refused(lambda: parse_stage_name(name), HeaderError)
    if parsed is not None:
        gid, duchy = parsed  # type: ignore[misc]
        assert name == f"computations/{gid}/participants/{duchy}/computationStage"
