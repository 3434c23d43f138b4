"""Measurement-level enums and the sampling width shared by the HMSS and TrusTee stages."""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from cmms.protocols.errors import InvalidProtocolInputError


class MeasurementType(IntEnum):
    """`MeasurementType` numbers of the internal protocol protos."""

    REACH = 1
    REACH_AND_FREQUENCY = 2


class NoiseMechanism(IntEnum):
    """System-API `NoiseMechanism` numbers."""

    GEOMETRIC = 1
    DISCRETE_GAUSSIAN = 2
    CONTINUOUS_GAUSSIAN = 3
    NONE = 4
    DETERMINISTIC_TRUNCATED_LAPLACE = 5


def float32_width(width: float) -> float:
    """The sampling-interval width as the float32 the protos carry, widened to double (pitfall 8)."""
    as_float32 = float(np.float32(width))
    if not 0.0 < as_float32 <= 1.0:
        raise InvalidProtocolInputError(
            f"Invalid vid sampling interval width {width}: must be in (0, 1]"
        )
    return as_float32


def estimate_reach(non_empty: int, width: float) -> int:
    """`trunc(non_empty / float32(width))`: the sampled count scaled to the whole population."""
    if non_empty < 0:
        raise InvalidProtocolInputError(f"non-empty register count must be >= 0, got {non_empty}")
    return int(non_empty / float32_width(width))
