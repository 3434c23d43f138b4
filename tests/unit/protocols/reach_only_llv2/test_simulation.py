"""Reach-only LLv2: known answers, MPC = plaintext without noise, noise statistics, replay."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import nbinom

from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import PrivacyParams
from cmms.protocols.liquid_legions.noise import NoiseConfig, NoiseMechanism, ReachNoiseConfig
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.reach_only_llv2.simulation import (
    plaintext_reach_only_llv2,
    simulate_reach_only_llv2,
)
from cmms.sketch import ReachOnlyLiquidLegionsSketch

VECTORS = json.loads((Path(__file__).parents[3] / "vectors" / "llv2_protocol.json").read_text())
LOOSE = PrivacyParams(1, 1)
DETERMINISTIC = PrivacyParams(40, math.exp(-80))


def _parameters(noise: NoiseConfig | None = None, **overrides: float) -> LiquidLegionsParameters:
    values = {"decay_rate": 12, "max_size": 100_000, "vid_sampling_width": 0.5, **overrides}
    return LiquidLegionsParameters(
        decay_rate=values["decay_rate"],
        max_size=int(values["max_size"]),
        duchies=3,
        requisitions=3,
        noise=noise,
        vid_sampling_width=values["vid_sampling_width"],
    )


def _sketch(indexes: Sequence[int] | np.ndarray) -> ReachOnlyLiquidLegionsSketch:
    return ReachOnlyLiquidLegionsSketch(np.asarray(indexes, dtype=np.int64))


@pytest.mark.parametrize("case", VECTORS["reach_only"], ids=["kotlin", "hundred", "noisy"])
def test_reference_cases(case: dict[str, Any]) -> None:
    indexes = case.get("indexes") or list(range(1, case["indexes_range"] + 1))
    noise = (
        NoiseConfig(NoiseMechanism.GEOMETRIC, ReachNoiseConfig(LOOSE, LOOSE, DETERMINISTIC))
        if case["noise"]
        else None
    )
    outcome = simulate_reach_only_llv2(
        _parameters(noise), [[_sketch(indexes)], [], []], SeededRandomSource("ro-kat")
    )
    assert outcome.reach == case["reach"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mpc_equals_plaintext_without_noise(seed: int) -> None:
    generator = np.random.default_rng(seed)
    sketches = [
        ReachOnlyLiquidLegionsSketch.from_vids(
            generator.choice(500, size=int(generator.integers(10, 60)), replace=False), 12, 300
        )
        for _ in range(4)
    ]
    parameters = LiquidLegionsParameters(decay_rate=12, max_size=300, duchies=3, requisitions=4)
    held = [sketches[0:2], sketches[2:3], sketches[3:4]]
    outcome = simulate_reach_only_llv2(parameters, held, SeededRandomSource(f"ro/{seed}"))
    expected = plaintext_reach_only_llv2(parameters, sketches)
    assert outcome == expected
    assert expected.active_registers < sum(len(s) for s in sketches)  # overlaps de-duplicated


def test_same_output_at_any_parallelism() -> None:
    noise = NoiseConfig(NoiseMechanism.GEOMETRIC, ReachNoiseConfig(LOOSE, LOOSE, LOOSE))
    held = [[_sketch(range(40))], [_sketch(range(20, 70))], []]
    serial = simulate_reach_only_llv2(
        _parameters(noise), held, SeededRandomSource("p"), ExecutionOptions(1, 8)
    )
    parallel = simulate_reach_only_llv2(
        _parameters(noise), held, SeededRandomSource("p"), ExecutionOptions(2, 8)
    )
    assert serial == parallel


def _summed_noise_moments(offset: int, p: float, contributors: int) -> tuple[float, float, float]:
    # Exact moments of the summed truncated-Polya differences (see the LLv2 helpers).
    polya = nbinom.pmf(np.arange(offset + 1), 1 / contributors, 1 - p)
    polya /= polya.sum()
    component = np.convolve(polya, polya[::-1])
    total = np.array([1.0])
    for _ in range(contributors):
        total = np.convolve(total, component)
    support = np.arange(total.size) - contributors * offset
    mean = float((support * total).sum())
    variance = float(((support - mean) ** 2 * total).sum())
    return mean, variance, float(((support - mean) ** 4 * total).sum())


def test_reach_error_matches_the_geometric_noise() -> None:
    pinned = PrivacyParams(300, 1)
    noise = NoiseConfig(
        NoiseMechanism.GEOMETRIC, ReachNoiseConfig(pinned, pinned, PrivacyParams(0.3, 0.1))
    )
    parameters = _parameters(noise, max_size=1000, vid_sampling_width=1.0)
    data = [[_sketch(range(15))], [_sketch(range(10, 20))], []]
    errors = [
        simulate_reach_only_llv2(
            parameters, data, SeededRandomSource(f"ro-noise/{run}")
        ).active_registers
        - 20
        for run in range(30)
    ]
    noisers = parameters.reach_noisers
    assert noisers is not None
    reach = noisers.global_reach.params
    assert hasattr(reach, "p")
    mean, variance, fourth = _summed_noise_moments(reach.offset, reach.p, 3)
    n = len(errors)
    sample = np.asarray(errors, dtype=float)
    assert abs(sample.mean() - mean) <= 5 * math.sqrt(variance / n)
    assert abs(sample.var(ddof=1) - variance) <= 5 * math.sqrt((fourth - variance**2) / n)
    assert len(set(errors)) > 3
