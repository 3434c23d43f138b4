"""What the aggregator detects when a worker's AggregationPhaseInput is altered.

Detectable: truncation or a broken wire format, a share value >= q, a length mismatch and (R&F) a
combined value that is neither <= maxCombined nor the sentinel. Undetectable: an in-range change
that keeps the combined value legal, which silently changes the result.
"""

from __future__ import annotations

import numpy as np
import pytest

from cmms.crypto.prng import AesCtrPrng
from cmms.crypto.sharing import add_mod, split
from cmms.protocols.errors import (
    InvalidProtocolInputError,
    PayloadDecodeError,
    ProtocolIntegrityError,
)
from cmms.protocols.hmss.aggregation_phase import (
    AggregationPhaseRequest,
    complete_reach_and_frequency_aggregation_phase,
)
from cmms.protocols.hmss.parameters import FrequencyVectorParams
from cmms.protocols.hmss.payloads import (
    decode_aggregation_phase_input,
    encode_aggregation_phase_input,
)

Q, N = 127, 16
PARAMS = FrequencyVectorParams(N, 4, Q)
PLAIN = np.array([0, 1, 2, 3, 4, 0, 1, 1, 2, 0, 0, 3, 4, 4, 1, 0])
SECOND = AesCtrPrng(b"t" * 48).uniform_range(N, Q)
FIRST = split(PLAIN, Q, b"t" * 48)


def _aggregate(first_payload: bytes) -> dict[int, float]:
    first = decode_aggregation_phase_input(first_payload, Q).share_vector
    request = AggregationPhaseRequest(PARAMS, (first, SECOND), 1.0, maximum_frequency=4)
    return dict(complete_reach_and_frequency_aggregation_phase(request).frequency_distribution)


def _payload(share: np.ndarray) -> bytes:
    return encode_aggregation_phase_input(share, N)


def test_untampered_payload() -> None:
    assert add_mod(FIRST, SECOND, Q).tolist() == PLAIN.tolist()
    assert _aggregate(_payload(FIRST)) == {1: 4 / 11, 2: 2 / 11, 3: 2 / 11, 4: 3 / 11}


def test_flipped_high_byte_is_out_of_range() -> None:
    payload = bytearray(_payload(FIRST))
    payload[-6] ^= 0x01  # a high byte of one little-endian uint32 (the last bytes are the count)
    with pytest.raises(InvalidProtocolInputError, match="ring modulus"):
        _aggregate(bytes(payload))


def test_truncated_payload() -> None:
    with pytest.raises(PayloadDecodeError):
        _aggregate(_payload(FIRST)[:-7])


def test_value_above_max_combined_is_detected() -> None:
    tampered = FIRST.copy()
    tampered[0] = (int(tampered[0]) + 9) % Q  # combined 0 -> 9 > maxCombined 4, not the sentinel
    with pytest.raises(ProtocolIntegrityError, match="9"):
        _aggregate(_payload(tampered))


def test_in_range_change_is_undetectable() -> None:
    tampered = FIRST.copy()
    tampered[0] = (int(tampered[0]) + 2) % Q  # combined 0 -> 2: still a legal frequency
    assert _aggregate(_payload(tampered)) != _aggregate(_payload(FIRST))
