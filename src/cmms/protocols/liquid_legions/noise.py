"""DP noise configuration of Liquid Legions and one duchy's noise draws (spec §6).

Every duchy is a contributor (contributors = D). Sensitivities: blinded histogram 2, publisher
noise S (the requisition count), global reach 1, frequency 2. Each draw lies in `[0, 2·offset]`,
which is what lets the noise totals be public constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from cmms.crypto.randomness import RandomSource
from cmms.dp import (
    PrivacyParams,
    discrete_gaussian_components,
    discrete_gaussian_params,
    geometric_components,
    geometric_params,
)
from cmms.dp.parameters import DiscreteGaussianNoiseParams, GeometricNoiseParams

BLINDED_HISTOGRAM_SENSITIVITY = 2
GLOBAL_REACH_SENSITIVITY = 1
FREQUENCY_SENSITIVITY = 2


class NoiseMechanism(IntEnum):
    """`LiquidLegionsV2NoiseConfig.NoiseMechanism` numbers."""

    GEOMETRIC = 1
    DISCRETE_GAUSSIAN = 2


@dataclass(frozen=True)
class ReachNoiseConfig:
    """The three setup-phase noises."""

    blinded_histogram: PrivacyParams
    publisher: PrivacyParams
    global_reach: PrivacyParams


@dataclass(frozen=True)
class NoiseConfig:
    """What noise the duchies add; `None` parts are not added (tests only: production needs both)."""

    mechanism: NoiseMechanism
    reach: ReachNoiseConfig | None = None
    frequency: PrivacyParams | None = None


@dataclass(frozen=True)
class Noiser:
    """One noise kind for one duchy: the public offset and a sampler of components."""

    params: GeometricNoiseParams | DiscreteGaussianNoiseParams

    @property
    def offset(self) -> int:
        return self.params.offset

    def draw(self, random: RandomSource, size: int) -> list[int]:
        """`size` independent components, each in `[0, 2·offset]`."""
        if isinstance(self.params, GeometricNoiseParams):
            values = geometric_components(self.params, random, size)
        else:
            values = discrete_gaussian_components(self.params, random, size)
        return [int(v) for v in values]


def noiser(
    mechanism: NoiseMechanism, privacy: PrivacyParams, contributors: int, sensitivity: int
) -> Noiser:
    """The noiser of one noise kind (the Gaussian mechanism ignores the sensitivity)."""
    if mechanism == NoiseMechanism.GEOMETRIC:
        return Noiser(geometric_params(privacy, contributors, sensitivity))
    return Noiser(discrete_gaussian_params(privacy, contributors))


@dataclass(frozen=True)
class ReachNoisers:
    """The setup-phase noisers of one computation."""

    blinded_histogram: Noiser
    publisher: Noiser
    global_reach: Noiser

    def total_registers(self, requisitions: int) -> int:
        """Z = 2·o_pub + 2·o_reach + o_bh·S·(S+1): noise registers every duchy adds."""
        return (
            2 * self.publisher.offset
            + 2 * self.global_reach.offset
            + self.blinded_histogram.offset * requisitions * (requisitions + 1)
        )


def reach_noisers(config: NoiseConfig, duchies: int, requisitions: int) -> ReachNoisers | None:
    """The setup-phase noisers, or None when no reach noise is configured."""
    if config.reach is None:
        return None
    mechanism, reach = config.mechanism, config.reach
    return ReachNoisers(
        blinded_histogram=noiser(
            mechanism, reach.blinded_histogram, duchies, BLINDED_HISTOGRAM_SENSITIVITY
        ),
        publisher=noiser(mechanism, reach.publisher, duchies, requisitions),
        global_reach=noiser(mechanism, reach.global_reach, duchies, GLOBAL_REACH_SENSITIVITY),
    )


def frequency_noiser(config: NoiseConfig, duchies: int) -> Noiser | None:
    """The frequency noiser, or None when no frequency noise is configured."""
    if config.frequency is None:
        return None
    return noiser(config.mechanism, config.frequency, duchies, FREQUENCY_SENSITIVITY)
