"""Whole HMSS runs against the plaintext ground truth: exact without noise, calibrated with noise."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.crypto.randomness import SeededRandomSource
from cmms.dp.parameters import PrivacyParams
from cmms.protocols.edp_inputs import SamplingInterval, frequency_vector
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.aggregation_phase import ReachAndFrequencyResult
from cmms.protocols.hmss.noise import blind_histogram_noiser
from cmms.protocols.hmss.parameters import MeasurementType, NoiseConfig, NoiseMechanism
from cmms.protocols.hmss.simulation import (
    AddressedSeedSealer,
    HmssConfig,
    fulfilling_worker,
    hmss_ground_truth,
    run_hmss,
)
from cmms.protocols.hmss.stages import Role

RF, REACH = MeasurementType.REACH_AND_FREQUENCY, MeasurementType.REACH


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    ("kind", "mf", "edps"), [(RF, 3, 3), (RF, 5, 2), (REACH, 1, 3), (REACH, 1, 1)]
)
def test_noiseless_runs_equal_ground_truth(
    seed: int, kind: MeasurementType, mf: int, edps: int
) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    vectors = [rng.integers(0, mf + 3, n) * (rng.random(n) < 0.6) for _ in range(edps)]
    width = float(rng.choice([1.0, 0.5, 0.1, 0.37]))
    config = HmssConfig(kind, mf, 127, vid_sampling_interval_width=width)
    assert run_hmss(vectors, config, SeededRandomSource(seed)) == hmss_ground_truth(vectors, config)


@pytest.mark.parametrize(
    ("population", "start", "width"),
    [(1000, 0.9, 0.3), (1000, 0.0, 1.0), (997, 0.75, 0.25), (50, 0.99, 0.02), (38_592, 0.2, 0.5)],
)
def test_vid_multisets_with_wrapping_intervals(population: int, start: float, width: float) -> None:
    rng = np.random.default_rng(population)
    interval = SamplingInterval(population, start, width)
    vids = [rng.integers(0, population, 3 * population) for _ in range(3)]
    vectors = [frequency_vector(v, interval, 4) for v in vids]
    assert all(v.size == interval.register_count for v in vectors)
    for kind, mf in ((RF, 4), (REACH, 1)):
        config = HmssConfig(kind, mf, 127, vid_sampling_interval_width=width)
        assert run_hmss(vectors, config, SeededRandomSource(1)) == hmss_ground_truth(
            vectors, config
        )


def test_sampling_interval_float32_arithmetic() -> None:
    interval = SamplingInterval(38_592_425, 0.2, 0.5)
    assert interval.bounds == (7_718_485, 27_014_695)
    assert interval.register_count == 19_296_211
    wrapping = SamplingInterval(10, 0.8, 0.5)
    assert wrapping.register_count == 5
    assert wrapping.local_indices(np.array([8, 9, 0, 2, 3, 7])).tolist() == [0, 1, 2, 4]


def test_routing_alternates_workers_and_seeds_go_to_the_other() -> None:
    assert [fulfilling_worker(i) for i in range(3)] == [
        Role.FIRST_NON_AGGREGATOR,
        Role.SECOND_NON_AGGREGATOR,
        Role.FIRST_NON_AGGREGATOR,
    ]

    class Recording(AddressedSeedSealer):
        def __init__(self) -> None:
            self.opened: list[Role] = []

        def open(self, ciphertext: bytes, recipient: Role) -> bytes:
            self.opened.append(recipient)
            return super().open(ciphertext, recipient)

    sealer = Recording()
    vectors = [np.ones(5, dtype=np.uint8)] * 3
    run_hmss(vectors, HmssConfig(REACH), SeededRandomSource(0), sealer)
    # EDPs 0 and 2 upload at W1, so W2 opens their seeds; EDP 1's seed is opened by W1.
    assert sorted(sealer.opened) == [
        Role.FIRST_NON_AGGREGATOR,
        Role.SECOND_NON_AGGREGATOR,
        Role.SECOND_NON_AGGREGATOR,
    ]


def test_ring_modulus_too_small_for_the_combined_frequency() -> None:
    # maxCombined = MF x #EDPs = 3 x 3 = 9 needs q > 10.
    vectors = [np.ones(4, dtype=np.uint8)] * 3
    with pytest.raises(InvalidProtocolInputError, match="plus one"):
        run_hmss(vectors, HmssConfig(RF, 3, 7), SeededRandomSource(0))


@pytest.mark.parametrize(
    ("kind", "mechanism"),
    [
        (RF, NoiseMechanism.DISCRETE_GAUSSIAN),
        (REACH, NoiseMechanism.GEOMETRIC),
        (REACH, NoiseMechanism.DISCRETE_GAUSSIAN),
    ],
)
def test_noise_matches_configuration(kind: MeasurementType, mechanism: NoiseMechanism) -> None:
    privacy = PrivacyParams(1.0, 0.1)
    noise = NoiseConfig(mechanism, privacy, privacy if kind is RF else None)
    config = HmssConfig(kind, 2 if kind is RF else 1, 127, noise)
    rng = np.random.default_rng(3)
    vectors = [rng.integers(0, 3, 60) * (rng.random(60) < 0.3) for _ in range(2)]
    truth = hmss_ground_truth(vectors, config).reach
    runs = 300
    errors = np.array(
        [
            run_hmss(vectors, config, SeededRandomSource(f"noise-{i}")).reach - truth
            for i in range(runs)
        ],
        dtype=float,
    )
    variance = blind_histogram_noiser(privacy, mechanism).variance
    assert abs(errors.mean()) <= 5 * np.sqrt(variance / runs)
    assert abs(errors.var(ddof=1) - variance) <= 5 * variance * np.sqrt(2 / (runs - 1))


def test_frequency_bucket_noise_matches_configuration() -> None:
    # Width 1 and no clamping: bucket count k < MF is `distribution[k] * reach`, and its error is
    # the sum of both workers' frequency components minus their baseline.
    privacy = PrivacyParams(1.0, 0.1)
    noise = NoiseConfig(NoiseMechanism.DISCRETE_GAUSSIAN, privacy, privacy)
    config = HmssConfig(RF, 3, 127, noise)
    vectors = [
        np.array([1] * 30 + [2] * 30 + [0] * 40),
        np.array([0] * 30 + [0] * 30 + [3] * 20 + [0] * 20),
    ]
    truth = np.bincount(np.minimum(vectors[0] + vectors[1], 3), minlength=4)
    runs = 300
    errors = []
    for i in range(runs):
        result = run_hmss(vectors, config, SeededRandomSource(f"bucket-{i}"))
        assert isinstance(result, ReachAndFrequencyResult)
        counts = {k: round(v * result.reach) for k, v in result.frequency_distribution.items()}
        errors.append([counts[1] - truth[1], counts[2] - truth[2]])
    observed = np.array(errors, dtype=float)
    variance = blind_histogram_noiser(privacy, NoiseMechanism.DISCRETE_GAUSSIAN).variance
    for column in observed.T:
        assert abs(column.mean()) <= 5 * np.sqrt(variance / runs)
        assert abs(column.var(ddof=1) - variance) <= 5 * variance * np.sqrt(2 / (runs - 1))
