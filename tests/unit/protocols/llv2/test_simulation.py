"""Noise off: the MPC equals the plaintext Liquid Legions estimate exactly; replay at any parallelism."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.crypto.randomness import SeededRandomSource
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.simulation import plaintext_llv2, simulate_llv2
from cmms.sketch import LiquidLegionsParams, LiquidLegionsSketch

from .helpers import DETERMINISTIC, parameters

# A small, steep sketch and a tiny key space: index collisions, same-key merges, cross-EDP
# conflicts and locally destroyed registers all happen at these sizes.
SKETCH = LiquidLegionsParams(decay_rate=12, max_size=400, sampling_indicator_size=3)


def _datasets(seed: int, edps: int) -> list[LiquidLegionsSketch]:
    generator = np.random.default_rng(seed)
    sketches = []
    for _ in range(edps):
        people = generator.choice(600, size=int(generator.integers(20, 70)), replace=False)
        events = np.repeat(people, generator.integers(1, 7, size=people.size))
        sketches.append(LiquidLegionsSketch.from_vids(events, SKETCH))
    return sketches


def _by_duchy(sketches: list[LiquidLegionsSketch]) -> list[list[LiquidLegionsSketch]]:
    # Duchy d holds EDPs d, d+3, ...: one duchy may hold several requisitions.
    return [sketches[d::3] for d in range(3)]


@pytest.mark.parametrize(("seed", "edps", "max_frequency"), [(1, 3, 10), (2, 4, 5), (3, 3, 1)])
def test_mpc_equals_plaintext_without_noise(seed: int, edps: int, max_frequency: int) -> None:
    sketches = _datasets(seed, edps)
    keys = np.concatenate([s.keys for s in sketches])
    assert (keys == 0).any(), "the dataset should contain locally destroyed registers"
    p = ReachAndFrequencyParameters(
        decay_rate=SKETCH.decay_rate,
        max_size=SKETCH.max_size,
        duchies=3,
        requisitions=edps,
        max_frequency=max_frequency,
    )
    expected = plaintext_llv2(p, sketches)
    outcome = simulate_llv2(p, _by_duchy(sketches), SeededRandomSource(f"data/{seed}"))
    assert outcome.result == expected.result
    assert outcome.active_registers == expected.active_registers
    assert outcome.histogram == expected.histogram
    if max_frequency > 1:
        # Conflicts and destroyed registers are in reach but not in the histogram.
        assert sum(expected.histogram) < expected.active_registers


def test_same_bytes_at_any_parallelism() -> None:
    sketches = _datasets(4, 3)
    p = parameters(4, reach_noise=True, frequency_noise=DETERMINISTIC)
    serial = simulate_llv2(
        p, _by_duchy(sketches), SeededRandomSource("replay"), ExecutionOptions(1, 16)
    )
    parallel = simulate_llv2(
        p, _by_duchy(sketches), SeededRandomSource("replay"), ExecutionOptions(2, 16)
    )
    assert serial.message_digests == parallel.message_digests
    assert len(serial.message_digests) == 2 + 1 + 2 + 1 + 2 + 1 + 2
    assert serial == parallel
    other = simulate_llv2(p, _by_duchy(sketches), SeededRandomSource("other"))
    assert other.message_digests[0] != serial.message_digests[0]
