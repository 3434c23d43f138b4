"""TrusTee COMPUTING stage: aggregate plain frequency vectors, add noise, release (spec §B.4).

Vectors are added with capping at the maximum frequency after each add. Noise follows the
mechanism: DETERMINISTIC_TRUNCATED_LAPLACE uses the data-keyed DTL noiser, NONE passes values
through, anything else uses the rounded analytic Gaussian. Draw order: reach, impressions (only
with thresholds), buckets 1..MF (R&F only). Every frequency key 1..MF is present in the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from cmms.crypto.randomness import RandomSource
from cmms.dp.deterministic_laplace import DeterministicTruncatedLaplaceNoiser
from cmms.dp.gaussian import GaussianResultNoiser
from cmms.dp.parameters import PrivacyParams
from cmms.dp.result_noise import RawResultNoiser, ResultNoiser
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.histogram import value_counts
from cmms.protocols.measurement import MeasurementType, NoiseMechanism, float32_width

MAX_FREQUENCY = 127
THRESHOLD_MAX_FREQUENCY_PER_USER = 126  # min(127, 127 - 1) in the reference


@dataclass(frozen=True)
class ResultThresholds:
    """Small-cell suppression: results below these are released as zero."""

    min_impressions: int
    min_users: int

    def __post_init__(self) -> None:
        if self.min_impressions <= 0 or self.min_users <= 0:
            raise InvalidProtocolInputError(
                f"result thresholds must be positive, got {self.min_impressions}, {self.min_users}"
            )


@dataclass(frozen=True)
class TrusTeeParams:
    """The measurement as the COMPUTING stage sees it."""

    measurement_type: MeasurementType
    maximum_frequency: int
    vid_sampling_interval_width: float
    noise_mechanism: NoiseMechanism = NoiseMechanism.NONE
    reach_privacy: PrivacyParams | None = None
    frequency_privacy: PrivacyParams | None = None
    thresholds: ResultThresholds | None = None

    def __post_init__(self) -> None:
        mf = self.maximum_frequency
        if self.measurement_type is MeasurementType.REACH:
            if mf != 1:
                raise InvalidProtocolInputError(f"Invalid max frequency {mf} for reach (must be 1)")
        elif not 2 <= mf <= MAX_FREQUENCY:
            raise InvalidProtocolInputError(
                f"Invalid max frequency {mf} (must be 2..{MAX_FREQUENCY})"
            )
        float32_width(self.vid_sampling_interval_width)
        needs_params = self.noise_mechanism not in (
            NoiseMechanism.NONE,
            NoiseMechanism.DETERMINISTIC_TRUNCATED_LAPLACE,
        )
        if needs_params and self.reach_privacy is None:
            raise InvalidProtocolInputError(
                f"noise mechanism {self.noise_mechanism.name} needs reach DP params"
            )
        if (
            needs_params
            and self.measurement_type is MeasurementType.REACH_AND_FREQUENCY
            and self.frequency_privacy is None
        ):
            raise InvalidProtocolInputError(
                f"noise mechanism {self.noise_mechanism.name} needs frequency DP params for R&F"
            )

    @property
    def width(self) -> float:
        """The width as the float32 the proto carries."""
        return float32_width(self.vid_sampling_interval_width)

    @property
    def max_frequency_per_user(self) -> int:
        """The impression cap per register: 126 with thresholds, else 1."""
        return THRESHOLD_MAX_FREQUENCY_PER_USER if self.thresholds else 1


class FrequencyVectorAggregator:
    """Capped sum of equal-length frequency vectors (signed bytes `0..127` per register)."""

    def __init__(self, params: TrusTeeParams) -> None:
        self._params = params
        self._aggregate: np.ndarray | None = None
        self.contribution_count = 0

    def add(self, vector: bytes | np.ndarray) -> bool:
        """Add one EDP vector; False if DTL thresholds drop it (too few users)."""
        values = _as_frequency_vector(vector)
        params = self._params
        if self._aggregate is not None and values.size != self._aggregate.size:
            raise InvalidProtocolInputError(
                f"frequency vector has {values.size} registers, earlier ones had "
                f"{self._aggregate.size}"
            )
        if (
            params.noise_mechanism is NoiseMechanism.DETERMINISTIC_TRUNCATED_LAPLACE
            and params.thresholds is not None
            and np.count_nonzero(values) / params.width < params.thresholds.min_users
        ):
            return False
        # Values are validated to 0..127, so an int8 payload can be read as uint8 without a copy.
        unsigned = values.view(np.uint8) if values.dtype == np.int8 else values.astype(np.uint8)
        capped = np.minimum(unsigned, np.uint8(params.maximum_frequency))
        if self._aggregate is None:
            self._aggregate = capped
        else:
            # Both terms are at most 127, so the uint8 sum cannot wrap before capping.
            np.add(self._aggregate, capped, out=self._aggregate)
            np.minimum(self._aggregate, params.maximum_frequency, out=self._aggregate)
        self.contribution_count += 1
        return True

    @property
    def aggregate(self) -> np.ndarray:
        if self._aggregate is None:
            raise InvalidProtocolInputError("no frequency vector was added")
        return self._aggregate


def _as_frequency_vector(vector: bytes | np.ndarray) -> np.ndarray:
    if isinstance(vector, bytes | bytearray | memoryview):
        values = np.frombuffer(vector, dtype=np.int8)
    else:
        values = np.asarray(vector)
    if values.ndim != 1 or values.size == 0:
        raise InvalidProtocolInputError("a frequency vector must be a non-empty 1-D vector")
    if values.size and (int(values.min()) < 0 or int(values.max()) > MAX_FREQUENCY):
        raise InvalidProtocolInputError(
            "frequency vector values must be in 0..127 (a negative signed byte was found)"
            if int(values.min()) < 0
            else f"frequency vector value {int(values.max())} exceeds 127"
        )
    return values


@dataclass(frozen=True, eq=False)
class ComputingRequest:
    """The parameters and every requisition's (decrypted) frequency vector, in token order."""

    params: TrusTeeParams
    frequency_vectors: tuple[bytes | np.ndarray, ...]


