"""The plaintext noise registers one duchy adds in the setup phase (spec §5.1 step 2, §5R).

Every register is an `(index, key, count)` triple of points; reach-only keeps the index only.
The total is the public constant Z (Z + 2 for reach-only), whatever the draws were.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto.group import ORDER
from cmms.crypto.randomness import RandomSource, random_scalar
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.noise import ReachNoisers

Register = tuple[bytes, bytes, bytes]


@dataclass(frozen=True)
class SetupNoise:
    """Noise registers plus the number of distinct blinded-histogram ids among them."""

    registers: tuple[Register, ...]
    blinded_histogram_ids: int
    blinded_histogram_registers: int
    publisher_registers: int
    reach_registers: int
    padding_registers: int


def _fresh(prefix: str, random: RandomSource) -> bytes:
    return named_points.random_point(prefix, random_scalar(random, ORDER))


def setup_noise(
    noisers: ReachNoisers, requisitions: int, random: RandomSource, *, reach_only: bool = False
) -> SetupNoise:
    """Draw this duchy's noise and build exactly Z (reach-only: Z + 2) registers."""
    extra = 2 if reach_only else 0
    total = noisers.total_registers(requisitions) + extra
    registers: list[Register] = []
    histogram_key = named_points.blinded_histogram_key()
    destroyed = named_points.destroyed_key()

    # Blinded histogram: n_k distinct ids, each repeated k times, for k = 1..S.
    draws = noisers.blinded_histogram.draw(random.derive("blinded_histogram"), requisitions)
    for k, distinct in enumerate(draws, start=1):
        for _ in range(distinct):
            noise_id = _fresh(named_points.BLINDED_HISTOGRAM_ID_PREFIX, random)
            registers.extend([(noise_id, histogram_key, histogram_key)] * k)
    histogram_registers = len(registers)

    # Publisher noise: one shared id, so the group is larger than S and dropped in phase one.
    # Reach-only adds one more so that exactly one publisher id always exists (the "-2").
    publisher = noisers.publisher.draw(random.derive("publisher"), 1)[0] + (1 if reach_only else 0)
    for _ in range(publisher):
        value = _fresh("", random)
        registers.append((named_points.publisher_noise_id(), value, value))

    reach = noisers.global_reach.draw(random.derive("global_reach"), 1)[0]
    for _ in range(reach):
        noise_id = _fresh(named_points.REACH_DP_ID_PREFIX, random)
        registers.append((noise_id, destroyed, destroyed))

    padding = total - len(registers)
    if padding < 0:  # impossible: every draw is at most 2·offset
        raise InvalidStageInputError(f"noise draws exceed the {total} reserved registers")
    for _ in range(padding):
        value = _fresh("", random)
        registers.append((named_points.padding_noise_id(), value, value))
    return SetupNoise(
        registers=tuple(registers),
        blinded_histogram_ids=sum(draws),
        blinded_histogram_registers=histogram_registers,
        publisher_registers=publisher,
        reach_registers=reach,
        padding_registers=padding,
    )
