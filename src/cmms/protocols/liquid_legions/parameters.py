"""Parameters every duchy of a Liquid Legions computation knows."""

from __future__ import annotations

from dataclasses import dataclass

from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.keys import MINIMUM_DUCHIES
from cmms.protocols.liquid_legions.noise import (
    NoiseConfig,
    Noiser,
    ReachNoisers,
    frequency_noiser,
    reach_noisers,
)


@dataclass(frozen=True, kw_only=True)
class LiquidLegionsParameters:
    """Sketch shape `(decay_rate, max_size)`, D duchies, S requisitions, noise, VID sampling width."""

    decay_rate: float
    max_size: int
    duchies: int
    requisitions: int
    noise: NoiseConfig | None = None
    vid_sampling_width: float = 1.0

    def __post_init__(self) -> None:
        if self.duchies < MINIMUM_DUCHIES:
            raise InvalidStageInputError(
                f"Liquid Legions needs at least {MINIMUM_DUCHIES} duchies, got {self.duchies}"
            )
        if self.requisitions < 1:
            raise InvalidStageInputError(
                f"the requisition count must be at least 1, got {self.requisitions}"
            )
        if not self.decay_rate > 1 or self.max_size < 1:
            raise InvalidStageInputError(
                f"need decay rate > 1 and max size >= 1, got {self.decay_rate}, {self.max_size}"
            )

    @property
    def reach_noisers(self) -> ReachNoisers | None:
        """The setup-phase noisers, None without reach noise."""
        if self.noise is None:
            return None
        return reach_noisers(self.noise, self.duchies, self.requisitions)

    @property
    def frequency_noiser(self) -> Noiser | None:
        """The frequency noiser, None without frequency noise."""
        if self.noise is None:
            return None
        return frequency_noiser(self.noise, self.duchies)