@dataclass(frozen=True)
class TrusTeeResult:
    """Reach and, for R&F, the distribution over every key 1..MF."""

    reach: int
    frequency_distribution: Mapping[int, float] | None = None


def run_computing_stage(request: ComputingRequest, source: RandomSource) -> TrusTeeResult:
    """Aggregate, build the histogram, noise and release."""
    params = request.params
    aggregator = FrequencyVectorAggregator(params)
    for vector in request.frequency_vectors:
        aggregator.add(vector)
    aggregate = aggregator.aggregate
    counts = value_counts(aggregate, params.maximum_frequency + 1)
    histogram = [int(c) for c in counts[1 : params.maximum_frequency + 1]]
    noiser = _noiser(params, aggregate, aggregator.contribution_count, source)
    reach = _reach(params, noiser, histogram, aggregate.size)
    if params.measurement_type is MeasurementType.REACH:
        return TrusTeeResult(reach)
    return TrusTeeResult(reach, _distribution(params, noiser, histogram))


def _noiser(
    params: TrusTeeParams, aggregate: np.ndarray, contributions: int, source: RandomSource
) -> ResultNoiser:
    if params.noise_mechanism is NoiseMechanism.DETERMINISTIC_TRUNCATED_LAPLACE:
        return DeterministicTruncatedLaplaceNoiser(
            aggregate, contributions, params.max_frequency_per_user
        )
    if params.noise_mechanism is NoiseMechanism.NONE or params.reach_privacy is None:
        return RawResultNoiser()
    return GaussianResultNoiser(
        params.reach_privacy, params.frequency_privacy, params.max_frequency_per_user, source
    )


def _reach(
    params: TrusTeeParams, noiser: ResultNoiser, histogram: Sequence[int], register_count: int
) -> int:
    width = params.width
    noisy = noiser.noise_reach(sum(histogram))
    scaled = 0 if noisy < 0 else int(noisy / width)
    scaled = min(scaled, int(register_count / width))
    if params.thresholds is not None:
        impressions = int(noiser.noise_impressions(histogram) / width)
        if impressions < params.thresholds.min_impressions or scaled < params.thresholds.min_users:
            return 0
    return scaled


def _distribution(
    params: TrusTeeParams, noiser: ResultNoiser, histogram: Sequence[int]
) -> dict[int, float]:
    mf = params.maximum_frequency
    noisy = [noiser.noise_frequency_bucket(index, count) for index, count in enumerate(histogram)]
    if params.thresholds is not None:
        noisy = _fold_small_buckets(noisy, params.thresholds, params.width)
    total = sum(noisy)
    if total == 0:
        return dict.fromkeys(range(1, mf + 1), 0.0)
    return {frequency: noisy[frequency - 1] / total for frequency in range(1, mf + 1)}


def _fold_small_buckets(
    counts: Sequence[int], thresholds: ResultThresholds, width: float
) -> list[int]:
    """From the top down, a bucket below either threshold moves its count one frequency lower."""
    folded = list(counts)
    for frequency in range(len(folded), 0, -1):
        count = folded[frequency - 1]
        if (
            count / width < thresholds.min_users
            or frequency * count / width < thresholds.min_impressions
        ):
            folded[frequency - 1] = 0
            if frequency > 1:
                folded[frequency - 2] += count
    return folded
