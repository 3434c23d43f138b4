"""A whole TrusTee run in one process, and the plaintext ground truth it must match (spec §B).

TrusTee has a single duchy: every EDP uploads its frequency vector (one signed byte per register)
to it, and the COMPUTING stage aggregates them. Envelope encryption is left out: it changes no
value, only where the bytes are readable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmms.crypto.randomness import RandomSource
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.measurement import MeasurementType
from cmms.protocols.trustee.computing import (
    MAX_FREQUENCY,
    ComputingRequest,
    TrusTeeParams,
    TrusTeeResult,
    run_computing_stage,
)


def edp_payload(raw: np.ndarray, params: TrusTeeParams) -> bytes:
    """An EDP's upload: its vector capped at MF (1 for reach), one byte per register."""
    cap = 1 if params.measurement_type is MeasurementType.REACH else params.maximum_frequency
    capped = np.minimum(np.asarray(raw), min(cap, MAX_FREQUENCY)).astype(np.uint8)
    return bytes(capped.tobytes())


def run_trustee(
    frequency_vectors: Sequence[np.ndarray], params: TrusTeeParams, source: RandomSource
) -> TrusTeeResult:
    """Run the protocol on raw per-EDP frequency vectors and return the released result."""
    if not frequency_vectors:
        raise InvalidProtocolInputError("TrusTee needs at least one EDP")
    payloads = tuple(edp_payload(vector, params) for vector in frequency_vectors)
    return run_computing_stage(ComputingRequest(params, payloads), source)


def trustee_ground_truth(
    frequency_vectors: Sequence[np.ndarray], params: TrusTeeParams
) -> TrusTeeResult:
    """The noiseless, threshold-free measurement: `min(Σ capped, MF)`, reach capped at N/width."""
    mf = params.maximum_frequency
    combined = np.minimum(
        np.sum([np.minimum(np.asarray(v, dtype=np.int64), mf) for v in frequency_vectors], axis=0),
        mf,
    )
    width = params.width
    reached = int(np.count_nonzero(combined))
    reach = min(int(reached / width), int(combined.size / width))
    if params.measurement_type is MeasurementType.REACH:
        return TrusTeeResult(reach)
    buckets = np.bincount(combined, minlength=mf + 1)
    if reached == 0:
        return TrusTeeResult(reach, dict.fromkeys(range(1, mf + 1), 0.0))
    return TrusTeeResult(reach, {k: int(buckets[k]) / reached for k in range(1, mf + 1)})
