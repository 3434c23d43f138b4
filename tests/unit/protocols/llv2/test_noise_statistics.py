"""Noise on: the reach error over repeated runs has the configured noise's mean and variance."""

from __future__ import annotations

from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import PrivacyParams
from cmms.protocols.liquid_legions.noise import NoiseConfig, NoiseMechanism, ReachNoiseConfig
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.simulation import plaintext_llv2, simulate_llv2

from .helpers import assert_moments_match, sketch, summed_geometric_noise_moments

# Blinded-histogram and publisher noise pinned (p ≈ 0); a wide reach-DP noise under test.
PINNED = PrivacyParams(300, 1)
REACH = PrivacyParams(0.3, 0.1)
RUNS = 10


def test_reach_error_matches_the_geometric_noise() -> None:
    parameters = ReachAndFrequencyParameters(
        decay_rate=12,
        max_size=1000,
        duchies=3,
        requisitions=3,
        noise=NoiseConfig(NoiseMechanism.GEOMETRIC, ReachNoiseConfig(PINNED, PINNED, REACH)),
        max_frequency=1,
    )
    data = sketch([(i, i, 1) for i in range(10)])
    truth = plaintext_llv2(parameters, [data]).active_registers
    errors = [
        simulate_llv2(
            parameters, [[data], [], []], SeededRandomSource(f"noise/{run}")
        ).active_registers
        - truth
        for run in range(RUNS)
    ]
    noisers = parameters.reach_noisers
    assert noisers is not None
    reach = noisers.global_reach.params
    assert hasattr(reach, "p")
    moments = summed_geometric_noise_moments(reach.offset, reach.p, 3)
    assert moments[1] > 10  # the noise is wide enough for the test to mean something
    assert_moments_match(errors, *moments)
    assert len(set(errors)) > 3


def test_setup_reach_draws_match_the_noise_over_many_duchies() -> None:
    # The per-duchy draws behind the end-to-end error, at a sample size that pins the variance.
    parameters = ReachAndFrequencyParameters(
        decay_rate=12,
        max_size=1000,
        duchies=3,
        requisitions=3,
        noise=NoiseConfig(NoiseMechanism.GEOMETRIC, ReachNoiseConfig(PINNED, PINNED, REACH)),
        max_frequency=1,
    )
    noisers = parameters.reach_noisers
    assert noisers is not None
    reach = noisers.global_reach
    sums = [
        sum(reach.draw(SeededRandomSource(f"draw/{run}/{d}"), 1)[0] for d in range(3))
        - 3 * reach.offset
        for run in range(3000)
    ]
    assert hasattr(reach.params, "p")
    assert_moments_match(sums, *summed_geometric_noise_moments(reach.offset, reach.params.p, 3))
