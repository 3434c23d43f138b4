"""Sketches and frequency vectors built from VIDs, and the estimators that read them."""

from cmms.sketch.errors import (
    InconsistentAggregateError,
    SketchParameterError,
    VidNotInPopulationError,
)
from cmms.sketch.estimators import (
    estimate_reach,
    estimate_reach_with_sampling,
    expected_active_registers,
    llv2_frequency_distribution,
)
from cmms.sketch.fingerprint import fingerprint64, signed64
from cmms.sketch.frequency_vector import SamplingInterval, VidIndexMap, build_frequency_vector
from cmms.sketch.hmss_results import (
    ReachAndFrequency,
    hmss_reach,
    hmss_reach_and_frequency,
    scale_sampled_reach,
)
from cmms.sketch.liquid_legions import (
    LiquidLegionsParams,
    LiquidLegionsSketch,
    ReachOnlyLiquidLegionsSketch,
    register_index,
    sampling_indicator,
)
from cmms.sketch.trustee_results import (
    FrequencyVectorAggregator,
    ResultThresholds,
    trustee_frequency_distribution,
    trustee_reach,
)
from cmms.sketch.vid_sampling import ll_vid_sampling_mask, vid_sampling_hash

__all__ = [
    "FrequencyVectorAggregator",
    "InconsistentAggregateError",
    "LiquidLegionsParams",
    "LiquidLegionsSketch",
    "ReachAndFrequency",
    "ReachOnlyLiquidLegionsSketch",
    "ResultThresholds",
    "SamplingInterval",
    "SketchParameterError",
    "VidIndexMap",
    "VidNotInPopulationError",
    "build_frequency_vector",
    "estimate_reach",
    "estimate_reach_with_sampling",
    "expected_active_registers",
    "fingerprint64",
    "hmss_reach",
    "hmss_reach_and_frequency",
    "ll_vid_sampling_mask",
    "llv2_frequency_distribution",
    "register_index",
    "sampling_indicator",
    "scale_sampled_reach",
    "signed64",
    "trustee_frequency_distribution",
    "trustee_reach",
    "vid_sampling_hash",
]
